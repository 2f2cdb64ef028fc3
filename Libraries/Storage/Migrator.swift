import Foundation
import Logging
import SQLKit

/// One versioned step of a service's schema. Versions start at 1 and never change once released; a new change is a
/// new migration.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var apply: @Sendable (_ database: any SQLDatabase, _ backend: DatabaseBackend) async throws -> Void

    public init(
        version: Int, name: String,
        apply: @escaping @Sendable (_ database: any SQLDatabase, _ backend: DatabaseBackend) async throws -> Void
    ) {
        self.version = version
        self.name = name
        self.apply = apply
    }

    /// A migration made of portable SQL statements.
    public init(version: Int, name: String, statements: [String]) {
        self.init(version: version, name: name) { database, _ in
            for statement in statements {
                try await database.raw(SQLQueryString(statement)).run()
            }
        }
    }
}

/// Applies a service's migrations at start, in one transaction, recording each in `schema_migrations`.
///
/// On PostgreSQL an advisory lock serialises replicas that start together; on SQLite the write transaction does.
/// DDL is transactional on both, so a failed migration leaves nothing half done.
public struct Migrator: Sendable {
    public var migrations: [Migration]

    public init(_ migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Returns the versions applied by this call.
    @discardableResult
    public func migrate(_ database: Database, logger: Logger) async throws -> [Int] {
        let versions = migrations.map(\.version)
        guard Set(versions).count == versions.count, versions.allSatisfy({ $0 > 0 }) else {
            throw StorageError.migration("migration versions must be unique and positive: \(versions)")
        }
        let migrations = self.migrations
        let backend = database.backend
        let schema = database.schema
        // A migration may rewrite large tables: it gets an hour, not the statement limit of serving.
        let applied: [Int] = try await PostgresClientDatabase.$timeoutOverride.withValue(.seconds(3600)) {
            try await database.transaction { db in
                if backend == .postgres {
                    // No statement limit for the migration (nor for waiting while another replica migrates).
                    try await db.raw("SET LOCAL statement_timeout = 0").run()
                    try await db.raw("SELECT pg_advisory_xact_lock(7428115301)").run()
                    if let schema {
                        try await db.raw("CREATE SCHEMA IF NOT EXISTS \(ident: schema)").run()
                    }
                }
                try await db.raw(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version BIGINT PRIMARY KEY,
                        name TEXT NOT NULL,
                        applied_at TEXT NOT NULL
                    )
                    """
                ).run()
                let rows = try await db.raw("SELECT version, name FROM schema_migrations ORDER BY version").all()
                var known: [Int: String] = [:]
                for row in rows {
                    known[try row.decode(column: "version", as: Int.self)] = try row.decode(column: "name", as: String.self)
                }
                for migration in migrations {
                    if let name = known[migration.version], name != migration.name {
                        throw StorageError.migration(
                            "version \(migration.version) was applied as '\(name)' but this build calls it '\(migration.name)'")
                    }
                }
                if let newest = known.keys.max(), let ours = migrations.last?.version, newest > ours {
                    throw StorageError.migration(
                        "the database is at version \(newest), newer than this build knows (\(ours)); run a newer build")
                }
                var applied: [Int] = []
                let now = ISO8601DateFormatter().string(from: Date())
                for migration in migrations where known[migration.version] == nil {
                    try await migration.apply(db, backend)
                    try await db.raw(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))"
                    ).run()
                    applied.append(migration.version)
                }
                return applied
            }
        }
        if applied.isEmpty {
            logger.info("database schema is current", metadata: ["version": "\(migrations.last?.version ?? 0)"])
        } else {
            logger.info("database migrated", metadata: ["applied": "\(applied)"])
        }
        return applied
    }
}
