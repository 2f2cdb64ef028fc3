import Contracts
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Storage
import Wire

/// What a service is, for the shared runtime: its name, the peers it needs, its schema.
public struct ServiceSpec: Sendable {
    public var name: ServiceName
    /// Peers it calls. Each is configured as `peers.<name>`.
    public var peers: [ServiceName]
    /// Peers that must answer before `/readyz` says ready.
    public var requiredPeers: [ServiceName]
    public var migrations: [Migration]
    /// Defaults of the service's own configuration keys.
    public var defaults: [String: String]

    public init(
        name: ServiceName, peers: [ServiceName], requiredPeers: [ServiceName], migrations: [Migration],
        defaults: [String: String] = [:]
    ) {
        self.name = name
        self.peers = peers
        self.requiredPeers = requiredPeers
        self.migrations = migrations
        self.defaults = defaults
    }
}

/// The parts every service is built from: configuration, logger, database, peers. A service's
/// `buildApplication` makes one, adds its REST routes and wire methods, and runs it.
public struct ServiceRuntime: Sendable {
    public let spec: ServiceSpec
    public let configuration: ServiceConfiguration
    public let logger: Logger
    public let database: Database
    public let peers: Peers

    public static func make(spec: ServiceSpec, configuration: ServiceConfiguration, logger: Logger) async throws
        -> ServiceRuntime
    {
        let database = try await Database.open(configuration.database, logger: logger)
        let peers: Peers
        do {
            peers = try Peers.make(configuration, required: spec.requiredPeers, logger: logger)
        } catch {
            await database.close()
            throw error
        }
        return ServiceRuntime(
            spec: spec, configuration: configuration, logger: logger, database: database, peers: peers)
    }

    /// Runs the service until SIGTERM/SIGINT (or the task is cancelled): migrates, then serves REST and wire;
    /// on shutdown stops HTTP and wire from taking new work, drains what is in flight, closes peers and database.
    public func run(
        routes: @escaping @Sendable (ServiceRoutes) -> Void,
        wire: WireRouter,
        background: [any Service] = [],
        prepare: (@Sendable (Database) async throws -> Void)? = nil,
        signals: [UnixSignal] = [.sigterm, .sigint]
    ) async throws {
        let group: ServiceGroup
        do {
            group = try makeGroup(routes: routes, wire: wire, background: background, prepare: prepare, signals: signals)
        } catch {
            await database.close()
            throw error
        }
        logger.info(
            "starting",
            metadata: ["version": "\(configuration.version)", "http": "\(configuration.httpHost):\(configuration.httpPort)",
                       "wire": "\(configuration.wireHost):\(configuration.wirePort)",
                       "db": "\(configuration.database.backend.rawValue)"])
        try await group.run()
        logger.info("stopped")
    }

    private func makeGroup(
        routes: @escaping @Sendable (ServiceRoutes) -> Void,
        wire: WireRouter,
        background: [any Service],
        prepare: (@Sendable (Database) async throws -> Void)?,
        signals: [UnixSignal]
    ) throws -> ServiceGroup {
        let name = spec.name.rawValue
        let router = ServiceRouter.make(service: name, cors: configuration.cors)
        let watchdog = RequestWatchdog(stuckAfter: configuration.stuckRequestAfter)
        router.middlewares.add(RequestWatchdogMiddleware(watchdog: watchdog))
        let serviceRoutes = ServiceRoutes(router)
        HealthController(
            service: name, database: database, peers: peers, registry: MetricsSetup.registry, watchdog: watchdog,
            replica: configuration.replica
        ).addRoutes(to: serviceRoutes)
        routes(serviceRoutes)

        var wireConfiguration = WireServerConfiguration(
            host: configuration.wireHost, port: configuration.wirePort,
            tls: try WireTLS.serverContext(configuration.wireTLS), serviceName: name, version: configuration.version)
        wireConfiguration.maxLineBytes = configuration.wireMaxLineBytes
        let wireServer = WireServer(
            configuration: wireConfiguration, router: wire, errorMapper: WireErrorMapping.map, logger: logger)

        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort)),
            logger: logger)

        let serving = ServingService(
            database: database, migrator: Migrator(spec.migrations), prepare: prepare, wire: wireServer, http: app,
            background: background, logger: logger)
        let services: [any Service] = [database] + peers.clients.values.map { $0 as any Service } + [serving]
        var group = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger)
        // SIGTERM always ends the process: work in flight gets the drain time, then it is cancelled, and whatever
        // still holds on 5 s after that stops the process (swift-service-lifecycle ends it with a fatal error).
        group.maximumGracefulShutdownDuration = configuration.drainTime
        group.maximumCancellationDuration = .seconds(5)
        return ServiceGroup(configuration: group)
    }
}

/// Migrates, then runs the wire server, the HTTP server and background loops side by side. Graceful shutdown reaches
/// all of them (it is inherited by child tasks); each drains its own work.
struct ServingService: Service {
    let database: Database
    let migrator: Migrator
    /// Runs after migrating and before serving (loading the portal file, for example).
    let prepare: (@Sendable (Database) async throws -> Void)?
    let wire: WireServer
    let http: any Service
    let background: [any Service]
    let logger: Logger

    func run() async throws {
        try await migrateWithRetry()
        try await prepare?(database)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await wire.run() }
            group.addTask { try await http.run() }
            for service in background {
                group.addTask { try await service.run() }
            }
        }
    }

    /// A database that is not up yet (PostgreSQL starting beside us) is retried for a while; a broken migration
    /// fails at once.
    private func migrateWithRetry() async throws {
        var attempt = 0
        while true {
            do {
                try await migrator.migrate(database, logger: logger)
                return
            } catch let error as StorageError {
                logger.critical("migration failed", metadata: ["error": "\(error)"])
                throw error
            } catch {
                attempt += 1
                if attempt >= 30 {
                    logger.critical("database unreachable; giving up", metadata: ["error": "\(error)"])
                    throw error
                }
                logger.warning("database not reachable yet; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The REST router every service starts from: service and request-id headers, metrics, JSON errors, request logs.
public enum ServiceRouter {
    public static func make(service: String, cors: CORSSettings = .default) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(ServiceHeaderMiddleware(service: service))
        // Outside the JSON errors, so that error answers carry the CORS headers too (a browser cannot read them
        // otherwise), and preflights are answered on every path.
        router.middlewares.add(CORSMiddleware(settings: cors))
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(JSONErrorMiddleware())
        router.middlewares.add(LogRequestsMiddleware(.debug))
        return router
    }
}
