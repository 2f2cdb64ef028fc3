import Configuration
import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit
import Storage
import Wire

/// report-service: gzip-compressed CSV exports of courses, classes, labs, the audit trail and workshop sessions.
public enum ReportApplication {
    public static let spec = ServiceSpec(
        name: .report,
        peers: [.classroom, .session],
        requiredPeers: [.classroom, .session],
        migrations: ReportMigrations.all,
        defaults: ReportConfig.defaults)


    /// The composition root: reads report-service's own keys, builds its parts on the runtime's and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let config = try ReportConfig(reader: reader, service: runtime.configuration)
        let blobs: any BlobStore
        switch config.blobs {
        case .directory(let directory):
            do {
                blobs = try DirectoryBlobStore(directory: directory)
            } catch {
                throw ConfigurationError(key: "reports.directory", problem: "\(error)")
            }
        case .database:
            blobs = DatabaseBlobStore(database: runtime.database)
        }
        let mailer = config.smtp.map { Mailer(client: SMTPClient(settings: $0)) }
        if mailer == nil {
            runtime.logger.notice("smtp.host is not set: reports asked with notify_by_email will not be emailed")
        }
        let dependencies = makeDependencies(
            database: runtime.database, blobs: blobs,
            data: .live(classroom: runtime.peers[.classroom], session: runtime.peers[.session]),
            authenticator: CachedAuthenticator.wire(runtime.peers[.session]), mailer: mailer,
            publicURL: config.publicURL, maximumUnfinished: config.maximumUnfinished, runner: config.runner, now: { Date() }, logger: runtime.logger)
        try await runtime.run(
            routes: { router in addRoutes(to: router, dependencies: dependencies) },
            wire: wireRouter(),
            background: [dependencies.runner])
    }

    public static func makeDependencies(
        database: Database, blobs: any BlobStore, data: DataPeer, authenticator: any Authenticating, mailer: Mailer?,
        publicURL: String, maximumUnfinished: Int = 100, runner configuration: ExportRunner.Configuration = .init(),
        now: @escaping @Sendable () -> Date, logger: Logger
    ) -> ReportDependencies {
        let repository = ExportRepository(database: database)
        let base = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        let runner = ExportRunner(
            repository: repository, blobs: blobs, data: data, mailer: mailer, publicURL: base,
            configuration: configuration, now: now, logger: logger)
        return ReportDependencies(
            repository: repository, blobs: blobs, data: data, runner: runner, authenticator: authenticator,
            publicURL: base, maximumUnfinished: maximumUnfinished, now: now, logger: logger)
    }

    public static func addRoutes(to router: some RouterMethods<BasicRequestContext>, dependencies: ReportDependencies) {
        ExportsController(dependencies: dependencies).addRoutes(to: router)
    }
}
