import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO

/// One SQLite connection per database file, shared by the whole process, as an `SQLDatabase`.
///
/// Every statement and every session takes the connection in turn (first come, first served), so a transaction
/// never interleaves with another task's statements. One connection is both the fastest and the only correct
/// choice here: sqlite-nio's busy handler spins on the thread pool when several connections contend.
final class SerializedSQLiteDatabase: AsyncSQLDatabase, @unchecked Sendable {
    // @unchecked: every stored property is immutable and itself thread-safe.
    private let connection: SQLiteConnection
    private let inner: any SQLDatabase
    private let mutex = AsyncMutex()
    let logger: Logger

    @TaskLocal static var sessionOwner: ObjectIdentifier?

    init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.inner = connection.sql()
        self.logger = logger
    }

    var eventLoop: any EventLoop { inner.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { inner.version }
    var dialect: any SQLDialect { inner.dialect }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try checkNotInOwnSession()
        await mutex.lock()
        defer { mutex.unlock() }
        try await inner.execute(sql: query, onRow)
    }

    /// The rows of one statement, read by sqlite-nio directly (no SQLKit rows).
    func rows(sql: String, binds: [SQLiteData]) async throws -> [SQLiteRow] {
        try checkNotInOwnSession()
        await mutex.lock()
        defer { mutex.unlock() }
        if let level = queryLogLevel { logger.log(level: level, "Executing query", metadata: ["sql": "\(sql)"]) }
        return try await connection.query(sql, binds)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try checkNotInOwnSession()
        await mutex.lock()
        defer { mutex.unlock() }
        return try await Self.$sessionOwner.withValue(ObjectIdentifier(self)) {
            try await closure(inner)
        }
    }

    /// Code inside a session must use the session's database, not this one: this one waits for the session to end,
    /// which would never happen. Fail loudly instead of hanging.
    private func checkNotInOwnSession() throws {
        if Self.sessionOwner == ObjectIdentifier(self) {
            throw StorageError.misuse(
                "a query used the shared database inside its own transaction; use the transaction's database")
        }
    }

    private let closed = NIOLockedValueBox(false)

    /// Closes the connection once; later calls do nothing.
    func close() async throws {
        try await mutex.withLock {
            guard !closed.withLockedValue({ value in defer { value = true }; return value }) else { return }
            try await connection.close()
        }
    }
}
