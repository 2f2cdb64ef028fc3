import Configuration
import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit
import Storage
import Wire

/// session-service: identity, workshop sessions and the lab runtime.
public enum SessionApplication {
    public static let spec = ServiceSpec(
        name: .session,
        peers: [.catalog, .classroom],
        requiredPeers: [.catalog],
        migrations: SessionMigrations.all,
        defaults: SessionConfig.defaults)

    /// The composition root: reads session-service's own keys, builds its parts on the runtime's and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let config = try SessionConfig(reader: reader, service: runtime.configuration)
        let logger = runtime.logger
        let provisioner: any Provisioner
        switch config.provisioning {
        case .local(let workspaces, let labURL):
            provisioner = LocalProvisioner(
                configuration: .init(workspaces: workspaces, urlTemplate: labURL, readyTimeout: config.readyTimeout),
                logger: logger)
        case .exec(let command):
            provisioner = ExecProvisioner(executable: command, timeout: config.readyTimeout, logger: logger)
        }
        let credentials = try BootstrapCredentials.loadOrCreate(
            path: config.credentialsFile, publicURL: config.publicURL, logger: logger)
        var runtimeConfiguration = LabRuntime.Configuration()
        runtimeConfiguration.interval = config.interval
        let dependencies = try await makeDependencies(
            database: runtime.database, catalog: .live(runtime.peers[.catalog]),
            classroom: .live(runtime.peers[.classroom]), provisioner: provisioner,
            runtimeConfiguration: runtimeConfiguration, now: { Date() }, logger: logger)
        try await runtime.run(
            routes: { router in addRoutes(to: router, dependencies: dependencies) },
            wire: wireRouter(dependencies),
            background: [
                dependencies.runtime, dependencies.outbox, dependencies.analytics,
                SessionGauges(sessions: dependencies.sessions, logger: logger),
            ],
            prepare: { _ in
                try await dependencies.prepare()
                try await credentials.apply(to: dependencies.identity.repository, now: Date(), logger: logger)
            })
    }


    /// Builds session-service's parts on an open, migrated database.
    public static func makeDependencies(
        database: Database, catalog: CatalogPeer, classroom: ClassroomPeer = .unavailable, provisioner: any Provisioner,
        analytics: AnalyticsSender = .http(), runtimeConfiguration: LabRuntime.Configuration = .init(), portalMaxAge: Duration = .seconds(2),
        now: @escaping @Sendable () -> Date, logger: Logger
    ) async throws -> SessionDependencies {
        let identityRepository = IdentityRepository(database: database)
        let identity = IdentityService(repository: identityRepository, now: now)
        let authenticator = CachedAuthenticator(now: now) { authorization in
            try await identity.authenticate(authorization)
        }
        let sessions = SessionRepository(database: database, key: ActivationKey())
        let portal = PortalCache(peer: catalog, maxAge: portalMaxAge, logger: logger)
        let labs = LabEnvironmentRepository(database: database)
        let runtime = LabRuntime(
            sessions: sessions, labs: labs, identity: identityRepository, portal: portal, provisioner: provisioner,
            leases: Leases(database), configuration: runtimeConfiguration, now: now, logger: logger)
        let outbox = AuditOutbox.make(database: database, classroom: classroom, leases: Leases(database), now: now, logger: logger)
        return SessionDependencies(
            identity: identity, authenticator: authenticator, sessions: sessions, labs: labs, portal: portal, runtime: runtime,
            outbox: outbox,
            analytics: AnalyticsOutbox.make(database: database, sender: analytics, leases: Leases(database), now: now, logger: logger),
            counts: OverviewCache(
                sessions: sessions, maxAge: database.backend == .postgres ? .milliseconds(500) : nil),
            now: now, logger: logger)
    }

    public static func addRoutes(to router: some RouterMethods<BasicRequestContext>, dependencies: SessionDependencies) {
        OAuthController(dependencies: dependencies).addRoutes(to: router)
        WorkshopSessionController(dependencies: dependencies).addRoutes(to: router)
        BrowserController(dependencies: dependencies).addRoutes(to: router)
        UsersController(dependencies: dependencies).addRoutes(to: router)
    }
}
