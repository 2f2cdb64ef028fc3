import Configuration
import Contracts
import Hummingbird
import ServerKit
import Storage
import Wire

/// session-service: its place in the system, its schema and its wire methods.
public enum SessionApplication {
    public static let spec = ServiceSpec(
        name: .session,
        peers: [.catalog],
        requiredPeers: [.catalog],
        migrations: SessionMigrations.all)

    /// The composition root: builds the REST routes and wire methods on the runtime's parts and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        try await runtime.run(routes: { _ in }, wire: WireRouter())
    }
}
