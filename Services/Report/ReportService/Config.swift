import Configuration
import Contracts
import Foundation
import ServerKit

/// report-service's own configuration keys (documented in `deploy/env/README.md`), parsed once at start. Every
/// default is here; the shared keys (ports, database, TLS, peers, logs) are `ServiceConfiguration`'s.
public struct ReportConfig: Sendable {
    static let defaults: [String: String] = [
        "reports.blob_store": "directory", "reports.workers": "2", "reports.retention_s": "900",
        "reports.email_retention_s": "604800", "reports.max_unfinished": "100", "reports.gzip_level": "6",
        "reports.page_size": "1000", "reports.row_page_size": "5000", "reports.block_kb": "1024",
        "smtp.port": "25", "smtp.from": "labportal@localhost", "public.url": "http://localhost:8080",
    ]

    public enum BlobStoreKind: String, CaseIterable, Sendable {
        case directory
        case database
    }

    public enum Blobs: Sendable, Equatable {
        /// `reports.directory` (default `<data>/exports`).
        case directory(String)
        case database
    }

    public var blobs: Blobs
    /// `reports.workers`, `reports.retention_s`, `reports.email_retention_s`, `reports.gzip_level`,
    /// `reports.page_size`, `reports.row_page_size`, `reports.block_kb`.
    public var runner: ExportRunner.Configuration
    /// `smtp.host` (none: no email), `smtp.port`, `smtp.from`.
    public var smtp: SMTPSettings?
    /// `public.url`: the origin clients reach nginx at.
    public var publicURL: String
    /// `reports.max_unfinished`: jobs that may wait or run at once.
    public var maximumUnfinished: Int

    public init(reader: ConfigReader, service: ServiceConfiguration) throws {
        switch try reader.requireEnum("reports.blob_store", as: BlobStoreKind.self, allowed: BlobStoreKind.allCases) {
        case .directory: blobs = .directory(reader.optionalString("reports.directory") ?? "\(service.dataDirectory)/exports")
        case .database: blobs = .database
        }
        runner = ExportRunner.Configuration()
        runner.workers = try reader.requireInt("reports.workers", in: 1...16)
        runner.retention = TimeInterval(try reader.requireInt("reports.retention_s", in: 1...31_536_000))
        runner.emailRetention = TimeInterval(try reader.requireInt("reports.email_retention_s", in: 1...31_536_000))
        runner.gzipLevel = Int32(try reader.requireInt("reports.gzip_level", in: 1...9))
        runner.pageSize = try reader.requireInt("reports.page_size", in: 1...1000)
        runner.rowPageSize = try reader.requireInt("reports.row_page_size", in: 1...ClassroomPages.labRowsMaximumLimit)
        runner.blockSize = try reader.requireInt("reports.block_kb", in: 16...65_536) * 1024
        if let host = reader.optionalString("smtp.host"), !host.isEmpty {
            smtp = SMTPSettings(
                host: host, port: try reader.requireInt("smtp.port", in: 1...65_535),
                from: try reader.requireString("smtp.from"))
        }
        publicURL = try reader.requireString("public.url")
        maximumUnfinished = try reader.requireInt("reports.max_unfinished", in: 1...100_000)
    }
}
