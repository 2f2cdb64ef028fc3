import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit

/// Everything session-service's REST and wire handlers use: the composition root builds it once; tests build it
/// with a manual clock and a stub catalog.
public struct SessionDependencies: Sendable {
    public var identity: IdentityService
    public var authenticator: CachedAuthenticator
    public var sessions: SessionRepository
    public var labs: LabEnvironmentRepository
    public var portal: PortalCache
    public var runtime: LabRuntime
    public var outbox: Outbox
    public var analytics: Outbox
    public var counts: SessionApplication.OverviewCache
    public var now: @Sendable () -> Date
    public var logger: Logger

    public init(
        identity: IdentityService, authenticator: CachedAuthenticator, sessions: SessionRepository,
        labs: LabEnvironmentRepository, portal: PortalCache, runtime: LabRuntime, outbox: Outbox, analytics: Outbox,
        counts: SessionApplication.OverviewCache, now: @escaping @Sendable () -> Date,
        logger: Logger
    ) {
        self.counts = counts
        self.identity = identity
        self.authenticator = authenticator
        self.sessions = sessions
        self.labs = labs
        self.portal = portal
        self.runtime = runtime
        self.outbox = outbox
        self.analytics = analytics
        self.now = now
        self.logger = logger
    }

    /// Loads what needs the migrated database (the activation-token key). Runs before serving.
    public func prepare() async throws {
        try await sessions.activationKey.load(from: identity.repository)
    }

    /// The REST caller from its `Authorization` header.
    func caller(_ request: Request) async throws -> AuthenticatedUser {
        try await request.authenticatedUser(authenticator)
    }

    /// A robot (the front end's account) or an admin.
    func robot(_ request: Request, action: String) async throws -> AuthenticatedUser {
        let user = try await caller(request)
        guard user.isRobotOrAdmin else { throw ServiceFailure(.forbidden, "\(action) not permitted") }
        return user
    }

    /// The browser's user, from the cookie set at activation.
    func browserUser(_ request: Request) async throws -> AuthenticatedUser? {
        guard let token = request.cookies[BrowserCookies.user]?.value, !token.isEmpty else { return nil }
        return try await identity.browserUser(token)
    }

    /// The caller of a per-session endpoint: a Bearer/Basic caller, or else the browser's cookie.
    func sessionCaller(_ request: Request) async throws -> AuthenticatedUser {
        if request.headers[.authorization] != nil || request.uri.queryParameters.get("access_token") != nil {
            return try await caller(request)
        }
        if let user = try await browserUser(request) { return user }
        throw ServiceFailure(.unauthenticated, "authentication required: send Authorization: Bearer <token>")
    }
}

enum BrowserCookies {
    static let user = "labportal_user"
    static let index = "labportal_index"
}
