import Foundation
import NIOConcurrencyHelpers
import SQLKit
import Storage
import TestSupport
import Testing

/// One contract, run against every backend: what the repositories of every service rely on.
@Suite("Storage contract (SQLite and PostgreSQL)")
struct StorageContractTests {
    static let migrations = [
        Migration(
            version: 1, name: "queue",
            statements: [
                """
                CREATE TABLE jobs (
                    id BIGINT PRIMARY KEY,
                    payload TEXT NOT NULL,
                    claimed_by TEXT,
                    done BOOLEAN NOT NULL DEFAULT FALSE,
                    created_at TIMESTAMP
                )
                """
            ]),
        Migration(version: 2, name: "leases", statements: Leases.migrationStatements),
    ]

    @Test("PostgreSQL is present when the run requires it")
    func postgresPresentWhenRequired() {
        if TestBackends.postgresRequired {
            #expect(TestBackends.postgresURL != nil, "LABPORTAL_REQUIRE_POSTGRES=1 but POSTGRES_URL is not set")
        }
        #expect(TestBackends.all.contains(.sqlite))
    }

    @Test("migrations apply once, in order, and refuse a renamed or newer schema", arguments: TestBackends.all)
    func migrations(backend: DatabaseBackend) async throws {
        let test = TestDatabase(backend)
        try await test.with { database in
            let first = try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            #expect(first == [1, 2])
            let second = try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            #expect(second == [])
            var renamed = Self.migrations
            renamed[1].name = "renamed"
            await #expect(throws: StorageError.self) {
                try await Migrator(renamed).migrate(database, logger: quietLogger)
            }
            await #expect(throws: StorageError.self) {
                try await Migrator([Self.migrations[0]]).migrate(database, logger: quietLogger)
            }
        }
        // Replicas starting together: several migrators race; the schema is built exactly once.
        try await TestDatabase(backend).with { database in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await Migrator(Self.migrations).migrate(database, logger: quietLogger) } }
                var all: [Int] = []
                for try await versions in group { all += versions }
                return all.sorted()
            }
            #expect(applied == [1, 2])
        }
    }

    @Test("binds, booleans, NULL and dates round-trip", arguments: TestBackends.all)
    func roundTrip(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let when = Date(timeIntervalSince1970: 1_790_000_000.123)
            try await database.sql.raw(
                "INSERT INTO jobs (id, payload, claimed_by, done, created_at) VALUES (\(bind: 1), \(bind: "a 'quoted', \"text\"\nü"), \(bind: String?.none), \(bind: true), \(bind: when))"
            ).run()
            let found = try await database.sql.raw("SELECT * FROM jobs WHERE id = \(bind: 1)").first()
            let row = try #require(found)
            let payload = try row.decode(column: "payload", as: String.self)
            #expect(payload == "a 'quoted', \"text\"\nü")
            let isNull = try row.decodeNil(column: "claimed_by")
            #expect(isNull)
            let done = try row.decode(column: "done", as: Bool.self)
            #expect(done == true)
            let stored = try row.decode(column: "created_at", as: Date.self)
            #expect(abs(stored.timeIntervalSince(when)) < 0.001)
        }
    }

    @Test("plain rows: cells by position read what SQLKit reads; a cell of another type is an error", arguments: TestBackends.all)
    func plainRows(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let when = Date(timeIntervalSince1970: 1_790_000_000.123)
            for (id, claimed) in [(1, "a 'quoted', \"text\"\nü"), (2, nil), (3, "x")] {
                try await database.sql.raw(
                    "INSERT INTO jobs (id, payload, claimed_by, created_at) VALUES (\(bind: id), \(bind: "p\(id)"), \(bind: claimed), \(bind: id == 2 ? nil : when))"
                ).run()
            }
            let columns = ["id", "claimed_by", "created_at", "payload"]
            let query = database.sql.select().columns(columns.map { SQLIdentifier($0) }).from("jobs")
                .where("id", .lessThan, 3).orderBy("id")
            let rows = try await database.plainRows(query.query, columns: columns)
            #expect(rows.count == 2)
            #expect(try rows.map { try $0.requiredInteger(0) } == [1, 2])
            #expect(try rows.map { try $0.text(1) } == ["a 'quoted', \"text\"\nü", nil])
            let stored = try rows[0].date(2)
            #expect(abs(try #require(stored).timeIntervalSince(when)) < 0.001)
            #expect(try rows[1].date(2) == nil)
            #expect(try rows[0].requiredText(3) == "p1")
            #expect(throws: (any Error).self) { try rows[1].requiredText(1) }
            #expect(throws: (any Error).self) { try rows[0].integer(3) }
        }
    }

    @Test("a repeated unique key is told apart from other refusals", arguments: TestBackends.all)
    func uniqueViolation(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            try await database.sql.raw("INSERT INTO jobs (id, payload) VALUES (1, 'a')").run()
            do {
                try await database.sql.raw("INSERT INTO jobs (id, payload) VALUES (1, 'b')").run()
                Issue.record("a repeated id was accepted")
            } catch {
                #expect(StorageError.isUniqueViolation(error), "\(String(reflecting: error))")
            }
            do {
                try await database.sql.raw("INSERT INTO jobs (id, payload) VALUES (2, NULL)").run()
                Issue.record("a null payload was accepted")
            } catch {
                #expect(!StorageError.isUniqueViolation(error), "\(String(reflecting: error))")
            }
            #expect(!StorageError.isUniqueViolation(StorageError.misuse("x")))
        }
    }

    @Test("a transaction commits, or rolls back everything when it throws", arguments: TestBackends.all)
    func transactions(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await database.transaction { db in
                    try await db.raw("INSERT INTO jobs (id, payload) VALUES (1, 'x')").run()
                    throw Boom()
                }
            }
            let none = try await count(database)
            #expect(none == 0)
            try await database.transaction { db in
                try await db.raw("INSERT INTO jobs (id, payload) VALUES (1, 'x')").run()
            }
            let one = try await count(database)
            #expect(one == 1)
        }
    }

    @Test("a transaction whose task is cancelled half way is all or nothing, and the database stays usable", arguments: TestBackends.all)
    func cancelledTransaction(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let task = Task {
                try await database.transaction { db in
                    try await db.raw("INSERT INTO jobs (id, payload) VALUES (1, 'x')").run()
                    withUnsafeCurrentTask { $0?.cancel() }
                    try await db.raw("INSERT INTO jobs (id, payload) VALUES (2, 'y')").run()
                }
            }
            _ = await task.result
            let rows = try await count(database)
            #expect(rows == 0 || rows == 2, "half a transaction was kept: \(rows) rows")
            // The connection is not left inside the cancelled transaction: the next one works and commits.
            try await database.transaction { db in
                try await db.raw("INSERT INTO jobs (id, payload) VALUES (3, 'z')").run()
            }
            let after = try await count(database)
            #expect(after == rows + 1)
        }
    }

    @Test("8 concurrent claimers drain a queue and no row is claimed twice", arguments: TestBackends.all)
    func concurrentClaims(backend: DatabaseBackend) async throws {
        let test = TestDatabase(backend)
        let rows = 40
        try await test.with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            try await database.transaction { db in
                for id in 1...rows {
                    try await db.raw("INSERT INTO jobs (id, payload) VALUES (\(bind: id), \(bind: "job \(id)"))").run()
                }
            }
        }
        // Two independent pools on the same data stand for two replicas (one on SQLite, which has one writer).
        let claims = NIOLockedValueBox<[Int]>([])
        let replicas = backend == .postgres ? 2 : 1
        try await withThrowingTaskGroup(of: Void.self) { outer in
            for replica in 0..<replicas {
                outer.addTask {
                    try await test.with { database in
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for worker in 0..<(8 / replicas) {
                                group.addTask {
                                    while let id = try await claim(database, by: "r\(replica)-w\(worker)") {
                                        claims.withLockedValue { $0.append(id) }
                                    }
                                }
                            }
                            try await group.waitForAll()
                        }
                    }
                }
            }
            try await outer.waitForAll()
        }
        let claimed = claims.withLockedValue { $0 }
        #expect(claimed.count == rows, "every row claimed exactly once")
        #expect(Set(claimed) == Set(1...rows))
        try await test.with { database in
            let unclaimed = try await database.sql.raw("SELECT COUNT(*) AS n FROM jobs WHERE claimed_by IS NULL").first()
            let left = try unclaimed?.decode(column: "n", as: Int.self)
            #expect(left == 0)
        }
    }

    @Test("a lease has one holder until it expires", arguments: TestBackends.all)
    func leases(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend).with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            let leases = Leases(database)
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            let aTakes = try await leases.acquire("reaper", holder: "a", ttl: .seconds(30), now: t0)
            #expect(aTakes)
            let bRefused = try await leases.acquire("reaper", holder: "b", ttl: .seconds(30), now: t0.addingTimeInterval(10))
            #expect(!bRefused)
            let aRenews = try await leases.acquire("reaper", holder: "a", ttl: .seconds(30), now: t0.addingTimeInterval(20))
            #expect(aRenews)
            let bRefusedStill = try await leases.acquire("reaper", holder: "b", ttl: .seconds(30), now: t0.addingTimeInterval(45))
            #expect(!bRefusedStill)
            let bTakesExpired = try await leases.acquire("reaper", holder: "b", ttl: .seconds(30), now: t0.addingTimeInterval(51))
            #expect(bTakesExpired)
            try await leases.release("reaper", holder: "b")
            let aTakesReleased = try await leases.acquire("reaper", holder: "a", ttl: .seconds(30), now: t0.addingTimeInterval(52))
            #expect(aTakesReleased)
        }
    }

    @Test("SQLite: a committed row survives reopening the file; misuse inside a transaction fails instead of hanging")
    func sqliteDurabilityAndMisuse() async throws {
        let test = TestDatabase(.sqlite)
        try await test.with { database in
            try await Migrator(Self.migrations).migrate(database, logger: quietLogger)
            try await database.transaction { db in
                try await db.raw("INSERT INTO jobs (id, payload) VALUES (7, 'kept')").run()
            }
            let mode = try await database.sql.raw("PRAGMA journal_mode").first()
            let journal = try mode?.decode(column: "journal_mode", as: String.self)
            #expect(journal == "wal")
            await #expect(throws: StorageError.self) {
                try await database.transaction { _ in
                    _ = try await database.sql.raw("SELECT 1").all()
                }
            }
        }
        try await test.with { database in
            let kept = try await count(database)
            #expect(kept == 1)
        }
    }
}

/// Claims the oldest unclaimed job: the pattern every queue in LabPortal uses.
func claim(_ database: Database, by worker: String) async throws -> Int? {
    try await database.transaction { db in
        guard
            let row = try await db.select().column("id").from("jobs").where("claimed_by", .is, SQLLiteral.null)
                .orderBy("id").limit(1).lockingClause(ForUpdateSkipLocked()).first()
        else { return nil }
        let id = try row.decode(column: "id", as: Int.self)
        try await db.update("jobs").set("claimed_by", to: worker).where("id", .equal, id).run()
        return id
    }
}

func count(_ database: Database) async throws -> Int {
    let row = try await database.sql.raw("SELECT COUNT(*) AS n FROM jobs").first()
    return try row?.decode(column: "n", as: Int.self) ?? -1
}
