import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import SQLKit

/// PostgreSQL through postgres-nio's `PostgresClient` pool, as an `SQLDatabase`.
///
/// A statement leases a connection for itself; a session leases one for its whole closure, so a transaction's
/// statements all run on one connection. The client must be running (`Database.run()`) for leases to be served.
///
/// Every statement and every session has a time limit (`timeout`). A connection the server ends while a statement
/// runs on it (a restart, `pg_terminate_backend`) can leave that statement, or the ROLLBACK after it, waiting for
/// good inside postgres-nio; seen under load with `pg_ctl restart -m fast`, where it stopped every later allocation
/// of a replica. At the limit, or on an error that says the connection is gone, the connection is closed, so the pool
/// drops it and the statement fails, and the caller gets an error instead of waiting for ever.
struct PostgresClientDatabase: AsyncSQLDatabase {
    let client: PostgresClient
    let logger: Logger
    let eventLoop: any EventLoop
    let timeout: Duration

    /// A longer limit for the sessions started inside `body` (migrations at start).
    @TaskLocal static var timeoutOverride: Duration?

    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let logger = self.logger
        let limit = Self.timeoutOverride ?? timeout
        let query = Handed(value: query)
        try await client.withConnection { connection in
            try await Self.guarded(connection, limit: limit, logger: logger) {
                try await connection.sql(logger: logger).execute(sql: query.value, onRow)
            }
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let logger = self.logger
        let limit = Self.timeoutOverride ?? timeout
        return try await client.withConnection { connection in
            try await Self.guarded(connection, limit: limit, logger: logger) {
                Handed(value: try await closure(connection.sql(logger: logger)))
            }.value
        }
    }

    static func guarded<T: Sendable>(
        _ connection: PostgresConnection, limit: Duration, logger: Logger, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        // A connection the server closed fails what runs on it now, instead of leaving it to wait (postgres-nio
        // 1.33 does not always fail a statement on a connection that a FATAL error closed).
        guard !connection.isClosed else { throw ConnectionClosed() }
        let closed = connection.closeFuture
        let outcome = await answerWithin(limit, abort: { abort in closed.whenComplete { _ in abort(ConnectionClosed()) } }, body)
        switch outcome {
        case .success(let value):
            return value
        case .failure(let error):
            if error is DatabaseTimeout || connectionGone(error) {
                logger.warning(
                    "closing a PostgreSQL connection",
                    metadata: ["reason": "\(error is DatabaseTimeout ? "\(error)" : "the connection is gone: \(String(reflecting: error))")"])
                // Bounded too: a close that does not answer is left to finish on its own.
                _ = await answerWithin(.seconds(5)) { try await connection.close() }
            }
            throw error
        }
    }

    /// True when `error` means the connection can serve nothing more: closed by either side, broken, or ended by the
    /// server with a FATAL error (57P01 on a restart). Its transaction is gone with it; a ROLLBACK would only wait.
    static func connectionGone(_ error: any Error) -> Bool {
        if error is ConnectionClosed { return true }
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
            return true
        case .server:
            let severity = error.serverInfo?[.severity]
            return severity == "FATAL" || severity == "PANIC"
        default:
            return false
        }
    }
}

/// A statement or transaction whose connection closed under it.
struct ConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the PostgreSQL connection closed" }
}

/// `postgres://user:password@host:port/database?sslmode=disable|prefer|require`
struct PostgresURL {
    var configuration: PostgresClient.Configuration

    init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            ["postgres", "postgresql"].contains(components.scheme ?? "")
        else {
            throw StorageError.configuration("db.url must look like postgres://user:password@host:5432/database")
        }
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw StorageError.configuration("db.url: sslmode must be disable, prefer or require")
        }
        configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password,
            database: database.isEmpty ? nil : database, tls: tls)
    }
}

extension StorageError {
    /// True when `error` says the database could not be reached or did not answer in time (not a bug in the query):
    /// callers answer "unavailable, try again" for it.
    public static func databaseUnavailable(_ error: any Error) -> Bool {
        if error is DatabaseTimeout || PostgresClientDatabase.connectionGone(error) { return true }
        // 57014: the server cancelled a statement past statement_timeout.
        if let error = error as? PSQLError, error.code == .server, error.serverInfo?[.sqlState] == "57014" { return true }
        return false
    }
}
