import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Storage

/// Background work that one replica at a time does: every `interval`, or at once when woken, the holder of the lease
/// runs a pass. A failed pass is logged (as `failure`) and tried again on the next turn. Stops on graceful shutdown or
/// cancellation, and then gives the lease up so that another replica takes over at once.
public final class LeasedLoop: Sendable {
    public let lease: String
    let leases: Leases
    let interval: Duration
    let ttl: Duration
    let now: @Sendable () -> Date
    let logger: Logger
    let failure: Logger.Message
    let failureLevel: Logger.Level
    /// This process, as the lease knows it.
    public let holder: String
    private let wakeups = WakeSignal()
    /// 1 while this replica holds the lease (`labportal_lease_held{lease}`): summed over replicas, exactly 1.
    private let held: Gauge
    /// How long each pass of the holder takes (`labportal_loop_pass_seconds{lease}`), failed ones too.
    private let passes: Metrics.Timer

    public init(
        lease: String, leases: Leases, interval: Duration, ttl: Duration = .seconds(30), holder: String? = nil,
        failure: Logger.Message = "background pass failed; will try again", failureLevel: Logger.Level = .warning,
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.lease = lease
        self.leases = leases
        self.interval = interval
        self.ttl = ttl
        self.holder = holder ?? Self.processHolder()
        self.failure = failure
        self.failureLevel = failureLevel
        self.now = now
        self.logger = logger
        self.held = Gauge(label: "labportal_lease_held", dimensions: [("lease", lease)])
        self.passes = Metrics.Timer(label: "labportal_loop_pass_seconds", dimensions: [("lease", lease)])
    }

    /// A holder name for this process: host, pid and a random suffix.
    public static func processHolder() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
    }

    /// Runs the next pass now instead of after the interval.
    public func wake() { wakeups.signal() }

    public func run(_ pass: @escaping @Sendable () async throws -> Void) async {
        await run(drain: {}) { _ in try await pass() }
    }

    /// Runs passes until shutdown. `pass` learns whether this is the first pass since this process took the lease
    /// (after a start, or after another replica held it), so that it can catch up on what it did not see; a first
    /// pass that fails is first again next time. `drain` runs when the loop stops, before the lease is given up.
    public func run(
        drain: @escaping @Sendable () async -> Void,
        _ pass: @escaping @Sendable (_ firstSinceAcquired: Bool) async throws -> Void
    ) async {
        await withGracefulShutdownHandler {
            var holding = false
            // When this replica last took or renewed the lease. Within a third of the TTL of that it still holds the
            // lease for two thirds of the TTL at least, so a pass (woken again and again under load) does not write
            // the lease row each time.
            var renewedAt: Date?
            let renewal = Double(ttl.components.seconds) / 3 + Double(ttl.components.attoseconds) / 3e18
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let time = now()
                    var holds = holding && renewedAt.map { time >= $0 && time.timeIntervalSince($0) < renewal } == true
                    if !holds {
                        holds = try await leases.acquire(lease, holder: holder, ttl: ttl, now: time)
                        if holds { renewedAt = time }
                    }
                    if holds {
                        held.record(1)
                        let started = ContinuousClock.now
                        defer { passes.record(ContinuousClock.now - started) }
                        try await pass(!holding)
                        holding = true
                    } else {
                        held.record(0)
                        holding = false
                        renewedAt = nil
                    }
                } catch {
                    logger.log(level: failureLevel, failure, metadata: ["lease": "\(lease)", "error": "\(error)"])
                }
                await wakeups.wait(for: interval)
            }
        } onGracefulShutdown: { [wakeups] in
            wakeups.signal()
        }
        await drain()
        // Outside the (possibly cancelled) task, so that the release is not cancelled with it.
        let release = { [leases, lease, holder] in try await leases.release(lease, holder: holder) }
        try? await Task { try await release() }.value
        held.record(0)
    }
}
