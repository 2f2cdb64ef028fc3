import Contracts
import Foundation
import Logging
import ServerKit
import ServiceLifecycle
import Storage

/// Deletes STOPPING environments once their last session has ended (no session left that is not STOPPED). With
/// replicas, only the holder of the `catalog-janitor` lease does it.
struct EnvironmentJanitor: Service {
    let repository: PortalRepository
    let snapshots: SnapshotCache
    let sessions: SessionPeer
    let leases: Leases
    let interval: Duration
    let now: @Sendable () -> Date
    let logger: Logger
    let loop: LeasedLoop

    init(
        repository: PortalRepository, snapshots: SnapshotCache, sessions: SessionPeer, leases: Leases, interval: Duration,
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.repository = repository
        self.snapshots = snapshots
        self.sessions = sessions
        self.leases = leases
        self.interval = interval
        self.now = now
        self.logger = logger
        self.loop = LeasedLoop(
            lease: "catalog-janitor", leases: leases, interval: interval,
            failure: "environment cleanup pass failed", now: now, logger: logger)
    }

    /// One pass; answers the environments deleted.
    @discardableResult
    func pass() async throws -> [String] {
        let snapshot = try await snapshots.current()
        let stopping = snapshot.environments.filter { $0.state == .stopping }
        guard !stopping.isEmpty else { return [] }
        let overview = try await sessions.overview(false)
        var deleted: [String] = []
        for environment in stopping where (overview.environments[environment.name]?.active ?? 0) == 0 {
            if try await repository.deleteStopping(environment.name) {
                deleted.append(environment.name)
                logger.info("stopping environment deleted: its last session has ended",
                            metadata: ["environment": "\(environment.name)"])
            }
        }
        return deleted
    }

    func run() async throws {
        await loop.run { [self] in _ = try await pass() }
    }
}
