import Foundation
import Logging
import ServiceLifecycle
import Storage

/// Background work that one replica at a time does: every `interval`, or at once when woken, the holder of the lease
/// runs a pass. A failed pass is logged and tried again on the next turn. Stops on graceful shutdown.
public final class LeasedLoop: Sendable {
    public let lease: String
    let leases: Leases
    let interval: Duration
    let now: @Sendable () -> Date
    let logger: Logger
    /// This process, as the lease knows it.
    public let holder = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
    private let wakeups = WakeSignal()

    public init(lease: String, leases: Leases, interval: Duration, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.lease = lease
        self.leases = leases
        self.interval = interval
        self.now = now
        self.logger = logger
    }

    /// Runs the next pass now instead of after the interval.
    public func wake() { wakeups.signal() }

    public func run(_ pass: @escaping @Sendable () async throws -> Void) async {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    if try await leases.acquire(lease, holder: holder, ttl: .seconds(30), now: now()) {
                        try await pass()
                    }
                } catch {
                    logger.warning("background pass failed; will try again", metadata: ["lease": "\(lease)", "error": "\(error)"])
                }
                await wakeups.wait(for: interval)
            }
        } onGracefulShutdown: { [wakeups] in
            wakeups.signal()
        }
    }
}
