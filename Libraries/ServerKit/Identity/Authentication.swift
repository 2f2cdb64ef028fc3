import Contracts
import Foundation
import Hummingbird
import Logging
import Synchronization
import Wire

/// Checks the `Authorization` header of a REST caller and answers who it is.
public protocol Authenticating: Sendable {
    /// The user behind `authorization` (`Bearer …` or `Basic …`); throws kind `unauthenticated` when there is none.
    func authenticate(_ authorization: String) async throws -> AuthenticatedUser
}

/// An `Authenticating` that asks something slower (session-service over the wire, or the identity database) and
/// remembers each answer for at most `ttl` (never more than 30 s, so that a revoked token stops working within
/// 30 s). Failures are not remembered. The cache holds at most `capacity` entries; when full, the oldest go.
public final class CachedAuthenticator: Authenticating {
    public static let maximumTTL: Duration = .seconds(30)

    private struct Entry {
        var user: AuthenticatedUser
        var expires: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var order: [String] = []
    }

    private let source: @Sendable (String) async throws -> AuthenticatedUser
    private let ttl: TimeInterval
    private let capacity: Int
    private let now: @Sendable () -> Date
    private let state = Mutex(State())

    public init(
        ttl: Duration = .seconds(30), capacity: Int = 10_000, now: @escaping @Sendable () -> Date = { Date() },
        source: @escaping @Sendable (String) async throws -> AuthenticatedUser
    ) {
        let clamped = min(ttl, Self.maximumTTL)
        self.ttl = Double(clamped.components.seconds) + Double(clamped.components.attoseconds) / 1e18
        self.capacity = max(1, capacity)
        self.now = now
        self.source = source
    }

    public func authenticate(_ authorization: String) async throws -> AuthenticatedUser {
        let time = now()
        let cached: AuthenticatedUser? = state.withLock { state in
            guard let entry = state.entries[authorization] else { return nil }
            if entry.expires > time { return entry.user }
            state.entries[authorization] = nil
            return nil
        }
        if let cached { return cached }
        let user = try await source(authorization)
        state.withLock { state in
            if state.entries[authorization] == nil {
                state.order.append(authorization)
            }
            state.entries[authorization] = Entry(user: user, expires: time.addingTimeInterval(ttl))
            if state.order.count > capacity * 2 || state.entries.count > capacity {
                // Drop expired and, if still too many, the oldest entries.
                state.order.removeAll { state.entries[$0] == nil || state.entries[$0]!.expires <= time }
                while state.entries.count > capacity, !state.order.isEmpty {
                    state.entries[state.order.removeFirst()] = nil
                }
            }
        }
        return user
    }

    /// Forgets every cached answer for credentials that satisfy `predicate` (a revoked token, a changed user).
    public func invalidate(where predicate: (String, AuthenticatedUser) -> Bool) {
        state.withLock { state in
            for (key, entry) in state.entries where predicate(key, entry.user) {
                state.entries[key] = nil
            }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}

extension CachedAuthenticator {
    /// The authenticator of a service other than session-service: `identity.authenticate` on session-service,
    /// cached for at most 30 s.
    public static func wire(_ client: WireClient, ttl: Duration = .seconds(30)) -> CachedAuthenticator {
        CachedAuthenticator(ttl: ttl) { authorization in
            try await client.call(IdentityAuthenticate.self, IdentityAuthenticate.Params(authorization: authorization))
        }
    }
}

extension Request {
    /// The `Authorization` header, or an `unauthenticated` error saying what to send.
    /// Without the header, a `?access_token=` query parameter stands for `Authorization: Bearer <token>` (as
    /// OAuth 2 bearer-token clients send it; nginx's access log redacts it).
    public func requireAuthorization() throws -> String {
        if let value = headers[.authorization], !value.trimmingCharacters(in: .whitespaces).isEmpty { return value }
        if let token = uri.queryParameters.get("access_token"), !token.isEmpty { return "Bearer \(token)" }
        throw ServiceFailure(.unauthenticated, "authentication required: send Authorization: Bearer <token>")
    }

    /// The caller, checked with `authenticator`.
    public func authenticatedUser(_ authenticator: any Authenticating) async throws -> AuthenticatedUser {
        try await authenticator.authenticate(try requireAuthorization())
    }
}
