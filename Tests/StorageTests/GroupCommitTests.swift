import Foundation
import SQLKit
import Storage
import Synchronization
import TestSupport
import Testing

/// Group commit on both backends: every call gets its own answer, calls of one batch see each other's writes in
/// order, and a failing call fails alone.
@Suite("Group commit (SQLite and PostgreSQL)")
struct GroupCommitTests {
    static let migrations = [
        Migration(
            version: 1, name: "counter",
            statements: [
                "CREATE TABLE tally (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO tally (id, value) VALUES (1, 0)",
                "CREATE TABLE entries (value BIGINT PRIMARY KEY, label TEXT NOT NULL)",
            ])
    ]

    /// Each call takes the next number from the tally and stores it with its label; a label "fail" throws after its
    /// writes (which must then be undone).
    final class BatchSizes: Sendable {
        let sizes = Mutex<[Int]>([])
    }

    static func commit(_ database: Database, batches: BatchSizes) -> GroupCommit<String, Int> {
        GroupCommit(database: database, maxBatch: 16) { labels, db in
            batches.sizes.withLock { $0.append(labels.count) }
            var values: [Int] = []
            for label in labels {
                guard
                    let row = try await db.raw("UPDATE tally SET value = value + 1 WHERE id = 1 RETURNING value").first()
                else { throw StorageError.misuse("no tally") }
                let value = try row.decode(column: "value", as: Int.self)
                try await db.raw("INSERT INTO entries (value, label) VALUES (\(bind: value), \(bind: label))").run()
                if label == "fail" { throw StorageError.misuse("this call fails") }
                values.append(value)
            }
            return values
        }
    }

    @Test("200 concurrent calls: each answered once with its own value, in batches, nothing lost", arguments: TestBackends.all)
    func concurrentCalls(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let batches = BatchSizes()
            let commit = Self.commit(database, batches: batches)
            let answers = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<200 { group.addTask { ("call-\(index)", try await commit.run("call-\(index)")) } }
                var answers: [String: Int] = [:]
                for try await (label, value) in group { answers[label] = value }
                return answers
            }
            #expect(answers.count == 200)
            #expect(Set(answers.values) == Set(1...200))
            let stored = try await database.sql.raw("SELECT value, label FROM entries").all()
            var byLabel: [String: Int] = [:]
            for row in stored { byLabel[try row.decode(column: "label", as: String.self)] = try row.decode(column: "value", as: Int.self) }
            #expect(byLabel == answers)
            let sizes = batches.sizes.withLock { $0 }
            #expect(sizes.reduce(0, +) == 200, "no call ran twice when nothing failed")
            #expect(sizes.allSatisfy { $0 <= 16 }, "a batch never exceeds maxBatch")
            #expect(sizes.contains { $0 > 1 }, "concurrent calls shared a transaction: \(sizes)")
        }
    }

    @Test("a failing call fails alone: its writes are undone, the others of its batch commit", arguments: TestBackends.all)
    func failingCall(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let batches = BatchSizes()
            let commit = Self.commit(database, batches: batches)
            let labels = (0..<40).map { $0 == 17 ? "fail" : "ok-\($0)" }
            let results = await withTaskGroup(of: (String, Result<Int, any Error>).self) { group in
                for label in labels {
                    group.addTask {
                        do { return (label, .success(try await commit.run(label))) } catch { return (label, .failure(error)) }
                    }
                }
                var results: [String: Result<Int, any Error>] = [:]
                for await (label, result) in group { results[label] = result }
                return results
            }
            for label in labels {
                let result = try #require(results[label])
                if label == "fail" {
                    #expect(throws: StorageError.self) { try result.get() }
                } else {
                    #expect(throws: Never.self) { try result.get() }
                }
            }
            let stored = try await database.sql.raw("SELECT label FROM entries").all()
                .map { try $0.decode(column: "label", as: String.self) }
            #expect(Set(stored) == Set(labels.filter { $0 != "fail" }), "the failing call's row is gone, every other is there")
            let values = try await database.sql.raw("SELECT value FROM entries ORDER BY value").all()
                .map { try $0.decode(column: "value", as: Int.self) }
            #expect(Set(values).count == 39)
        }
    }

    @Test("calls of one batch run in arrival order and see the writes before them", arguments: TestBackends.all)
    func order(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let seen = Mutex<[[String]]>([])
            let commit = GroupCommit<String, Int>(database: database) { labels, db in
                seen.withLock { $0.append(labels) }
                var counts: [Int] = []
                for label in labels {
                    try await db.raw("INSERT INTO entries (value, label) VALUES ((SELECT COUNT(*) FROM entries) + 1, \(bind: label))").run()
                    let row = try #require(try await db.raw("SELECT COUNT(*) AS n FROM entries").first())
                    counts.append(try row.decode(column: "n", as: Int.self))
                }
                return counts
            }
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 { group.addTask { try await commit.run("c\(index)") } }
                var counts: [Int] = []
                for try await count in group { counts.append(count) }
                return counts
            }
            #expect(counts.sorted() == Array(1...50), "each call saw exactly the calls before it")
            #expect(seen.withLock { $0.flatMap { $0 } }.count == 50)
        }
    }
}
