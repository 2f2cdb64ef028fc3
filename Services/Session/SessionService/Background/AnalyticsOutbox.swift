import Foundation
import Logging
import ServerKit
import Storage

/// Analytics events of workshop sessions (Educates' `POST /workshops/session/<s>/event/`), forwarded to the
/// `analytics_url` the session was requested with. Events are kept in the database first, so a restart or an
/// endpoint that is down loses nothing; the holder of the `session-analytics` lease posts them, oldest first. When an
/// endpoint fails, its events wait (5 s, doubling, at most 10 min) while other endpoints' events go on. After 12
/// failed attempts (about an hour) an event is dropped with a warning, and at most `maximumPending` events wait: more
/// are refused with a warning, so an endpoint that never answers cannot fill the disk.
enum AnalyticsOutbox {
    static let maximumAttempts = 12

    static func policy(maximumPending: Int) -> DeliveryPolicy {
        DeliveryPolicy(
            order: .perDestination, backoffBase: 5, backoffMaximumShift: 7, backoffCap: 600,
            maximumAttempts: maximumAttempts, maximumPending: maximumPending, batch: 100)
    }

    static func make(
        database: Database, sender: AnalyticsSender, leases: Leases, interval: Duration = .seconds(2),
        maximumPending: Int = 10_000, now: @escaping @Sendable () -> Date, logger: Logger
    ) -> Outbox {
        Outbox(
            store: OutboxStore(database: database, table: SessionTables.analyticsOutbox),
            policy: policy(maximumPending: maximumPending), noun: "analytics event", lease: "session-analytics",
            leases: leases, interval: interval, now: now, logger: logger
        ) { entry in
            guard let url = entry.destination else { throw UndeliverableMessage("the stored event has no URL") }
            try await sender.post(url, Array(entry.payload.utf8))
        }
    }
}

extension Outbox {
    /// Keeps an analytics event of `session` for delivery to `url`.
    @discardableResult
    func enqueue(session: String, url: String, payload: [UInt8]) async throws -> Bool {
        try await enqueue(payload: String(decoding: payload, as: UTF8.self), destination: url, label: session)
    }
}
