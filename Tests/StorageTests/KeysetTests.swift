import Foundation
import SQLKit
@testable import Storage
import TestSupport
import Testing

/// The one keyset pager, on both backends: every sort key and tiebreak, ties, descending order, rows inserted
/// between pages, the cursor forms of earlier versions, and cursors it did not give.
@Suite("Keyset paging (SQLite and PostgreSQL)")
struct KeysetTests {
    static let migrations = [
        Migration(
            version: 1, name: "items",
            statements: ["CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, at TIMESTAMP NOT NULL)"])
    ]

    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// 20 items, names with ties in their lowercase form, times with ties.
    static func seed(_ database: Database) async throws {
        for id in 1...20 {
            let name = ["b", "A", "a", "C", "é"][id % 5] + String(id % 3)
            let at = t0.addingTimeInterval(Double(id / 4))
            try await database.sql.raw(
                "INSERT INTO items (id, name, at) VALUES (\(bind: Int64(id)), \(bind: name), \(bind: at))"
            ).run()
        }
    }

    static func readAll(_ keyset: Keyset, _ database: Database, limit: Int, insertAfterFirst: Bool = false)
        async throws -> [Int64]
    {
        var ids: [Int64] = []
        var cursor: String? = nil
        var pages = 0
        repeat {
            let (rows, next) = try await keyset.read(
                database.sql.select().column("*").from("items"), after: cursor, limit: limit,
                decode: { try $0.decode(column: "id", as: Int64.self) })
            ids += rows
            cursor = next
            pages += 1
            if insertAfterFirst && pages == 1 {
                // A row that sorts before the cursor does not shift the pages.
                try await database.sql.raw(
                    "INSERT INTO items (id, name, at) VALUES (0, '0', \(bind: t0.addingTimeInterval(-100)))").run()
            }
        } while cursor != nil && pages < 100
        return ids
    }

    @Test("every page in order, each row once, whatever the page size", arguments: TestBackends.all)
    func pages(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            try await Self.seed(database)
            let all = try await database.sql.select().column("*").from("items").all()
            let expected: [(Keyset, [Int64])] = try [
                (Keyset(key: .none, tiebreak: .integer("id")), Array(1...20)),
                (Keyset(key: .none, tiebreak: .integer("id"), descending: true), Array((1...20).reversed())),
                (Keyset(key: .time(SQLIdentifier("at")), tiebreak: .integer("id")), Array(1...20)),
                (Keyset(key: .time(SQLIdentifier("at")), tiebreak: .integer("id"), descending: true),
                 Array((1...20).reversed())),
                (Keyset(key: .time(SQLIdentifier("at")), tiebreak: .text("name")),
                 all.map { (try $0.decode(column: "at", as: Date.self), try $0.decode(column: "name", as: String.self),
                            try $0.decode(column: "id", as: Int64.self)) }
                    .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)),
            ]
            for (keyset, ids) in expected {
                for limit in [1, 3, 7, 20, 50] {
                    let read = try await Self.readAll(keyset, database, limit: limit)
                    #expect(read == ids, "limit \(limit)")
                }
            }
            // A text key in the database's own order: the same rows whatever the page size, each once.
            let text = Keyset(key: .text(SQLFunction("LOWER", args: SQLIdentifier("name"))), tiebreak: .integer("id"))
            let whole = try await Self.readAll(text, database, limit: 50)
            #expect(Set(whole) == Set(1...20) && whole.count == 20)
            for limit in [1, 4, 6] { #expect(try await Self.readAll(text, database, limit: limit) == whole) }
        }
    }

    @Test("rows inserted before the cursor do not shift the pages", arguments: TestBackends.all)
    func stableWhileInserting(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            try await Self.seed(database)
            let read = try await Self.readAll(
                Keyset(key: .time(SQLIdentifier("at")), tiebreak: .integer("id")), database, limit: 4,
                insertAfterFirst: true)
            #expect(read == Array(1...20))
        }
    }

    @Test("the cursor forms: id, text key, time key, and session-service's <ms>:<name>; others refused")
    func cursorForms() throws {
        let byID = Keyset(key: .none, tiebreak: .integer("id"))
        #expect(byID.encode(nil, .integer(42)) == "42")
        #expect(throws: KeysetError.self) { try byID.decodeValue("x") }
        let text = Keyset(key: .text(SQLIdentifier("name")), tiebreak: .integer("id"))
        let textCursor = text.encode(.text("Zoë.a"), .integer(7))
        #expect(try text.decode(textCursor) == (.text("Zoë.a"), .integer(7)))
        let time = Keyset(key: .time(SQLIdentifier("at")), tiebreak: .integer("id"))
        let timeCursor = time.encode(.time(Self.t0), .integer(9))
        #expect(timeCursor.hasPrefix("d."))
        #expect(try time.decode(timeCursor) == (.time(Self.t0), .integer(9)))
        #expect(throws: KeysetError.self) { try time.decode(textCursor) }
        #expect(throws: KeysetError.self) { try text.decode(timeCursor) }
        let sessions = Keyset(key: .time(SQLIdentifier("created_at")), tiebreak: .text("name"))
        let legacy = "\(Int64(Self.t0.timeIntervalSince1970 * 1000)):lab-w01-s001"
        #expect(sessions.encode(.time(Self.t0), .text("lab-w01-s001")) == legacy)
        #expect(try sessions.decode(legacy) == (.time(Self.t0), .text("lab-w01-s001")))
        for bad in ["", "x:y", "12:", "t.zz.1", "d.1"] {
            #expect(throws: KeysetError.self, "\(bad)") { try sessions.decode(bad) }
        }
    }
}
