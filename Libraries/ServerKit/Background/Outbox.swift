import Foundation
import Logging
import ServiceLifecycle
import Storage

/// How an outbox delivers: in what order, how it backs off, and when it gives up.
public struct DeliveryPolicy: Sendable, Equatable {
    public enum Order: Sendable, Equatable {
        /// One failure holds every later message back (a trail that must keep its order).
        case strict
        /// A failure holds back only the later messages of its destination; others go on.
        case perDestination
    }

    public var order: Order
    /// The wait after the n-th failure (n from 0): `min(cap, base << min(n, maximumShift))` seconds.
    public var backoffBase: Int
    public var backoffMaximumShift: Int
    public var backoffCap: Int
    /// Failed attempts after which a message is dropped (with a warning); nil keeps it until delivered.
    public var maximumAttempts: Int?
    /// Messages that may wait at once; more are refused (with a warning); nil for no bound.
    public var maximumPending: Int?
    /// Messages read per pass.
    public var batch: Int

    public init(
        order: Order, backoffBase: Int, backoffMaximumShift: Int, backoffCap: Int, maximumAttempts: Int?,
        maximumPending: Int?, batch: Int
    ) {
        self.order = order
        self.backoffBase = backoffBase
        self.backoffMaximumShift = backoffMaximumShift
        self.backoffCap = backoffCap
        self.maximumAttempts = maximumAttempts
        self.maximumPending = maximumPending
        self.batch = batch
    }

    /// Seconds to wait after a message's `failures`-th failure (counted from 0).
    public func delay(afterFailures failures: Int) -> Int {
        min(backoffCap, backoffBase << min(max(failures, 0), backoffMaximumShift))
    }

    /// Whether a message that has now failed `attempts` times is given up.
    public func givesUp(after attempts: Int) -> Bool { maximumAttempts.map { attempts >= $0 } ?? false }
}

/// A message the outbox's delivery could not even read: it is dropped with an error, never retried for ever.
public struct UndeliverableMessage: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A transactional outbox: messages kept in the database (`OutboxStore`) and delivered by the holder of a lease
/// (`LeasedLoop`), oldest first, under a `DeliveryPolicy`. Nothing is lost while the receiver is down or this process
/// restarts. `deliver` throws to retry later, or `UndeliverableMessage` to drop a message that cannot be read.
public final class Outbox: Service, Sendable {
    public let store: OutboxStore
    public let policy: DeliveryPolicy
    let deliver: @Sendable (OutboxStore.Entry) async throws -> Void
    /// What the messages are, for logs ("audit activity", "analytics event").
    let noun: String
    let now: @Sendable () -> Date
    let logger: Logger
    let loop: LeasedLoop

    public init(
        store: OutboxStore, policy: DeliveryPolicy, noun: String, lease: String, leases: Leases, interval: Duration,
        now: @escaping @Sendable () -> Date, logger: Logger,
        deliver: @escaping @Sendable (OutboxStore.Entry) async throws -> Void
    ) {
        self.store = store
        self.policy = policy
        self.noun = noun
        self.deliver = deliver
        self.now = now
        self.logger = logger
        self.loop = LeasedLoop(
            lease: lease, leases: leases, interval: interval, failure: "\(noun) delivery pass failed", now: now,
            logger: logger)
    }

    /// Keeps a message for delivery; false (and a warning) when the policy's bound of waiting messages is reached.
    /// Outside a transaction: the caller's own writes are already committed.
    @discardableResult
    public func enqueue(id: String = UUID().uuidString.lowercased(), payload: String, destination: String? = nil, label: String? = nil)
        async throws -> Bool
    {
        if let maximum = policy.maximumPending, try await store.count() >= maximum {
            logger.warning(
                "\(noun) dropped: too many wait for delivery",
                metadata: ["label": "\(label ?? "")", "destination": "\(destination ?? "")", "pending_limit": "\(maximum)"])
            return false
        }
        try await store.enqueue(id: id, payload: payload, destination: destination, label: label, at: now())
        loop.wake()
        return true
    }

    /// Runs the next pass now.
    public func wake() { loop.wake() }

    public func run() async throws {
        await loop.run { [self] in try await pass() }
    }

    /// Delivers what is due, oldest first; answers how many were delivered.
    @discardableResult
    public func pass() async throws -> Int {
        let time = now()
        var delivered = 0
        var failing: Set<String> = []
        for entry in try await store.due(at: time, limit: policy.batch) {
            let destination = entry.destination ?? ""
            guard !failing.contains(destination) else { continue }
            var metadata: Logger.Metadata = ["id": "\(entry.id)"]
            if let label = entry.label { metadata["label"] = "\(label)" }
            if let destination = entry.destination { metadata["destination"] = "\(destination)" }
            do {
                try await deliver(entry)
                try await store.remove(entry.id)
                delivered += 1
            } catch let error as UndeliverableMessage {
                metadata["error"] = "\(error)"
                logger.error("unreadable \(noun) dropped", metadata: metadata)
                try await store.remove(entry.id)
            } catch {
                let attempts = entry.attempts + 1
                metadata["error"] = "\(error)"
                metadata["attempts"] = "\(attempts)"
                if policy.givesUp(after: attempts) {
                    logger.warning("\(noun) dropped after repeated failures", metadata: metadata)
                    try await store.remove(entry.id)
                    continue
                }
                let delay = policy.delay(afterFailures: entry.attempts)
                metadata["retry_in_s"] = "\(delay)"
                logger.warning("\(noun) not delivered; will retry", metadata: metadata)
                try await store.recordFailure(entry.id, attempts: attempts, error: "\(error)")
                // The receiver is down: what waits behind this message waits with it, without counting an attempt.
                let until = time.addingTimeInterval(TimeInterval(delay))
                switch policy.order {
                case .strict:
                    try await store.postpone(destination: nil, dueAt: time, until: until)
                    return delivered
                case .perDestination:
                    try await store.postpone(destination: entry.destination, dueAt: time, until: until)
                    failing.insert(destination)
                }
            }
        }
        return delivered
    }

    /// How many messages wait for delivery.
    public func pending() async throws -> Int { try await store.count() }
}
