import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// What an operator watches of sessions on `/metrics`, besides the HTTP and wire figures every service has:
///
/// - `labportal_session_requests_total{environment, outcome}`: session requests by how they ended (`reused`,
///   `spare`, `on_demand`, `unavailable`, `cannot_reacquire`);
/// - `labportal_spares_wanted{environment}`: the spare target of the last runtime pass (set by the replica that holds
///   the `session-runtime` lease; take the max over replicas);
/// - `labportal_sessions{environment, state, owned}`: live sessions by state, owned or spare (every replica counts
///   them from the database every `interval`; take the max over replicas).
enum SessionMetrics {
    static func requested(environment: String, outcome: AllocationOutcome) {
        Counter(
            label: "labportal_session_requests_total",
            dimensions: [("environment", environment), ("outcome", outcome.metricName)]
        ).increment()
    }

    static func sparesWanted(environment: String, _ target: Int) {
        Gauge(label: "labportal_spares_wanted", dimensions: [("environment", environment)]).record(target)
    }
}

/// Counts the live sessions every `interval` into `labportal_sessions`; a combination that is gone is set to 0.
final class SessionGauges: Service, Sendable {
    let sessions: SessionRepository
    let interval: Duration
    let logger: Logger
    private let seen = Mutex<Set<Key>>([])

    struct Key: Hashable {
        var environment: String
        var state: String
        var owned: Bool
    }

    init(sessions: SessionRepository, interval: Duration = .seconds(15), logger: Logger) {
        self.sessions = sessions
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await pass()
            } catch {
                logger.debug("session gauges not updated", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    func pass() async throws {
        let counts = try await sessions.liveCounts()
        var current: [Key: Int] = [:]
        for count in counts {
            current[Key(environment: count.environment, state: count.state.rawValue, owned: count.owned), default: 0] += count.count
        }
        let gone = seen.withLock { seen in
            defer { seen.formUnion(current.keys) }
            return seen.subtracting(current.keys)
        }
        for (key, value) in current { Self.gauge(key).record(value) }
        for key in gone { Self.gauge(key).record(0) }
    }

    static func gauge(_ key: Key) -> Gauge {
        Gauge(
            label: "labportal_sessions",
            dimensions: [("environment", key.environment), ("state", key.state), ("owned", key.owned ? "true" : "false")])
    }
}
