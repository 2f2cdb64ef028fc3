import Contracts
import Foundation
import Logging
import Wire

/// What session-service asks catalog-service.
public struct CatalogPeer: Sendable {
    /// The portal, its workshops and its environments.
    public var portal: @Sendable () async throws -> CatalogPortal.Snapshot

    public init(portal: @escaping @Sendable () async throws -> CatalogPortal.Snapshot) {
        self.portal = portal
    }

    public static func live(_ client: WireClient) -> CatalogPeer {
        CatalogPeer(portal: {
            try await client.call(CatalogPortal.self, Empty())
        })
    }
}

/// The portal as catalog-service last described it, refreshed when older than `maxAge` (one fetch at a time). If the
/// catalog cannot be reached, the last known portal is used and the failure logged; with none, callers get
/// `unavailable`.
public actor PortalCache {
    let peer: CatalogPeer
    let maxAge: Duration
    let logger: Logger
    private var snapshot: CatalogPortal.Snapshot?
    private var fetched: ContinuousClock.Instant?
    private var inflight: Task<CatalogPortal.Snapshot, any Error>?

    public init(peer: CatalogPeer, maxAge: Duration = .seconds(2), logger: Logger) {
        self.peer = peer
        self.maxAge = maxAge
        self.logger = logger
    }

    /// The portal, at most `maxAge` old when the catalog answers.
    public func current() async throws -> CatalogPortal.Snapshot {
        if let snapshot, let fetched, ContinuousClock.now - fetched < maxAge { return snapshot }
        return try await refresh()
    }

    /// Asks the catalog now.
    public func refresh() async throws -> CatalogPortal.Snapshot {
        if let inflight { return try await inflight.value }
        let task = Task { try await peer.portal() }
        inflight = task
        defer { inflight = nil }
        do {
            let fresh = try await task.value
            if let snapshot, snapshot.generation != fresh.generation {
                logger.info("portal changed", metadata: ["generation": "\(fresh.generation)"])
            }
            snapshot = fresh
            fetched = .now
            return fresh
        } catch {
            if let snapshot {
                logger.warning("catalog unreachable; using the last known portal", metadata: ["error": "\(error)"])
                return snapshot
            }
            throw ServiceFailure(.unavailable, "the workshop catalog is not reachable; try again shortly")
        }
    }

    /// Forgets the cached portal, so that the next read asks the catalog.
    public func invalidate() { fetched = nil }
}
