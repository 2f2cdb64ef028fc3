import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServerKit
import ServiceLifecycle
import SQLKit
import Storage

/// Where analytics events go: an HTTP POST of the event's JSON to the session's `analytics_url`.
public struct AnalyticsSender: Sendable {
    public var post: @Sendable (_ url: String, _ body: [UInt8]) async throws -> Void

    public init(post: @escaping @Sendable (_ url: String, _ body: [UInt8]) async throws -> Void) { self.post = post }

    /// Posts with AsyncHTTPClient; an answer other than 2xx, or none within `timeout`, is a failure.
    public static func http(_ client: HTTPClient = .shared, timeout: TimeAmount = .seconds(10)) -> AnalyticsSender {
        AnalyticsSender { url, body in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "LabPortal session-service")
            request.body = .bytes(body)
            let response = try await client.execute(request, timeout: timeout)
            // Drain (at most 64 KB) so that the connection can be reused.
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard (200..<300).contains(Int(response.status.code)) else {
                throw AnalyticsDeliveryError(message: "the analytics endpoint answered \(response.status.code)")
            }
        }
    }
}

struct AnalyticsDeliveryError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Analytics events of workshop sessions (Educates' `POST /workshops/session/<s>/event/`), forwarded to the
/// `analytics_url` the session was requested with. Events are kept in the database first, so a restart or an
/// endpoint that is down loses nothing; the holder of the `session-analytics` lease posts them, oldest first. When an
/// endpoint fails, its events wait (5 s, doubling, at most 10 min) while other endpoints' events go on. After 12 failed attempts
/// (about an hour) an event is dropped with a warning, and at most `maximumPending` events wait: more are refused
/// with a warning, so an endpoint that never answers cannot fill the disk.
public final class AnalyticsOutbox: Service, Sendable {
    static let migrations: [Migration] = [
        Migration(
            version: 8, name: "analytics_outbox",
            statements: [
                """
                CREATE TABLE analytics_outbox (
                    id TEXT PRIMARY KEY,
                    seq BIGINT NOT NULL,
                    session TEXT NOT NULL,
                    url TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP NOT NULL,
                    created_at TIMESTAMP NOT NULL,
                    last_error TEXT
                )
                """,
                "CREATE INDEX analytics_outbox_due ON analytics_outbox (next_attempt_at, seq)",
            ])
    ]

    static let maximumAttempts = 12

    let database: Database
    let sender: AnalyticsSender
    let maximumPending: Int
    let now: @Sendable () -> Date
    let logger: Logger
    let loop: LeasedLoop

    public init(
        database: Database, sender: AnalyticsSender, leases: Leases, interval: Duration = .seconds(2),
        maximumPending: Int = 10_000, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.database = database
        self.sender = sender
        self.maximumPending = maximumPending
        self.now = now
        self.logger = logger
        self.loop = LeasedLoop(
            lease: "session-analytics", leases: leases, interval: interval, failure: "analytics delivery pass failed",
            now: now, logger: logger)
    }

    /// Keeps an event for delivery to `url`; false (and a warning) when too many already wait.
    @discardableResult
    public func enqueue(session: String, url: String, payload: [UInt8]) async throws -> Bool {
        guard try await pending() < maximumPending else {
            logger.warning(
                "analytics event dropped: too many events wait for delivery",
                metadata: ["session": "\(session)", "url": "\(url)", "pending_limit": "\(maximumPending)"])
            return false
        }
        let time = now()
        // `seq` keeps the order events came in (several may share an instant).
        try await database.sql.raw(
            """
            INSERT INTO analytics_outbox (id, seq, session, url, payload, attempts, next_attempt_at, created_at)
            SELECT \(bind: UUID().uuidString.lowercased()), COALESCE(MAX(seq), 0) + 1, \(bind: session), \(bind: url),
                \(bind: String(decoding: payload, as: UTF8.self)), 0, \(bind: time), \(bind: time)
            FROM analytics_outbox
            """
        ).run()
        loop.wake()
        return true
    }

    public func run() async throws {
        await loop.run { [self] in try await pass() }
    }

    /// Posts what is due, oldest first; answers how many were delivered.
    @discardableResult
    public func pass() async throws -> Int {
        let time = now()
        let rows = try await database.sql.raw(
            """
            SELECT id, session, url, payload, attempts FROM analytics_outbox WHERE next_attempt_at <= \(bind: time)
            ORDER BY seq, id LIMIT 100
            """
        ).all()
        var delivered = 0
        var failing: Set<String> = []
        for row in rows {
            let id = try row.decode(column: "id", as: String.self)
            let url = try row.decode(column: "url", as: String.self)
            guard !failing.contains(url) else { continue }
            let session = try row.decode(column: "session", as: String.self)
            let attempts = try row.decode(column: "attempts", as: Int.self) + 1
            do {
                try await sender.post(url, Array(try row.decode(column: "payload", as: String.self).utf8))
                try await database.sql.delete(from: "analytics_outbox").where("id", .equal, id).run()
                delivered += 1
            } catch {
                if attempts >= Self.maximumAttempts {
                    logger.warning(
                        "analytics event dropped after repeated failures",
                        metadata: ["session": "\(session)", "url": "\(url)", "attempts": "\(attempts)", "error": "\(error)"])
                    try await database.sql.delete(from: "analytics_outbox").where("id", .equal, id).run()
                    continue
                }
                let delay = min(600, 5 << min(attempts - 1, 7))
                logger.warning(
                    "analytics event not delivered; will retry",
                    metadata: ["session": "\(session)", "url": "\(url)", "error": "\(error)", "retry_in_s": "\(delay)"])
                try await database.sql.update("analytics_outbox")
                    .set("attempts", to: attempts).set("last_error", to: String("\(error)".prefix(500)))
                    .where("id", .equal, id).run()
                // The endpoint is down: its other due events wait with this one, without counting an attempt.
                try await database.sql.update("analytics_outbox")
                    .set("next_attempt_at", to: time.addingTimeInterval(TimeInterval(delay)))
                    .where("url", .equal, url).where(SQLIdentifier("next_attempt_at"), .lessThanOrEqual, SQLBind(time))
                    .run()
                failing.insert(url)
            }
        }
        return delivered
    }

    /// How many events wait for delivery.
    public func pending() async throws -> Int {
        try await database.sql.raw("SELECT COUNT(*) AS n FROM analytics_outbox").first()?.decode(column: "n", as: Int.self) ?? 0
    }
}
