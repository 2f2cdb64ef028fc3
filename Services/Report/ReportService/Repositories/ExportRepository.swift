import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

public struct ExportRepository: Sendable {
    let database: Database

    public init(database: Database) { self.database = database }

    static func decode(_ row: any SQLRow) throws -> ExportRecord {
        let filters = try row.decode(column: "filters", as: String.self)
        return ExportRecord(
            id: try row.decode(column: "id", as: Int64.self),
            kind: try row.decodeEnum(column: "kind", as: ExportKind.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            ownerEmail: try row.decode(column: "owner_email", as: String.self),
            filters: try StorageError.json(ExportFilters.self, filters, column: "filters"),
            notifyByEmail: try row.decode(column: "notify_by_email", as: Bool.self),
            state: try row.decodeEnum(column: "state", as: ExportState.self),
            rows: try row.decode(column: "rows", as: Int.self),
            bytes: try row.decode(column: "bytes", as: Int.self),
            error: try row.decode(column: "error", as: String?.self),
            attempts: try row.decode(column: "attempts", as: Int.self),
            holder: try row.decode(column: "holder", as: String?.self),
            leaseUntil: try row.decode(column: "lease_until", as: Date?.self),
            createdAt: try row.decode(column: "created_at", as: Date.self),
            readyAt: try row.decode(column: "ready_at", as: Date?.self),
            expiresAt: try row.decode(column: "expires_at", as: Date?.self),
            emailedAt: try row.decode(column: "emailed_at", as: Date?.self))
    }

    public enum CreateOutcome: Sendable, Equatable {
        case created(ExportRecord)
        /// The requester already has this many unfinished exports.
        case tooMany(Int)
    }

    /// Queues an export, unless its requester has `maximumUnfinished` exports not yet ready or failed. The count and
    /// the insert are one transaction, serialised per requester (a lock on the counters row).
    public func create(
        kind: ExportKind, owner: AuthenticatedUser, filters: ExportFilters, notifyByEmail: Bool,
        maximumUnfinished: Int, now: Date
    ) async throws -> CreateOutcome {
        let now = EducatesTime.truncate(now)
        let filtersText = String(decoding: try JSONEncoder().encode(filters), as: UTF8.self)
        return try await database.transaction { db in
            _ = try await db.select().column("value").from("counters").where("name", .equal, "exports")
                .lockingClause(ForUpdate()).first()
            let unfinished = try await db.raw(
                """
                SELECT COUNT(*) AS n FROM exports WHERE owner_id = \(bind: owner.id)
                AND state IN (\(binds: ExportState.unfinished.map(\.rawValue)))
                """
            ).first()?.decode(column: "n", as: Int.self) ?? 0
            if unfinished >= maximumUnfinished { return .tooMany(unfinished) }
            guard
                let row = try await db.raw(
                    "UPDATE counters SET value = value + 1 WHERE name = 'exports' RETURNING value"
                ).first()
            else { throw StorageError.misuse("no exports counter") }
            let id = try row.decode(column: "value", as: Int64.self)
            try await db.insert(into: "exports")
                .columns(
                    "id", "kind", "owner_id", "owner_email", "filters", "notify_by_email", "state", "rows", "bytes",
                    "error", "attempts", "holder", "lease_until", "next_attempt_at", "created_at", "updated_at",
                    "ready_at", "expires_at", "emailed_at")
                .values(
                    SQLBind(id), SQLBind(kind.rawValue), SQLBind(owner.id), SQLBind(owner.email), SQLBind(filtersText),
                    SQLBind(notifyByEmail), SQLBind(ExportState.queued.rawValue), SQLBind(0), SQLBind(0),
                    SQLLiteral.null, SQLBind(0), SQLLiteral.null, SQLLiteral.null, SQLBind(now), SQLBind(now),
                    SQLBind(now), SQLLiteral.null, SQLLiteral.null, SQLLiteral.null)
                .run()
            return .created(
                ExportRecord(
                    id: id, kind: kind, ownerID: owner.id, ownerEmail: owner.email, filters: filters,
                    notifyByEmail: notifyByEmail, state: .queued, rows: 0, bytes: 0, error: nil, attempts: 0,
                    holder: nil, leaseUntil: nil, createdAt: now, readyAt: nil, expiresAt: nil, emailedAt: nil))
        }
    }

    public func export(_ id: Int64) async throws -> ExportRecord? {
        try await database.sql.select().column("*").from("exports").where("id", .equal, id).first().map(Self.decode)
    }

    /// Claims the oldest job that is queued, or running under a lapsed lease, and due. With replicas on PostgreSQL
    /// two claimers never get one job (`FOR UPDATE SKIP LOCKED`); on SQLite the transaction is exclusive.
    public func claim(holder: String, lease: TimeInterval, now: Date) async throws -> ExportRecord? {
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            guard
                var record = try await db.select().column("*").from("exports")
                    .where(SQLQueryString(
                        """
                        (state = \(bind: ExportState.queued.rawValue)
                            OR (state = \(bind: ExportState.running.rawValue) AND lease_until < \(bind: now)))
                        AND next_attempt_at <= \(bind: now)
                        """))
                    .orderBy("next_attempt_at").orderBy("id").limit(1).lockingClause(ForUpdateSkipLocked()).first()
                    .map(Self.decode)
            else { return nil }
            record = try record.claimed(by: holder, leaseUntil: now.addingTimeInterval(lease))
            try await db.update("exports").set("state", to: record.state.rawValue).set("holder", to: holder)
                .set("lease_until", to: record.leaseUntil).set("attempts", to: record.attempts).set("rows", to: 0)
                .set("bytes", to: 0).set("updated_at", to: now).where("id", .equal, record.id).run()
            return record
        }
    }

