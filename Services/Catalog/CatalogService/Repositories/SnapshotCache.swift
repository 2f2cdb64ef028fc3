import Contracts
import Foundation

/// The portal snapshot, read again only when the stored generation changes (one small query per read), so that a
/// reload by any replica is seen at once.
public actor SnapshotCache {
    let repository: PortalRepository
    private var cached: PortalSnapshot?

    public init(repository: PortalRepository) { self.repository = repository }

    public func current() async throws -> PortalSnapshot {
        let generation = try await repository.generation()
        if let cached, cached.generation == generation { return cached }
        guard let snapshot = try await repository.snapshot() else {
            throw ServiceFailure(.unavailable, "the portal has not been loaded yet")
        }
        cached = snapshot
        return snapshot
    }
}
