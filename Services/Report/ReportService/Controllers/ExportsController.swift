import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServerKit
import Wire

/// Everything the REST handlers of report-service use.
public struct ReportDependencies: Sendable {
    public var repository: ExportRepository
    public var blobs: any BlobStore
    public var data: DataPeer
    public var runner: ExportRunner
    public var authenticator: any Authenticating
    public var publicURL: String
    /// Unfinished exports one user may have at once.
    public var maximumUnfinished: Int
    public var now: @Sendable () -> Date
    public var logger: Logger
}

/// Create, poll and download exports (`.json` optional; `.csv` and `.csv.gz` select the file).
struct ExportsController: Sendable {
    let dependencies: ReportDependencies

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        for path in ["/v2/courses/exports", "/v2/courses/exports.json"] {
            router.post(RouterPath(path)) { request, context in try await create(.courses, request, context) }
        }
        for path in ["/v2/classes/exports", "/v2/classes/exports.json"] {
            router.post(RouterPath(path)) { request, context in try await create(.classes, request, context) }
        }
        for path in ["/v2/classes/:class/labs/exports", "/v2/classes/:class/labs/exports.json"] {
            router.post(RouterPath(path)) { request, context in try await create(.labs, request, context) }
        }
        for path in ["/auditing/exports", "/auditing/exports.json"] {
            router.post(RouterPath(path)) { request, context in try await create(.audit, request, context) }
        }
        // With or without the trailing slash (the router treats them alike).
        router.post("/workshops/sessions/exports") { request, context in try await create(.sessions, request, context) }
        for kind in ExportKind.allCases {
            router.get(RouterPath("\(kind.path)/:file")) { request, context in try await show(kind, request, context) }
        }
    }

    // MARK: Access

    /// Who may ask for a kind of report: classrooms users (and admins) for the Classrooms reports, admins for the
    /// audit trail, robots and admins for the workshop sessions.
    func caller(_ request: Request, for kind: ExportKind) async throws -> AuthenticatedUser {
        let user = try await request.authenticatedUser(dependencies.authenticator)
        switch kind {
        case .courses, .classes, .labs:
            guard user.isAdmin || user.classroomsAccess else {
                throw ReportError.noClassroomsAccess
            }
        case .audit:
            guard user.isAdmin else { throw ServiceFailure(.forbidden, "only administrators may export the audit trail") }
        case .sessions:
            guard user.isRobotOrAdmin else {
                throw ServiceFailure(.forbidden, "only robot and admin accounts may export workshop sessions")
            }
        }
        return user
    }

    // MARK: Create

    func create(_ kind: ExportKind, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await caller(request, for: kind)
        let parameters = try await SkytapParameters.read(&request)
        let notify = try parameters.bool("notify_by_email") ?? false
        if notify && caller.email.isEmpty {
            throw ServiceFailure(
                .invalid, "notify_by_email needs an email address on your account, and it has none",
                field: "notify_by_email")
        }
        var filters = ExportFilters(
            query: try parameters.string("query"), createdAt: try parameters.string("created_at"),
            lastDeployed: try parameters.string("last_deployed"), sort: try parameters.string("sort"))
        if kind == .labs {
            var id = context.parameters.get("class") ?? ""
            if id.hasSuffix(".json") { id.removeLast(5) }
            filters.classID = id
        }
        // The filters are checked the way the list checks them, by asking for one row now.
        do {
            _ = try await dependencies.data.fetch(kind, filters, nil, 1)
        } catch let error as WireError {
            let peerKind: ErrorKind = error.kind
            switch peerKind {
            case .badRequest, .invalidParams: throw ServiceFailure(.badRequest, error.publicMessage, field: error.field)
            case .notFound: throw ServiceFailure(.notFound, error.publicMessage)
            case .invalid: throw ServiceFailure(.invalid, error.publicMessage, field: error.field)
            default:
                throw ServiceFailure(.unavailable, "the report's data cannot be read right now; try again shortly")
            }
        }
        switch try await dependencies.repository.create(
            kind: kind, owner: caller, filters: filters, notifyByEmail: notify,
            maximumUnfinished: dependencies.maximumUnfinished, now: dependencies.now())
        {
        case .tooMany(let count):
            throw TooManyExports(count: count)
        case .created(let record):
            context.logger.info(
                "export queued", metadata: ["export": "\(record.id)", "kind": "\(kind.rawValue)", "user": "\(caller.id)"])
            dependencies.runner.wake()
            return JSONResponse.make(json: .object(seedMembers(record)))
        }
    }

    /// The answer to a create, exactly the seed's: `id`, `ready`, `url`, `notify_by_email`, `email`.
    func seedMembers(_ record: ExportRecord) -> [(String, JSONValue)] {
        [
            ("id", .string(String(record.id))),
            ("ready", .bool(record.state == .ready)),
            ("url", .string("\(dependencies.publicURL)\(record.kind.path)/\(record.id)")),
            ("notify_by_email", .bool(record.notifyByEmail)),
            ("email", .string(record.ownerEmail)),
        ]
    }

    /// The answer to a poll: the seed's members, then the progress.
    func json(_ record: ExportRecord) -> JSONValue {
        var members = seedMembers(record) + [
            ("state", .string(record.state.rawValue)),
            ("rows", .int(record.rows)),
        ]
        if record.state == .ready { members.append(("bytes", .int(record.bytes))) }
        if let expires = record.expiresAt { members.append(("expires_at", .string(SkytapTime.string(expires)))) }
        if record.state == .failed { members.append(("error", .string(record.error ?? "the export failed"))) }
        return .object(members)
    }

    // MARK: Poll and download

    enum Format {
        case json
        case csv
        case gzip
    }

    func show(_ kind: ExportKind, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var file = context.parameters.get("file") ?? ""
        var format = Format.json
        if file.hasSuffix(".csv.gz") {
            file.removeLast(7)
            format = .gzip
        } else if file.hasSuffix(".csv") {
            file.removeLast(4)
            format = .csv
        } else if file.hasSuffix(".json") {
            file.removeLast(5)
        }
        let caller = try await request.authenticatedUser(dependencies.authenticator)
        // Unknown, another user's, another kind's, or past its retention: all the same 404.
        guard let id = Int64(file), let record = try await dependencies.repository.export(id), record.kind == kind,
            record.ownerID == caller.id || caller.isAdmin
        else { throw ReportError.noSuchReport(file) }
        if let expires = record.expiresAt, expires <= dependencies.now() {
            throw ReportError.noSuchReport(file)
        }
        if format == .json { return JSONResponse.make(json: json(record)) }
        switch record.state {
        case .queued, .running:
            throw ReportNotReady(rows: record.rows)
        case .failed:
            throw ServiceFailure(.conflict, "the report failed: \(record.error ?? "unknown error")")
        case .ready:
            break
        }
        guard let stream = try await dependencies.blobs.read(ExportRunner.blobKey(record.id)) else {
            throw ReportError.noSuchReport(file)
        }
        let name = "\(kind.rawValue)-\(record.id).csv"
        var headers: HTTPFields = [:]
        headers[.cacheControl] = "private, no-store"
        switch format {
        case .gzip:
            headers[.contentType] = "application/gzip"
            headers[.contentDisposition] = "attachment; filename=\"\(name).gz\""
            return Response(status: .ok, headers: headers, body: Self.body(stream, length: record.bytes))
        case .csv where Self.acceptsGzip(request.headers[.acceptEncoding]):
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.contentEncoding] = "gzip"
            headers[.contentDisposition] = "attachment; filename=\"\(name)\""
            headers[.vary] = "Accept-Encoding"
            return Response(status: .ok, headers: headers, body: Self.body(stream, length: record.bytes))
        default:
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"\(name)\""
            headers[.vary] = "Accept-Encoding"
            return Response(status: .ok, headers: headers, body: Self.inflated(stream))
        }
    }

    /// `Accept-Encoding` names gzip (or `*`) with a quality above 0.
    static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = pieces.first, coding == "gzip" || coding == "x-gzip" || coding == "*" else { continue }
            let quality = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if quality > 0 { return true }
        }
        return false
    }

    static func body(_ stream: AsyncThrowingStream<ByteBuffer, any Error>, length: Int) -> ResponseBody {
        ResponseBody(contentLength: length) { writer in
            for try await chunk in stream { try await writer.write(chunk) }
            try await writer.finish(nil)
        }
    }

    /// The CSV decompressed as it streams out.
    static func inflated(_ stream: AsyncThrowingStream<ByteBuffer, any Error>) -> ResponseBody {
        ResponseBody { writer in
            let inflater = try GzipInflater()
            for try await chunk in stream {
                try await inflater.inflate(chunk) { try await writer.write($0) }
            }
            try await writer.finish(nil)
        }
    }
}

/// 423 with `Retry-After` while a report is being made.
struct ReportNotReady: KindedError, RetryableError {
    var rows: Int
    var kind: ErrorKind { .locked }
    var publicMessage: String { "the report is not ready yet (\(rows) rows so far); try again shortly" }
    var retryAfterSeconds: Int? { 5 }
}

/// 429: the requester's unfinished exports are at the limit.
struct TooManyExports: KindedError, RetryableError {
    var count: Int
    var kind: ErrorKind { .rateLimited }
    var publicMessage: String {
        "you have \(count) reports still being made, the most allowed; wait until one is ready and ask again"
    }
    var retryAfterSeconds: Int? { 30 }
}
