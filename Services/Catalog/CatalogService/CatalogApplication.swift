import Configuration
import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit
import ServiceLifecycle
import Storage
import UnixSignals
import Wire

/// catalog-service: its place in the system, its schema and its wire methods.
public enum CatalogApplication {
    public static let spec = ServiceSpec(
        name: .catalog,
        peers: [.session],
        requiredPeers: [.session],
        migrations: CatalogMigrations.all,
        defaults: CatalogConfig.defaults)

    /// The composition root: builds the REST routes and wire methods on the runtime's parts and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let config = try CatalogConfig(reader: reader, service: runtime.configuration)
        let repository = PortalRepository(database: runtime.database)
        let loader = PortalLoader(path: config.portalFile, repository: repository, now: { Date() }, logger: runtime.logger)
        let snapshots = SnapshotCache(repository: repository)
        let sessions = SessionPeer.live(runtime.peers[.session])
        let authenticator = CachedAuthenticator.wire(runtime.peers[.session])
        let janitor = EnvironmentJanitor(
            repository: repository, snapshots: snapshots, sessions: sessions, leases: Leases(runtime.database),
            interval: config.janitorInterval, now: { Date() }, logger: runtime.logger)
        try await runtime.run(
            routes: { router in
                CatalogController(
                    snapshots: snapshots, sessions: sessions, authenticator: authenticator,
                    reload: { reason in try await loader.reload(reason: reason) }
                ).addRoutes(to: router)
            },
            wire: wireRouter(snapshots: snapshots),
            background: [loader, janitor],
            prepare: { _ in try await loader.reload(reason: "start") })
    }
}
