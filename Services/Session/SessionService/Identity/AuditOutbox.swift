import Contracts
import Foundation
import Logging
import ServerKit
import ServiceLifecycle
import SQLKit
import Storage
import Wire

/// What session-service asks classroom-service.
public struct ClassroomPeer: Sendable {
    public var record: @Sendable (AuditRecord.Params) async throws -> Void

    public init(record: @escaping @Sendable (AuditRecord.Params) async throws -> Void) { self.record = record }

    public static func live(_ client: WireClient) -> ClassroomPeer {
        ClassroomPeer(record: { params in
            _ = try await client.call(AuditRecord.method, params, returning: Empty.self, idempotent: true)
        })
    }

    /// For a deployment or a test without classroom-service: every delivery fails and stays queued.
    public static let unavailable = ClassroomPeer(record: { _ in
        throw ServiceFailure(.unavailable, "classroom-service is not configured")
    })
}

/// Audit activities for classroom-service's trail, kept in session-service's database in the same transaction as
/// the change they describe, and delivered (`audit.record`) by the holder of the `session-audit-outbox` lease until
/// classroom-service takes them. Nothing is lost while classroom-service is down.
public final class AuditOutbox: Service, Sendable {
    static let migrations: [Migration] = [
        Migration(
            version: 6, name: "audit_outbox",
            statements: [
                """
                CREATE TABLE audit_outbox (
                    id TEXT PRIMARY KEY,
                    seq BIGINT NOT NULL,
                    payload TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP NOT NULL,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX audit_outbox_due ON audit_outbox (next_attempt_at)",
            ])
    ]

    let database: Database
    let classroom: ClassroomPeer
    let leases: Leases
    let now: @Sendable () -> Date
    let logger: Logger
    let loop: LeasedLoop

    public init(
        database: Database, classroom: ClassroomPeer, leases: Leases, interval: Duration = .seconds(2),
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.database = database
        self.classroom = classroom
        self.leases = leases
        self.now = now
        self.logger = logger
        self.loop = LeasedLoop(
            lease: "session-audit-outbox", leases: leases, interval: interval, failure: "audit delivery pass failed",
            now: now, logger: logger)
    }

    /// Queues an activity inside the caller's transaction.
    static func enqueue(_ params: AuditRecord.Params, on db: any SQLDatabase) async throws {
        let payload = String(decoding: try JSONEncoder().encode(params), as: UTF8.self)
        // Delivery follows this order (activities of one instant keep the order they happened in).
        let seq = try await db.raw("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM audit_outbox").first()?
            .decode(column: "next", as: Int64.self) ?? 1
        try await db.insert(into: "audit_outbox")
            .columns("id", "seq", "payload", "attempts", "next_attempt_at", "created_at")
            .values(SQLBind(params.id), SQLBind(seq), SQLBind(payload), SQLBind(0), SQLBind(params.at), SQLBind(params.at))
            .run()
    }

    public func wake() { loop.wake() }

    public func run() async throws {
        await loop.run { [self] in try await pass() }
    }

    /// Delivers what is due, oldest first; answers how many were delivered. A failure backs off (at most 5 min).
    @discardableResult
    public func pass() async throws -> Int {
        let time = now()
        let rows = try await database.sql.raw(
            """
            SELECT id, payload, attempts FROM audit_outbox WHERE next_attempt_at <= \(bind: time)
            ORDER BY seq, created_at LIMIT 200
            """
        ).all()
        var delivered = 0
        for row in rows {
            let id = try row.decode(column: "id", as: String.self)
            let attempts = try row.decode(column: "attempts", as: Int.self)
            guard let params = try? JSONDecoder().decode(
                AuditRecord.Params.self, from: Data(try row.decode(column: "payload", as: String.self).utf8))
            else {
                logger.error("unreadable audit activity dropped", metadata: ["id": "\(id)"])
                try await database.sql.delete(from: "audit_outbox").where("id", .equal, id).run()
                continue
            }
            do {
                try await classroom.record(params)
                try await database.sql.delete(from: "audit_outbox").where("id", .equal, id).run()
                delivered += 1
            } catch {
                let delay = min(300, 2 << min(attempts, 8))
                logger.warning(
                    "audit activity not delivered to classroom-service; will retry",
                    metadata: ["id": "\(id)", "activity": "\(params.activity)", "error": "\(error)", "retry_in_s": "\(delay)"])
                // classroom-service is down: the rest waits too, so that the trail keeps its order.
                try await database.sql.update("audit_outbox").set("attempts", to: attempts + 1).where("id", .equal, id).run()
                try await database.sql.update("audit_outbox")
                    .set("next_attempt_at", to: time.addingTimeInterval(TimeInterval(delay)))
                    .where(SQLIdentifier("next_attempt_at"), .lessThanOrEqual, SQLBind(time)).run()
                break
            }
        }
        return delivered
    }

    /// How many activities wait for delivery.
    public func pending() async throws -> Int {
        try await database.sql.raw("SELECT COUNT(*) AS n FROM audit_outbox").first()?.decode(column: "n", as: Int.self) ?? 0
    }
}
