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
        defaults: ["session.provisioner": "local", "session.ready_timeout_s": "30", "session.interval_ms": "1000"])

    /// The composition root: reads session-service's own keys, builds its parts on the runtime's and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let configuration = runtime.configuration
        let logger = runtime.logger
        let provisioner: any Provisioner
        switch try reader.requireEnum("session.provisioner", as: ProvisionerKind.self, allowed: ProvisionerKind.allCases) {
        case .local:
            provisioner = LocalProvisioner(
                configuration: .init(
                    workspaces: reader.optionalString("session.workspaces") ?? "\(configuration.dataDirectory)/sessions",
                    urlTemplate: reader.optionalString("session.lab_url") ?? "http://localhost:{port}/",
                    readyTimeout: .seconds(try reader.requireInt("session.ready_timeout_s", in: 1...3600))),
                logger: logger)
        case .exec:
            guard let executable = reader.optionalString("session.exec.command"), !executable.isEmpty else {
                throw ConfigurationError(key: "session.exec.command", problem: "is required when session.provisioner is exec")
            }
            guard FileManager.default.isExecutableFile(atPath: executable) else {
                throw ConfigurationError(key: "session.exec.command", problem: "\(executable) is not an executable file")
            }
            provisioner = ExecProvisioner(
                executable: executable, timeout: .seconds(try reader.requireInt("session.ready_timeout_s", in: 1...3600)),
                logger: logger)
        }
        let publicURL = reader.optionalString("public.url") ?? "http://localhost:8080"
        let credentialsPath = reader.optionalString("credentials.file") ?? "\(configuration.home)/credentials.env"
        let credentials = try BootstrapCredentials.loadOrCreate(path: credentialsPath, publicURL: publicURL, logger: logger)
        var runtimeConfiguration = LabRuntime.Configuration()
        runtimeConfiguration.interval = .milliseconds(try reader.requireInt("session.interval_ms", in: 50...60_000))
        let dependencies = try await makeDependencies(
            database: runtime.database, catalog: .live(runtime.peers[.catalog]),
            classroom: .live(runtime.peers[.classroom]), provisioner: provisioner,
            runtimeConfiguration: runtimeConfiguration, now: { Date() }, logger: logger)
        try await runtime.run(
            routes: { router in addRoutes(to: router, dependencies: dependencies) },
            wire: wireRouter(dependencies),
            background: [dependencies.runtime, dependencies.outbox, dependencies.analytics],
            prepare: { _ in
                try await dependencies.prepare()
                try await credentials.apply(to: dependencies.identity.repository, now: Date(), logger: logger)
            })
    }

    enum ProvisionerKind: String, CaseIterable {
        case local
        case exec
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

    public static func addRoutes(to router: Router<BasicRequestContext>, dependencies: SessionDependencies) {
        OAuthController(dependencies: dependencies).addRoutes(to: router)
        WorkshopSessionController(dependencies: dependencies).addRoutes(to: router)
        BrowserController(dependencies: dependencies).addRoutes(to: router)
        UsersController(dependencies: dependencies).addRoutes(to: router)
    }
}
