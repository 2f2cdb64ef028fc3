import Foundation
import SQLKit

/// The rows of a transactional outbox: messages written in the same transaction as the change they describe, then
/// delivered (and deleted) by a background loop. One table per outbox, with at least the columns `id` (text),
/// `seq` (the order messages came in), `payload` (text), `attempts`, `next_attempt_at` and `created_at`; optionally
/// a destination column (messages to one destination keep their order, others go on when one fails), a label column
/// (what the message is about, for logs) and a column for the last error. Knows nothing of what the payloads mean.
public struct OutboxStore: Sendable {
    public struct Table: Sendable {
        public var name: String
        public var destination: String?
        public var label: String?
        public var lastError: String?

        public init(name: String, destination: String? = nil, label: String? = nil, lastError: String? = nil) {
            self.name = name
            self.destination = destination
            self.label = label
            self.lastError = lastError
        }
    }

    /// A message waiting for delivery.
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var destination: String?
        public var label: String?
        public var payload: String
        /// Failed attempts so far.
        public var attempts: Int
    }

    public let table: Table
    let database: Database

    public init(database: Database, table: Table) {
        self.database = database
        self.table = table
    }

    /// Adds a message inside the caller's transaction (or on its own). `seq` follows the order of insertion, so
    /// messages of one instant keep the order they happened in. A destination or label given to a table without
    /// that column is a misuse (it would be dropped silently).
    public func enqueue(
        id: String, payload: String, destination: String? = nil, label: String? = nil, at time: Date,
        on db: (any SQLDatabase)? = nil
    ) async throws {
        guard (destination == nil || table.destination != nil) && (label == nil || table.label != nil) else {
            throw StorageError.misuse("\(table.name) has no column for a message's destination or label")
        }
        let db = db ?? database.sql
        var columns = ["id", "seq", "payload", "attempts", "next_attempt_at", "created_at"]
        var values: [any SQLExpression] = [SQLBind(id), SQLRaw("COALESCE(MAX(seq), 0) + 1"), SQLBind(payload), SQLBind(0),
                                           SQLBind(time), SQLBind(time)]
        if let column = table.destination {
            columns.append(column)
            values.append(SQLBind(destination))
        }
        if let column = table.label {
            columns.append(column)
            values.append(SQLBind(label))
        }
        try await db.raw(
            """
            INSERT INTO \(ident: table.name) (\(idents: columns, joinedBy: ", "))
            SELECT \(SQLList(values)) FROM \(ident: table.name)
            """
        ).run()
    }

    /// Messages due at `time`, in the order they came in.
    public func due(at time: Date, limit: Int) async throws -> [Entry] {
        var columns: [any SQLExpression] = [
            SQLIdentifier("id"), SQLIdentifier("payload"), SQLIdentifier("attempts"),
        ]
        if let column = table.destination { columns.append(SQLAlias(SQLIdentifier(column), as: SQLIdentifier("destination"))) }
        if let column = table.label { columns.append(SQLAlias(SQLIdentifier(column), as: SQLIdentifier("label"))) }
        let rows = try await database.sql.select().columns(columns).from(table.name)
            .where(SQLIdentifier("next_attempt_at"), .lessThanOrEqual, SQLBind(time))
            .orderBy("seq").orderBy("id").limit(limit).all()
        return try rows.map { row in
            Entry(
                id: try row.decode(column: "id", as: String.self),
                destination: table.destination == nil ? nil : try row.decodeOptional(column: "destination", as: String.self),
                label: table.label == nil ? nil : try row.decodeOptional(column: "label", as: String.self),
                payload: try row.decode(column: "payload", as: String.self),
                attempts: try row.decode(column: "attempts", as: Int.self))
        }
    }

    /// The message is delivered (or dropped).
    public func remove(_ id: String) async throws {
        try await database.sql.delete(from: table.name).where("id", .equal, id).run()
    }

    /// An attempt failed: count it and keep its error.
    public func recordFailure(_ id: String, attempts: Int, error: String) async throws {
        var update = database.sql.update(table.name).set("attempts", to: attempts)
        if let column = table.lastError { update = update.set(SQLIdentifier(column), to: SQLBind(String(error.prefix(500)))) }
        try await update.where("id", .equal, id).run()
    }

    /// Moves every message due at `time` (of one destination, or all when nil) to `until`.
    public func postpone(destination: String?, dueAt time: Date, until: Date) async throws {
        var update = database.sql.update(table.name).set("next_attempt_at", to: until)
        if let destination, let column = table.destination { update = update.where(column, .equal, destination) }
        try await update.where(SQLIdentifier("next_attempt_at"), .lessThanOrEqual, SQLBind(time)).run()
    }

    /// How many messages wait.
    public func count() async throws -> Int {
        try await database.sql.select().column(SQLFunction("COUNT", args: SQLLiteral.all), as: "n").from(table.name)
            .first()?.decode(column: "n", as: Int.self) ?? 0
    }
}
