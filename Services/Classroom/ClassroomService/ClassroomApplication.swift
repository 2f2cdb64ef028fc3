import Configuration
import Contracts
import Hummingbird
import ServerKit
import Storage
import Wire

/// classroom-service: its place in the system, its schema and its wire methods.
public enum ClassroomApplication {
    public static let spec = ServiceSpec(
        name: .classroom,
        peers: [.session,.catalog],
        requiredPeers: [.session,.catalog],
        migrations: ClassroomMigrations.all)

    /// The composition root: builds the REST routes and wire methods on the runtime's parts and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        try await runtime.run(routes: { _ in }, wire: WireRouter())
    }
}