    /// Renews the lease and records progress. False when the job is no longer this holder's (it lost the lease).
    public func heartbeat(_ id: Int64, holder: String, rows: Int, lease: TimeInterval, now: Date) async throws -> Bool {
        let now = EducatesTime.truncate(now)
        let rows = try await database.sql.raw(
            """
            UPDATE exports SET rows = \(bind: rows), lease_until = \(bind: now.addingTimeInterval(lease)),
                updated_at = \(bind: now)
            WHERE id = \(bind: id) AND holder = \(bind: holder) AND state = \(bind: ExportState.running.rawValue)
            RETURNING id
            """
        ).all()
        return !rows.isEmpty
    }

    /// The job is done: ready until `expiresAt`.
    public func finish(_ id: Int64, holder: String, rows: Int, bytes: Int, expiresAt: Date, now: Date) async throws -> Bool {
        let now = EducatesTime.truncate(now)
        return !(try await database.sql.raw(
            """
            UPDATE exports SET state = \(bind: ExportState.running.after(.finished).rawValue), rows = \(bind: rows), bytes = \(bind: bytes), error = NULL,
                holder = NULL, lease_until = NULL, ready_at = \(bind: now), expires_at = \(bind: EducatesTime.truncate(expiresAt)),
                updated_at = \(bind: now)
            WHERE id = \(bind: id) AND holder = \(bind: holder) AND state = \(bind: ExportState.running.rawValue)
            RETURNING id
            """
        ).all()).isEmpty
    }

    /// The job failed for good: say why. A failed report is kept (and pollable) for `retention`.
    public func fail(_ id: Int64, holder: String?, message: String, expiresAt: Date, now: Date) async throws {
        let now = EducatesTime.truncate(now)
        var update = database.sql.update("exports").set("state", to: ExportState.failed.rawValue)
            .set("error", to: String(message.prefix(2000))).set("holder", to: SQLLiteral.null)
            .set("lease_until", to: SQLLiteral.null).set("expires_at", to: EducatesTime.truncate(expiresAt))
            .set("updated_at", to: now).where("id", .equal, id)
        if let holder { update = update.where("holder", .equal, holder) }
        try await update.run()
    }

    /// Gives the job back (a graceful shutdown, or a retry after `at`): queued again, runs from the start.
    public func release(_ id: Int64, holder: String, retryAt: Date, message: String?, now: Date) async throws {
        let now = EducatesTime.truncate(now)
        try await database.sql.update("exports").set("state", to: ExportState.queued.rawValue)
            .set("holder", to: SQLLiteral.null).set("lease_until", to: SQLLiteral.null)
            .set("next_attempt_at", to: EducatesTime.truncate(retryAt)).set("error", to: message)
            .set("updated_at", to: now).where("id", .equal, id).where("holder", .equal, holder).run()
    }

    public func markEmailed(_ id: Int64, now: Date) async throws {
        try await database.sql.update("exports").set("emailed_at", to: EducatesTime.truncate(now)).where("id", .equal, id)
            .run()
    }

    /// Ready reports with an email still to send.
    public func unsentEmails(limit: Int) async throws -> [ExportRecord] {
        try await database.sql.select().column("*").from("exports").where("state", .equal, ExportState.ready.rawValue)
            .where("notify_by_email", .equal, true).where(SQLIdentifier("emailed_at"), .is, SQLLiteral.null)
            .orderBy("id").limit(limit).all().map(Self.decode)
    }

    /// Finished reports past their retention (their files are deleted first by the caller).
    public func expired(now: Date, limit: Int) async throws -> [ExportRecord] {
        try await database.sql.select().column("*").from("exports")
            .where(SQLIdentifier("expires_at"), .lessThanOrEqual, SQLBind(EducatesTime.truncate(now)))
            .orderBy("id").limit(limit).all().map(Self.decode)
    }

    public func delete(_ id: Int64) async throws {
        try await database.sql.delete(from: "exports").where("id", .equal, id).run()
    }
}
