import Contracts
import Foundation
import Hummingbird
import Logging
import NIOCore
import HTTPTypes
import ServerKit

/// Everything classroom-service's REST and wire handlers use: built once by the composition root, and by tests with a
/// manual clock and stub peers.
public struct ClassroomDependencies: Sendable {
    public struct Settings: Sendable {
        /// The public origin, for the absolute URLs in bodies (`url`, `owner_url`, `vm_ref`, `desktops_url`).
        public var publicURL: String
        /// Whether the account has SSO (only then may a course set `sso_required`).
        public var ssoEnabled: Bool
        /// The time zone of classes that name none (users have no personal time zone here).
        public var defaultTimeZone: String

        public init(publicURL: String, ssoEnabled: Bool = false, defaultTimeZone: String = "UTC") {
            self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
            self.ssoEnabled = ssoEnabled
            self.defaultTimeZone = defaultTimeZone
        }
    }

    public var repository: ClassroomRepository
    public var portal: PortalCache
    public var labs: LabPeer
    public var authenticator: any Authenticating
    public var scheduler: ClassScheduler
    public var settings: Settings
    public var now: @Sendable () -> Date
    public var logger: Logger
    /// List pages as sent, per caller, until this process writes (at most 1 s on PostgreSQL, like the repository's).
    let renderedLists: VersionedCache<RenderedListKey, RenderedList>

    public init(
        repository: ClassroomRepository, portal: PortalCache, labs: LabPeer, authenticator: any Authenticating,
        scheduler: ClassScheduler, settings: Settings, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.repository = repository
        self.portal = portal
        self.labs = labs
        self.authenticator = authenticator
        self.scheduler = scheduler
        self.settings = settings
        self.now = now
        self.logger = logger
        renderedLists = VersionedCache(
            counter: repository.changes, enabled: true, capacity: 128,
            maxAge: repository.database.backend == .sqlite ? nil : .seconds(1))
    }

    /// The caller of a Classrooms path: a user with `classrooms_access`, or an admin.
    func caller(_ request: Request) async throws -> AuthenticatedUser {
        let user = try await request.authenticatedUser(authenticator)
        guard user.isAdmin || user.classroomsAccess else {
            throw ClassroomError.noClassroomsAccess
        }
        return user
    }

    /// The catalog's templates, by id.
    func templates() async throws -> [String: Template] {
        Template.all(in: try await portal.current())
    }
}

/// A list page as one caller is sent it (the body depends on the caller through `can_edit`).
struct RenderedListKey: Hashable, Sendable {
    var path: String
    var query: String
    var filter: ListFilter
    var page: SkytapPage
    var caller: String
    var admin: Bool
    /// Anything else the body depends on.
    var variant: String
}

struct RenderedList: Sendable {
    var body: ByteBuffer
    var headers: HTTPFields
}

extension ClassroomDependencies {
    /// A list page: kept as sent while nothing is written, else read and rendered.
    func list(
        _ request: Request, caller: AuthenticatedUser, filter: ListFilter, page: SkytapPage, variant: String = "",
        render: @escaping @Sendable () async throws -> (JSONValue, returned: Int, total: Int)
    ) async throws -> Response {
        let key = RenderedListKey(
            path: request.uri.path, query: request.uri.query ?? "", filter: filter, page: page, caller: caller.id,
            admin: caller.isAdmin, variant: variant)
        let rendered = try await renderedLists.value(for: key) {
            let (json, returned, total) = try await render()
            return RenderedList(
                body: JSONResponse.body(json), headers: page.headers(returned: returned, total: total, request: request))
        }
        return JSONResponse.make(body: rendered.body, headers: rendered.headers)
    }
}

/// Ids in paths: decimal, with an optional `.json` suffix.
enum PathID {
    static func parse(_ context: BasicRequestContext, _ name: String = "id", what: String) throws -> Int64 {
        var text = context.parameters.get(name) ?? ""
        if text.hasSuffix(".json") { text.removeLast(5) }
        guard let id = Int64(text), id > 0 else { throw ClassroomError.noSuch(what: what, id: text) }
        return id
    }
}
