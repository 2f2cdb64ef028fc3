import Contracts
import Foundation
import ServerKit
import Storage

/// The portal snapshot, read again only after this process changed the portal (a reload or the janitor). On SQLite
/// this process is the only writer, so that is exact; on PostgreSQL another replica may reload, so a snapshot is also
/// read again once it is `maxAge` old (1 s by default). Concurrent misses share one read.
public struct SnapshotCache: Sendable {
    let repository: PortalRepository
    private let cache: VersionedCache<Int, PortalSnapshot>

    public init(repository: PortalRepository, maxAge: Duration? = nil) {
        self.repository = repository
        let age = maxAge ?? (repository.database.backend == .postgres ? .seconds(1) : nil)
        self.cache = VersionedCache(counter: repository.changes, enabled: true, capacity: 1, maxAge: age)
    }

    public func current() async throws -> PortalSnapshot {
        let repository = self.repository
        return try await cache.value(for: 0) {
            guard let snapshot = try await repository.snapshot() else {
                throw CatalogError.portalNotLoaded
            }
            return snapshot
        }
    }
}
