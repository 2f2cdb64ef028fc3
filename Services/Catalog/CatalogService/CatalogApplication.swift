import Configuration
import Contracts
import Hummingbird
import ServerKit
import Storage
import Wire

/// catalog-service: its place in the system, its schema and its wire methods.
public enum CatalogApplication {
    public static let spec = ServiceSpec(
        name: .catalog,
        peers: [.session],
        requiredPeers: [.session],
        migrations: CatalogMigrations.all)

    /// The composition root: builds the REST routes and wire methods on the runtime's parts and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        try await runtime.run(routes: { _ in }, wire: WireRouter())
    }
}
