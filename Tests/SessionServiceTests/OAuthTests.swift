import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import TestSupport
import Testing

@Suite("OAuth2 token endpoint, revocation, API tokens and identity.authenticate")
struct OAuthTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])

    @Test("password grant with client credentials in the body or by Basic; the token works; refresh replaces it")
    func passwordAndRefresh() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            try await harness.application().test(.router) { client in
                let body = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "password"), ("username", c.robotUser), ("password", c.robotPassword)],
                    headers: basic(c.robotClientID, c.robotClientSecret))
                #expect(body.status == .ok)
                #expect(body.headers[.cacheControl] == "no-store")
                #expect(body.headers[HTTPField.Name("Pragma")!] == "no-cache")
                #expect(body.json["token_type"] as? String == "Bearer")
                #expect(body.json["expires_in"] as? Int == 36_000)
                #expect(body.json["scope"] as? String == "user:info")
                let access = try #require(body.json["access_token"] as? String)
                let refresh = try #require(body.json["refresh_token"] as? String)
                #expect(access.count >= 30 && refresh.count >= 30)

                let user = try await harness.dependencies.identity.authenticate("Bearer \(access)")
                #expect(user.role == .robot && user.username == c.robotUser)

                let refreshed = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", c.robotClientID),
                     ("client_secret", c.robotClientSecret)])
                #expect(refreshed.status == .ok)
                let newAccess = try #require(refreshed.json["access_token"] as? String)
                #expect(newAccess != access)
                // The old pair is gone.
                await #expect(throws: ServiceFailure.self) {
                    _ = try await harness.dependencies.identity.authenticate("Bearer \(access)")
                }
                let again = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "refresh_token"), ("refresh_token", refresh)],
                    headers: basic(c.robotClientID, c.robotClientSecret))
                #expect(again.status == .badRequest)
                #expect(again.error == "invalid_grant")
            }
        }
    }

    @Test("errors: wrong password 400 invalid_grant, bad client 401 invalid_client, client_credentials 400 unauthorized_client")
    func errors() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            try await harness.application().test(.router) { client in
                let clientAuth = basic(c.robotClientID, c.robotClientSecret)
                let wrong = try await client.form(
                    "/oauth2/token/", [("grant_type", "password"), ("username", c.robotUser), ("password", "nope")],
                    headers: clientAuth)
                #expect(wrong.status == .badRequest)
                #expect(wrong.error == "invalid_grant")
                #expect(wrong.json["error_description"] as? String == "Invalid credentials given.")

                let badClient = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "password"), ("username", c.robotUser), ("password", c.robotPassword)],
                    headers: basic(c.robotClientID, "wrong-secret"))
                #expect(badClient.status == .unauthorized)
                #expect(badClient.error == "invalid_client")

                let noClient = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "password"), ("username", c.robotUser), ("password", c.robotPassword)])
                #expect(noClient.status == .unauthorized)

                let credentialsGrant = try await client.form(
                    "/oauth2/token/", [("grant_type", "client_credentials")], headers: clientAuth)
                #expect(credentialsGrant.status == .badRequest)
                #expect(credentialsGrant.error == "unauthorized_client")

                let missing = try await client.form("/oauth2/token/", [], headers: clientAuth)
                #expect(missing.status == .badRequest)
                #expect(missing.error == "unsupported_grant_type")
            }
        }
    }

    @Test("revoke-token: 200 with an empty body, and the token then gets 401 at once on this replica")
    func revoke() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(c)
                let path = "/workshops/user/nobody/sessions/"
                #expect(try await client.call(.get, path, headers: bearer(token)).status == .ok)
                let revoked = try await client.form(
                    "/oauth2/revoke-token/",
                    [("token", token), ("client_id", c.robotClientID), ("client_secret", c.robotClientSecret)])
                #expect(revoked.status == .ok)
                #expect(revoked.body.isEmpty)
                let after = try await client.call(.get, path, headers: bearer(token))
                #expect(after.status == .unauthorized)
                #expect(after.headers[.wwwAuthenticate] != nil)
                #expect(after.error != nil)
                let badClient = try await client.form(
                    "/oauth2/revoke-token/", [("token", token)], headers: basic(c.robotClientID, "x"))
                #expect(badClient.status == .unauthorized)
            }
        }
    }

    @Test("a revoked token stops working for other replicas within the cache lifetime of 30 s")
    func cacheLifetime() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let clock = harness.clock
            let identity = harness.dependencies.identity
            // Another replica's cache in front of the same identity store.
            let remote = CachedAuthenticator(ttl: .seconds(60), now: clock.source) { try await identity.authenticate($0) }
            let tokens = try await identity.repository.issueGrant(userID: "2", clientID: harness.credentials.robotClientID, now: clock.now)
            let header = "Bearer \(tokens.accessToken)"
            _ = try await remote.authenticate(header)
            try await identity.repository.revoke(tokens.accessToken, clientID: harness.credentials.robotClientID)
            clock.advance(seconds: 29)
            _ = try await remote.authenticate(header)  // still cached
            clock.advance(seconds: 2)
            await #expect(throws: ServiceFailure.self) { _ = try await remote.authenticate(header) }
        }
    }

    @Test("API tokens and passwords work by HTTP Basic; unknown schemes and bad Basic are refused")
    func basicAuthentication() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            let identity = harness.dependencies.identity
            let basicToken = basic(c.adminUser, c.adminAPIToken)[.authorization]!
            #expect(try await identity.authenticate(basicToken).role == .admin)
            let password = basic(c.adminUser, c.adminPassword)[.authorization]!
            #expect(try await identity.authenticate(password).role == .admin)
            let wrongUser = basic(c.robotUser, c.adminAPIToken)[.authorization]!
            await #expect(throws: ServiceFailure.self) { _ = try await identity.authenticate(wrongUser) }
            await #expect(throws: ServiceFailure.self) { _ = try await identity.authenticate("Basic !!!") }
            await #expect(throws: ServiceFailure.self) { _ = try await identity.authenticate("Digest abc") }
            // Tokens are stored only as digests.
            let rows = try await harness.database.sql.raw("SELECT digest FROM tokens").all()
            for row in rows {
                let digest = try row.decode(column: "digest", as: String.self)
                #expect(digest.count == 64 && digest != c.adminAPIToken)
            }
        }
    }
}
