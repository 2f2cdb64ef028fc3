import Contracts
import Foundation
import ServerKit
import Wire

/// What catalog-service asks session-service.
public struct SessionPeer: Sendable {
    /// Session counts per environment and portal-wide, with the allocated sessions when asked for.
    public var overview: @Sendable (_ includeSessions: Bool) async throws -> SessionsOverview.Result

    public init(overview: @escaping @Sendable (_ includeSessions: Bool) async throws -> SessionsOverview.Result) {
        self.overview = overview
    }

    public static func live(_ client: WireClient) -> SessionPeer {
        SessionPeer(overview: { includeSessions in
            try await client.call(SessionsOverview.self, SessionsOverview.Params(includeSessions: includeSessions))
        })
    }
}

