import Contracts
import ServerKit
import Wire

/// catalog-service's wire methods.
extension CatalogApplication {
    /// `catalog.portal` for session-service (allocation), classroom-service (templates) and operators.
    public static func wireRouter(snapshots: SnapshotCache) -> WireRouter {
        var router = WireRouter()
        router.register(CatalogPortal.self) { _, _ in
            try await snapshots.current()
        }
        return router
    }
}
