import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SQLKit
import SQLiteNIO
import ServiceLifecycle

public enum DatabaseBackend: String, Sendable, Codable, CaseIterable {
    case sqlite
    case postgres
}

public enum SQLiteSynchronous: String, Sendable, Codable, CaseIterable {
    case full = "FULL"
    case normal = "NORMAL"
}

public struct DatabaseConfiguration: Sendable, Equatable {
    public var backend: DatabaseBackend
    /// SQLite: the database file (its directory is created). `:memory:` for a private in-memory database.
    public var sqlitePath: String
    /// PostgreSQL: `postgres://user:password@host:port/database`.
    public var postgresURL: String?
    /// PostgreSQL: the schema that holds this service's tables (created if missing), so that several services can
    /// share one database without sharing tables.
    public var schema: String
    /// PostgreSQL: the most connections this process opens.
    public var maxConnections: Int
    /// PostgreSQL: the longest a statement, or a transaction with all its statements, may take before its connection
    /// is closed and the caller gets `DatabaseTimeout` (migrations at start get an hour).
    public var timeout: Duration = .seconds(30)
    /// SQLite: `full` (the default) syncs the WAL on every commit, so a commit survives a power cut; `normal`
    /// syncs at checkpoints only: a commit survives a crash of the process, but the last ones may be lost to a
    /// power cut or an OS crash. Several times more commits per second on slow disks.
    public var sqliteSynchronous: SQLiteSynchronous = .full

    public init(
        backend: DatabaseBackend, sqlitePath: String = ":memory:", postgresURL: String? = nil,
        schema: String = "public", maxConnections: Int = 10
    ) {
        self.backend = backend
        self.sqlitePath = sqlitePath
        self.postgresURL = postgresURL
        self.schema = schema
        self.maxConnections = maxConnections
    }

    public static func sqlite(path: String) -> Self { .init(backend: .sqlite, sqlitePath: path) }

    public static func postgres(url: String, schema: String) -> Self {
        .init(backend: .postgres, postgresURL: url, schema: schema)
    }
}

/// A service's database: one portable `SQLDatabase` (SQLKit) over SQLite or PostgreSQL, a transaction helper that is
/// correct on both for the races that matter, and the lifecycle of the connections.
///
/// Repositories take `any SQLDatabase` and write their SQL once. Backend differences live here: the way a write
/// transaction begins, row locking (`ForUpdate`, `ForUpdateSkipLocked`), and the migrator's lock.
public final class Database: Service, Sendable {
    public let backend: DatabaseBackend
    public let sql: any SQLDatabase
    /// PostgreSQL: the schema of this service's tables; nil on SQLite.
    public let schema: String?
    private let closer: @Sendable () async throws -> Void
    private let runner: (@Sendable () async -> Void)?
    private let logger: Logger

    private init(
        backend: DatabaseBackend, sql: any SQLDatabase, schema: String?, logger: Logger,
        runner: (@Sendable () async -> Void)?, closer: @escaping @Sendable () async throws -> Void
    ) {
        self.backend = backend
        self.sql = sql
        self.schema = schema
        self.logger = logger
        self.runner = runner
        self.closer = closer
    }

    /// Opens the database. For PostgreSQL the pool serves queries only while `run()` runs (add the database to the
    /// service group, or use `withRunning`).
    public static func open(_ configuration: DatabaseConfiguration, logger: Logger) async throws -> Database {
        switch configuration.backend {
        case .sqlite:
            let storage: SQLiteConnection.Storage
            if configuration.sqlitePath == ":memory:" || configuration.sqlitePath.isEmpty {
                storage = .memory
            } else {
                let directory = URL(fileURLWithPath: configuration.sqlitePath).deletingLastPathComponent().path
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw StorageError.configuration("cannot create the data directory \(directory): \(error)")
                }
                storage = .file(path: configuration.sqlitePath)
            }
            let connection: SQLiteConnection
            do {
                connection = try await SQLiteConnection.open(storage: storage, logger: logger)
            } catch {
                throw StorageError.configuration("cannot open SQLite database \(configuration.sqlitePath): \(error)")
            }
            let database = SerializedSQLiteDatabase(connection: connection, logger: logger)
            // WAL lets readers of other tools run beside the writer; FULL sync (the default) makes a committed
            // transaction survive a power cut; foreign keys are off by default in SQLite. Reads go through a memory
            // map of up to 256 MB of the file rather than a read call and a copy per page (bulk reads, such as an
            // export of a million labs, spend a tenth less CPU); writes are unchanged.
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=\(configuration.sqliteSynchronous.rawValue)",
                           "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000", "PRAGMA mmap_size=268435456"] {
                try await database.raw(SQLQueryString(pragma)).run()
            }
            logger.info("database open", metadata: ["backend": "sqlite", "path": "\(configuration.sqlitePath)"])
            return Database(
                backend: .sqlite, sql: database, schema: nil, logger: logger, runner: nil, closer: { try await database.close() })

