import Foundation
import SQLKit
import Storage
import TestSupport
import Testing

/// PostgreSQL connections that break under a statement: the caller gets an error in bounded time and the pool goes on.
@Suite("PostgreSQL: connections ended by the server, statements past their limit")
struct ConnectionFailureTests {
    static func database(timeout: Duration) -> DatabaseConfiguration? {
        guard TestBackends.postgresURL != nil else { return nil }
        var configuration = TestDatabase(.postgres, label: "conn").configuration
        configuration.timeout = timeout
        return configuration
    }

    @Test("a transaction whose connection the server terminates fails at once, unavailable; the next one works")
    func terminatedMidTransaction() async throws {
        guard let configuration = Self.database(timeout: .seconds(300)) else {
            #expect(!TestBackends.postgresRequired, "PostgreSQL is required in this run")
            return
        }
        let database = try await Database.open(configuration, logger: quietLogger)
        try await database.withRunning { database in
            try await Migrator([Migration(version: 1, name: "t", statements: ["CREATE TABLE t (id BIGINT PRIMARY KEY)"])])
                .migrate(database, logger: quietLogger)
            let started = ContinuousClock.now
            let outcome: Result<Int, any Error> = await Result {
                try await database.transaction { db in
                    try await db.raw("INSERT INTO t (id) VALUES (1)").run()
                    let pid = try await db.raw("SELECT pg_backend_pid() AS pid").first()!.decode(column: "pid", as: Int.self)
                    // Another connection ends this one, as a server restart does, while it is inside the transaction.
                    try await database.sql.raw("SELECT pg_terminate_backend(CAST(\(bind: pid) AS INTEGER))").run()
                    try await db.raw("SELECT 1").run()
                    return pid
                }
            }
            guard case .failure(let error) = outcome else {
                Issue.record("the transaction on a terminated connection succeeded")
                return
            }
            #expect(StorageError.databaseUnavailable(error), "\(String(reflecting: error))")
            #expect(ContinuousClock.now - started < .seconds(120), "it failed without waiting for the 300 s limit")
            // Nothing of it was committed, and the pool serves the next transaction on a working connection.
            let count = try await database.transaction { db in
                try await db.raw("SELECT COUNT(*) AS n FROM t").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 0)
        }
    }

    @Test("a statement past the limit fails as unavailable in bounded time, the server stops it, and the pool goes on")
    func statementPastItsLimit() async throws {
        guard let configuration = Self.database(timeout: .seconds(1)) else {
            #expect(!TestBackends.postgresRequired, "PostgreSQL is required in this run")
            return
        }
        let database = try await Database.open(configuration, logger: quietLogger)
        try await database.withRunning { database in
            let started = ContinuousClock.now
            try await Migrator([]).migrate(database, logger: quietLogger)
            for transaction in [false, true] {
                let outcome: Result<Void, any Error> = await Result {
                    if transaction {
                        try await database.transaction { db in try await db.raw("SELECT pg_sleep(600)").run() }
                    } else {
                        try await database.sql.raw("SELECT pg_sleep(600)").run()
                    }
                }
                guard case .failure(let error) = outcome else {
                    Issue.record("a 600 s statement finished under a 1 s limit")
                    continue
                }
                #expect(StorageError.databaseUnavailable(error), "\(String(reflecting: error))")
            }
            // Far below the statements' 600 s (the bound is loose: the test may share the machine with many).
            #expect(ContinuousClock.now - started < .seconds(120))
            try await database.ping()
            // The server no longer runs the abandoned statements: their connections were closed.
            var sleeping = 1
            for _ in 0..<50 {
                sleeping = try await database.sql.raw(
                    "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%' AND state = 'active'"
                ).first()!.decode(column: "n", as: Int.self)
                if sleeping == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(sleeping == 0)
        }
    }
}

extension Result where Failure == any Error {
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
