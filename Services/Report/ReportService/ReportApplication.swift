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
        defaults: [
            "reports.blob_store": "directory", "reports.workers": "2", "reports.retention_s": "900",
            "reports.email_retention_s": "604800", "reports.max_unfinished": "100", "reports.gzip_level": "6",
            "reports.page_size": "1000", "reports.row_page_size": "5000", "reports.block_kb": "1024",
            "smtp.port": "25", "smtp.from": "labportal@localhost",
        ])

    enum BlobStoreKind: String, CaseIterable {
        case directory
        case database
    }

    /// The composition root: reads report-service's own keys, builds its parts on the runtime's and runs them.
    public static func run(runtime: ServiceRuntime, reader: ConfigReader) async throws {
        let configuration = runtime.configuration
        let blobs: any BlobStore
        switch try reader.requireEnum("reports.blob_store", as: BlobStoreKind.self, allowed: BlobStoreKind.allCases) {
        case .directory:
            let directory = reader.optionalString("reports.directory") ?? "\(configuration.dataDirectory)/exports"
            do {
                blobs = try DirectoryBlobStore(directory: directory)
            } catch {
                throw ConfigurationError(key: "reports.directory", problem: "\(error)")
            }
        case .database:
            blobs = DatabaseBlobStore(database: runtime.database)
        }
        var runnerConfiguration = ExportRunner.Configuration()
        runnerConfiguration.workers = try reader.requireInt("reports.workers", in: 1...16)
        runnerConfiguration.retention = TimeInterval(try reader.requireInt("reports.retention_s", in: 1...31_536_000))
        runnerConfiguration.emailRetention = TimeInterval(
            try reader.requireInt("reports.email_retention_s", in: 1...31_536_000))
        runnerConfiguration.gzipLevel = Int32(try reader.requireInt("reports.gzip_level", in: 1...9))
        runnerConfiguration.pageSize = try reader.requireInt("reports.page_size", in: 1...1000)
        runnerConfiguration.rowPageSize = try reader.requireInt(
            "reports.row_page_size", in: 1...ClassroomPages.labRowsMaximumLimit)
        runnerConfiguration.blockSize = try reader.requireInt("reports.block_kb", in: 16...65_536) * 1024
        var mailer: Mailer?
        if let host = reader.optionalString("smtp.host"), !host.isEmpty {
            mailer = Mailer(
                client: SMTPClient(
                    settings: SMTPSettings(
                        host: host, port: try reader.requireInt("smtp.port", in: 1...65_535),
                        from: reader.optionalString("smtp.from") ?? "labportal@localhost")))
        } else {
            runtime.logger.notice("smtp.host is not set: reports asked with notify_by_email will not be emailed")
        }
        let dependencies = makeDependencies(
            database: runtime.database, blobs: blobs,
            data: .live(classroom: runtime.peers[.classroom], session: runtime.peers[.session]),
            authenticator: CachedAuthenticator.wire(runtime.peers[.session]), mailer: mailer,
            publicURL: reader.optionalString("public.url") ?? "http://localhost:8080",
            maximumUnfinished: try reader.requireInt("reports.max_unfinished", in: 1...100_000),
            runner: runnerConfiguration, now: { Date() }, logger: runtime.logger)
        try await runtime.run(
            routes: { router in addRoutes(to: router, dependencies: dependencies) },
            wire: WireRouter(),
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

    public static func addRoutes(to router: Router<BasicRequestContext>, dependencies: ReportDependencies) {
        ExportsController(dependencies: dependencies).addRoutes(to: router)
    }
}