        case .postgres:
            guard let url = configuration.postgresURL, !url.isEmpty else {
                throw StorageError.configuration("db.url is required when db.backend is postgres")
            }
            guard configuration.schema.range(of: #"^[a-z_][a-z0-9_]{0,62}$"#, options: .regularExpression) != nil
            else {
                throw StorageError.configuration(
                    "db.schema must be a lowercase SQL identifier (letters, digits, _), got '\(configuration.schema)'")
            }
            var clientConfiguration = try PostgresURL(url).configuration
            // The server cancels a statement past the limit itself (57014), and keeps the connection; the adapter's
            // own guard, a little longer, is for a connection that cannot answer at all.
            let limitMS = configuration.timeout.components.seconds * 1000 + configuration.timeout.components.attoseconds / 1_000_000_000_000_000
            clientConfiguration.options.additionalStartupParameters = [
                ("search_path", configuration.schema), ("statement_timeout", String(limitMS)),
            ]
            clientConfiguration.options.maximumConnections = max(2, configuration.maxConnections)
            clientConfiguration.options.connectTimeout = .seconds(5)
            let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
            let database = PostgresClientDatabase(
                client: client, logger: logger, eventLoop: MultiThreadedEventLoopGroup.singleton.any(),
                timeout: configuration.timeout + .seconds(5))
            logger.info(
                "database configured",
                metadata: ["backend": "postgres", "schema": "\(configuration.schema)",
                           "host": "\(clientConfiguration.host ?? "unix socket")"])
            return Database(
                backend: .postgres, sql: database, schema: configuration.schema, logger: logger,
                runner: { await client.run() },
                closer: {})
        }
    }

    /// Runs the pool (PostgreSQL) until graceful shutdown or cancellation, then closes the connections.
    public func run() async throws {
        if let runner {
            // PostgresClient.run() returns only when its task is cancelled: run it beside, cancel it at shutdown.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await runner() }
                try? await gracefulShutdown()
                group.cancelAll()
            }
        } else {
            try? await gracefulShutdown()
        }
        // Close outside this (possibly cancelled) task: a cancelled close would leave the connection open.
        let closer = self.closer
        try await Task { try await closer() }.value
        logger.info("database closed")
    }

    /// Closes the connections of a database that will never run (a start that failed half way).
    public func close() async {
        let closer = self.closer
        try? await Task { try await closer() }.value
    }

    /// Runs `body` with the database running, then shuts it down. For tools and tests outside a service group.
    public func withRunning<T: Sendable>(_ body: @Sendable (Database) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            do {
                let result = try await body(self)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Runs `body` in one transaction on one connection, and commits, or rolls back if it throws.
    ///
    /// - SQLite: `BEGIN IMMEDIATE` takes the write lock at once, so read-then-write races cannot happen.
    /// - PostgreSQL: `BEGIN` (read committed). Lock what you read with `ForUpdate` / `ForUpdateSkipLocked`, or lock
    ///   a parent row `FOR UPDATE` to serialise inserts against a cap.
    ///
    /// Inside `body`, use only the database it is given.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws
        -> T
    {
        let begin = backend == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
        return try await sql.withSession { session in
            try await session.raw(SQLQueryString(begin)).run()
            let result: T
            do {
                result = try await body(session)
            } catch {
                // On a connection that is gone there is no transaction left to roll back, and a ROLLBACK sent there
                // may never be answered; the adapter closes it.
                if !PostgresClientDatabase.connectionGone(error) { await self.rollback(session) }
                throw error
            }
            do {
                // COMMIT and ROLLBACK run outside the caller's task: a cancelled caller must not leave the connection
                // inside an open transaction (on SQLite, the only connection).
                try await Task { try await session.raw("COMMIT").run() }.value
            } catch {
                if !PostgresClientDatabase.connectionGone(error) { await self.rollback(session) }
                throw error
            }
            return result
        }
    }

    private func rollback(_ session: any SQLDatabase) async {
        do {
            try await Task { try await session.raw("ROLLBACK").run() }.value
        } catch {
            logger.error("rollback failed", metadata: ["error": "\(error)"])
        }
    }

    /// Answers when the database does. Used by `/readyz`.
    public func ping() async throws {
        _ = try await sql.raw("SELECT 1 AS ok").all()
    }
}

// MARK: - Row locking that renders per dialect

/// `FOR UPDATE` on PostgreSQL; nothing on SQLite, where `BEGIN IMMEDIATE` already serialises writers.
public struct ForUpdate: SQLExpression {
    public init() {}
    public func serialize(to serializer: inout SQLSerializer) {
        if serializer.dialect.name == "postgresql" { serializer.write("FOR UPDATE") }
    }
}

/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that competing replicas each claim different rows; nothing on
/// SQLite, where the write transaction already excludes every other claimer.
public struct ForUpdateSkipLocked: SQLExpression {
    public init() {}
    public func serialize(to serializer: inout SQLSerializer) {
        if serializer.dialect.name == "postgresql" { serializer.write("FOR UPDATE SKIP LOCKED") }
    }
}

// MARK: - Reading optional columns

extension SQLRow {
    /// The column's value, or nil when it is NULL. Prefer this to `decode(column:as: T?.self)`: sqlite-kit decodes
    /// an `Optional` through a nested `Decoder` (measured: most of the cost of reading a million-row page), while
    /// the plain type converts directly.
    @inlinable
    public func decodeOptional<T: Decodable>(column: String, as type: T.Type = T.self) throws -> T? {
        try decodeNil(column: column) ? nil : decode(column: column, as: T.self)
    }

    /// A column holding the raw value of `T`; an unknown value throws `StorageError.unknownValue` (never a default).
    public func decodeEnum<T: RawRepresentable>(column: String, as type: T.Type = T.self) throws -> T
    where T.RawValue: Decodable & CustomStringConvertible {
        try StorageError.known(T.self, try decode(column: column, as: T.RawValue.self), column: column)
    }

    /// `decodeEnum(column:as:)` of a column that may be NULL.
    public func decodeOptionalEnum<T: RawRepresentable>(column: String, as type: T.Type = T.self) throws -> T?
    where T.RawValue: Decodable & CustomStringConvertible {
        try decodeNil(column: column) ? nil : decodeEnum(column: column, as: T.self)
    }
}
