import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("Orphaned sessions: nobody uses them, they end")
struct OrphanedSessionTests {
    /// `orphaned` 10 minutes: idle for 10 minutes, or no page open for 30, ends an activated session.
    static var portal: CatalogPortal.Snapshot {
        var environment = StubCatalog.environment("lab-w01", workshop: "ws", capacity: 10, expires: 7200)
        environment.settings.orphaned = 600
        return StubCatalog.portal([environment])
    }

    static func activated(_ harness: SessionHarness, _ client: some TestClientProtocol, _ token: String) async throws
        -> (String, HTTPFields)
    {
        let request = try await SessionLifecycleTests.request(client, token)
        let name = try #require(request.json["name"] as? String)
        let url = try #require(request.json["url"] as? String)
        let activated = try await client.call(.get, url)
        return (name, [.cookie: cookies(activated.headers)])
    }

    @Test("idle for `orphaned` seconds ends it; an active heartbeat keeps it; a page open but unused does not")
    func idle() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let (kept, keptCookie) = try await Self.activated(harness, client, token)
                // A second user with a page open but never working in it.
                let (idle, idleCookie) = try await Self.activated(harness, client, token)
                for _ in 0..<25 {
                    harness.clock.advance(seconds: 60)
                    let beat = try await client.call(.post, "/workshops/session/\(kept)/activity/?active=true", headers: keptCookie)
                    #expect(beat.status == .noContent)
                    _ = try await client.call(.post, "/workshops/session/\(idle)/activity/?active=false", headers: idleCookie)
                    try await harness.pass()
                }
                #expect(try await harness.session(kept)?.state == .running)
                let ended = try #require(try await harness.session(idle))
                #expect(ended.state == .stopping || ended.state == .stopped)
                // Another browser may not beat for a session that is not its own.
                let foreign = try await client.call(.post, "/workshops/session/\(kept)/activity/", headers: idleCookie)
                #expect(foreign.status == .notFound)
                let bad = try await client.call(.post, "/workshops/session/\(kept)/activity/?active=maybe", headers: keptCookie)
                #expect(bad.status == .badRequest)
            }
        }
    }

    @Test("an activated session nobody opens ends after `orphaned` seconds; unactivated ones are not orphaned")
    func unseen() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let (name, _) = try await Self.activated(harness, client, token)
                let pending = try #require(try await SessionLifecycleTests.request(client, token, extra: "&user=someone-else&timeout=3600").json["name"] as? String)
                harness.clock.advance(seconds: 599)
                try await harness.pass()
                #expect(try await harness.session(name)?.state == .running)
                harness.clock.advance(seconds: 2)
                try await harness.pass()
                let session = try #require(try await harness.session(name))
                #expect(session.state == .stopping || session.state == .stopped)
                // The pending one ends by its activation timeout, not as an orphan.
                #expect(try await harness.session(pending)?.pending == true)
            }
        }
    }
}
