import Configuration
import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit
import Storage
import Wire

/// classroom-service: courses, classes, labs, the class schedule and the audit trail.
public enum ClassroomApplication {
    public static let spec = ServiceSpec(
        name: .classroom,
        peers: [.session, .catalog],
        requiredPeers: [.session, .catalog],
        migrations: ClassroomMigrations.all,
        defaults: ClassroomConfig.defaults)

    /// The composition root: reads classroom-service's own keys, builds its parts on the runtime's and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let config = try ClassroomConfig(reader: reader, service: runtime.configuration)
        let settings = config.settings
        var configuration = ClassScheduler.Configuration()
        configuration.interval = config.interval
        let dependencies = makeDependencies(
            database: runtime.database, catalog: .live(runtime.peers[.catalog]), labs: .live(runtime.peers[.session]),
            authenticator: CachedAuthenticator.wire(runtime.peers[.session]), settings: settings,
            schedulerConfiguration: configuration, now: { Date() }, logger: runtime.logger)
        try await runtime.run(
            routes: { router in addRoutes(to: router, dependencies: dependencies) },
            wire: wireRouter(dependencies),
            background: [dependencies.scheduler])
    }

    public static func makeDependencies(
        database: Database, catalog: CatalogPeer, labs: LabPeer, authenticator: any Authenticating,
        settings: ClassroomDependencies.Settings, schedulerConfiguration: ClassScheduler.Configuration = .init(),
        portalMaxAge: Duration = .seconds(2), now: @escaping @Sendable () -> Date, logger: Logger
    ) -> ClassroomDependencies {
        let repository = ClassroomRepository(database: database)
        let portal = PortalCache(peer: catalog, maxAge: portalMaxAge, logger: logger)
        let scheduler = ClassScheduler(
            repository: repository, labs: labs, portal: portal, leases: Leases(database),
            configuration: schedulerConfiguration, now: now, logger: logger)
        return ClassroomDependencies(
            repository: repository, portal: portal, labs: labs, authenticator: authenticator, scheduler: scheduler,
            settings: settings, now: now, logger: logger)
    }

    public static func addRoutes(to router: some RouterMethods<BasicRequestContext>, dependencies: ClassroomDependencies) {
        CoursesController(dependencies: dependencies).addRoutes(to: router)
        ClassesController(dependencies: dependencies).addRoutes(to: router)
        ClassPagesController(dependencies: dependencies).addRoutes(to: router)
    }
}
