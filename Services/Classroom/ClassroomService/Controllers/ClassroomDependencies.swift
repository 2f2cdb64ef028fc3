import Contracts
import Foundation
import Hummingbird
import Logging
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
    }

    /// The caller of a Classrooms path: a user with `classrooms_access`, or an admin.
    func caller(_ request: Request) async throws -> AuthenticatedUser {
        let user = try await request.authenticatedUser(authenticator)
        guard user.isAdmin || user.classroomsAccess else {
            throw ServiceFailure(.forbidden, "your account does not have access to the Classrooms extension")
        }
        return user
    }

    /// The catalog's templates, by id.
    func templates() async throws -> [String: Template] {
        Template.all(in: try await portal.current())
    }
}

/// Ids in paths: decimal, with an optional `.json` suffix.
enum PathID {
    static func parse(_ context: BasicRequestContext, _ name: String = "id", what: String) throws -> Int64 {
        var text = context.parameters.get(name) ?? ""
        if text.hasSuffix(".json") { text.removeLast(5) }
        guard let id = Int64(text), id > 0 else { throw ServiceFailure(.notFound, "no such \(what): \(text)") }
        return id
    }
}
