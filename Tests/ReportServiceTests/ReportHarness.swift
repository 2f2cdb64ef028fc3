import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import ReportService
import ServerKit
import Storage
import Synchronization
import TestSupport
import Testing
import Wire

/// Report callers by Basic `name:token-name`.
enum ReportUsers {
    static let users: [String: AuthenticatedUser] = [
        "admin": .init(
            id: "1", username: "admin", email: "admin@example.com", firstName: "Ada", lastName: "Admin", role: .admin,
            classroomsAccess: true, userManager: true),
        "alice": .init(
            id: "2", username: "alice", email: "alice@example.com", firstName: "Alice", lastName: "", role: .user,
            classroomsAccess: true, userManager: false),
        "bob": .init(
            id: "3", username: "bob", email: "", firstName: "Bob", lastName: "", role: .user, classroomsAccess: true,
            userManager: false),
        "robot": .init(
            id: "4", username: "robot", email: "robot@example.com", firstName: "", lastName: "", role: .robot,
            classroomsAccess: false, userManager: false),
    ]
}

/// Rows for every kind, in pages, from memory; tests make it fail or slow.
final class StubData: Sendable {
    struct State {
        var rows: [ExportKind: [[String?]]] = [:]
        /// Errors to throw, one per call, before answering again.
        var failures: [WireError] = []
        var calls: [String] = []
        /// The most rows a call may ask for, as an older classroom-service allows; nil: any.
        var maximumLimit: Int?
    }

    let state = Mutex(State())

    var peer: DataPeer {
        DataPeer { kind, filters, cursor, limit in
            try self.state.withLock { state in
                state.calls.append("\(kind.rawValue):\(cursor ?? "-")")
                if !state.failures.isEmpty { throw state.failures.removeFirst() }
                if let maximum = state.maximumLimit, limit > maximum {
                    throw WireError(.invalidParams, "limit must be from 1 to \(maximum)", field: "limit")
                }
                if let query = filters.query, query.hasPrefix("bad") {
                    throw WireError(.invalidParams, "query must be key:value pairs", field: "query")
                }
                if kind == .labs, filters.classID == "999" { throw WireError(.notFound, "no such class: 999") }
                var rows = state.rows[kind] ?? []
                if let query = filters.query, query.hasPrefix("name:") {
                    let word = query.dropFirst(5).lowercased()
                    rows = rows.filter { ($0[1] ?? "").lowercased().contains(word) }
                }
                let start = Int(cursor ?? "0") ?? 0
                let page = Array(rows.dropFirst(start).prefix(limit))
                let next = start + page.count < rows.count ? String(start + page.count) : nil
                guard kind == .labs else { return .cells(page, next: next) }
                // Labs come as the live peer gets them: a RowPage, copied cell by cell into the CSV.
                let json = RowPage(columns: LabItem.rowColumns, rows: page, nextCursor: next).json()
                return ExportPage(rows: .rowPage(ByteBuffer(bytes: json), columns: LabItem.rowColumns), next: next)
            }
        }
    }

    /// `count` lab-like rows with awkward text in some of them.
    static func rows(_ count: Int, kind: ExportKind) -> [[String?]] {
        let names = ["plain", "with, comma", "with \"quotes\"", "line\nbreak", "Grüße 東京", " padded ", "crlf\r\nend"]
        return (0..<count).map { index in
            var row: [String?] = [String(index + 1), names[index % names.count]]
            while row.count < kind.columns.count { row.append(row.count % 3 == 0 ? nil : "v\(index)-\(row.count)") }
            return row
        }
    }
}

/// report-service in-process on a real database, with a manual clock, stub data and users, and a temporary directory
/// for the files.
struct ReportHarness: Sendable {
    let database: Database
    let dependencies: ReportDependencies
    let clock: ManualClock
    let data: StubData
    let directory: String

    static func with<T: Sendable>(
        _ backend: DatabaseBackend = .sqlite, blobStore: ReportConfig.BlobStoreKind = .directory,
        mailer: Mailer? = nil, maximumUnfinished: Int = 100,
        configure: @Sendable (inout ExportRunner.Configuration) -> Void = { _ in },
        _ body: @Sendable (ReportHarness) async throws -> T
    ) async throws -> T {
        try await TestDatabase(backend, label: "report").with { database in
            try await Migrator(ReportApplication.spec.migrations).migrate(database, logger: quietLogger)
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("report-test-\(UUID().uuidString.prefix(8))").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let blobs: any BlobStore = blobStore == .directory
                ? try DirectoryBlobStore(directory: directory) : DatabaseBlobStore(database: database)
            let clock = ManualClock()
            let data = StubData()
            var configuration = ExportRunner.Configuration()
            configuration.pageSize = 7
            configuration.rowPageSize = 7
            configuration.blockSize = 256
            configuration.retryBase = .milliseconds(5)
            configuration.pageAttempts = 3
            configure(&configuration)
            let dependencies = ReportApplication.makeDependencies(
                database: database, blobs: blobs, data: data.peer, authenticator: StubBasicUsers(ReportUsers.users), mailer: mailer,
                publicURL: "https://labs.example.com", maximumUnfinished: maximumUnfinished, runner: configuration,
                now: clock.source, logger: quietLogger)
            return try await body(
                ReportHarness(database: database, dependencies: dependencies, clock: clock, data: data, directory: directory))
        }
    }

    func application() -> some ApplicationProtocol {
        let router = ServiceRouter.make(service: "report")
        ReportApplication.addRoutes(to: router, dependencies: dependencies)
        return Application(router: router, logger: quietLogger)
    }
}

struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
}

extension TestClientProtocol {
    func send(
        _ method: HTTPRequest.Method, _ uri: String, as user: String = "alice", headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> Reply {
        var fields: HTTPFields = [.authorization: StubBasicUsers.authorization(user)]
        for field in headers { fields[field.name] = field.value }
        return try await execute(uri: uri, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }) {
            Reply(status: $0.status, headers: $0.headers, body: Data(buffer: $0.body))
        }
    }
}

/// Runs `gzip -t` on a file; answers its exit status.
func gzipTest(_ path: String) throws -> Int32 {
    runProcess("/bin/sh", ["-c", "gzip -t \"$0\"", path]).status
}

/// Decompresses with the system's gzip (after `gzip -t`).
func gunzip(_ data: Data) throws -> Data {
    guard let inflated = try systemGunzip(data) else {
        Issue.record("gzip refused the data")
        return Data()
    }
    return inflated
}
