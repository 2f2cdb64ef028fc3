import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Synchronization
import Testing

/// What real Educates front ends rely on where the seed is silent (issue 14): their own user ids, and reacquiring a
/// known session.
@Suite("Educates front ends: their own user ids, reacquiring a session")
struct FrontEndCompatibilityTests {
    static func path(_ extra: String, env: String = "lab-w01") -> String {
        "/workshops/environment/\(env)/request/?index_url=https%3A%2F%2Fhub.test%2F\(extra)"
    }

    @Test("a user id the portal does not know is made under that name, and its next request gets the same session", arguments: TestBackends.all)
    func ownUserIDs(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 5)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.path("&user=alice"), headers: bearer(token))
                #expect(first.status == .ok, "\(first.text)")
                #expect(first.json["user"] as? String == "alice")
                let again = try await client.call(.get, Self.path("&user=alice"), headers: bearer(token))
                #expect(again.json["user"] as? String == "alice")
                #expect(again.json["name"] as? String == first.json["name"] as? String, "the same session, not a new one")
                let user = try #require(try await harness.dependencies.identity.repository.user(username: "alice"))
                #expect(user.user.role == .anonymous)

                // The characters the real portal accepts on /request/, e-mail addresses among them.
                let mail = try await client.call(.get, Self.path("&user=a.b-c_d%40example.com"), headers: bearer(token))
                #expect(mail.status == .ok && mail.json["user"] as? String == "a.b-c_d@example.com", "\(mail.text)")
                for bad in ["bad%20name", "%C3%A9t%C3%A9", String(repeating: "x", count: 151), "a/b"] {
                    let refused = try await client.call(.get, Self.path("&user=\(bad)"), headers: bearer(token))
                    #expect(refused.status == .badRequest, "\(bad): \(refused.text)")
                    #expect(refused.json["field"] as? String == "user", "\(refused.text)")
                }
                // Without `user`, every request is a new user.
                let anonymous = try await client.call(.get, Self.path(""), headers: bearer(token))
                #expect(UUID(uuidString: anonymous.json["user"] as? String ?? "") != nil)
            }
        }
    }

    @Test("many first requests of one new user id at once make one user with one session", arguments: TestBackends.all)
    func concurrentFirstRequests(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 20, reserved: 2)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.pass()
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                    for _ in 0..<24 {
                        group.addTask {
                            let answer = try await client.call(.get, Self.path("&user=carol"), headers: bearer(token))
                            return (Int(answer.status.code), answer.json["name"] as? String)
                        }
                    }
                    var all: [(Int, String?)] = []
                    for try await answer in group { all.append(answer) }
                    return all
                }
                #expect(answers.allSatisfy { $0.0 == 200 }, "\(answers)")
                #expect(Set(answers.compactMap(\.1)).count == 1, "one session for carol: \(answers)")
                let live = try await harness.dependencies.sessions.sessions(in: SessionState.live)
                #expect(live.filter { $0.ownerName == "carol" }.count == 1)
                // A request that still took carol for new (it looked before another request made her) is answered
                // as hers once its insert finds the name taken.
                let (outcome, user) = try await harness.dependencies.sessions.allocate(
                    AllocationRequest(
                        environment: portal.environments[0], limits: portal.portal.sessions,
                        user: .new(.init(username: "carol", role: .anonymous)), reacquire: nil, withToken: true,
                        timeout: 60, indexURL: "x", analyticsURL: nil, parameters: []),
                    now: harness.clock.now)
                #expect(user.username == "carol")
                guard case .allocated(let session, _, let via) = outcome else {
                    Issue.record("not allocated: \(outcome)")
                    return
                }
                #expect(session.name == answers.first?.1 && via == .reused)
            }
        }
    }

    @Test("`session=` gives back the user's live session by name, and nothing else", arguments: TestBackends.all)
    func reacquire(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 5)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.path("&user=dana"), headers: bearer(token))
                let name = try #require(first.json["name"] as? String)
                let back = try await client.call(.get, Self.path("&user=dana&session=\(name)"), headers: bearer(token))
                #expect(back.status == .ok, "\(back.text)")
                #expect(back.json["name"] as? String == name)
                #expect(queryItems(back.json["url"] as? String ?? "")["token"] == queryItems(first.json["url"] as? String ?? "")["token"])
                // Another name, another user's session, or a user with none: never a new session.
                let other = try await client.call(.get, Self.path("&user=dana&session=lab-w01-s999"), headers: bearer(token))
                #expect(other.status == .serviceUnavailable)
                let stranger = try await client.call(.get, Self.path("&user=erin&session=\(name)"), headers: bearer(token))
                #expect(stranger.status == .serviceUnavailable)
                #expect(try await harness.dependencies.sessions.sessions(in: SessionState.live).count == 1)
            }
        }
    }

    @Test("the robot client is public: a token by its id alone; a confidential client gets client_credentials tokens", arguments: TestBackends.all)
    func oauthClients(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 5)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            let c = harness.credentials
            try await harness.application().test(.router) { client in
                let password = [("grant_type", "password"), ("username", c.robotUser), ("password", c.robotPassword)]
                // Educates front ends send the public client's id and no secret.
                let byID = try await client.form("/oauth2/token/", password + [("client_id", c.robotClientID)])
                #expect(byID.status == .ok, "\(byID.text)")
                let token = try #require(byID.json["access_token"] as? String)
                #expect(try await client.call(.get, Self.path(""), headers: bearer(token)).status == .ok)
                // Its secret still works, and a wrong one is still refused.
                #expect(try await client.form("/oauth2/token/", password, headers: basic(c.robotClientID, c.robotClientSecret)).status == .ok)
                let wrong = try await client.form("/oauth2/token/", password, headers: basic(c.robotClientID, "wrong"))
                #expect(wrong.status == .unauthorized && wrong.error == "invalid_client")
                // A public client cannot use client_credentials, even with its secret.
                let publicCredentials = try await client.form(
                    "/oauth2/token/", [("grant_type", "client_credentials")], headers: basic(c.robotClientID, c.robotClientSecret))
                #expect(publicCredentials.status == .badRequest && publicCredentials.error == "unauthorized_client")

                // The confidential client: no token without its secret; with it, client_credentials gives a token
                // for its service account (the robot), with no refresh token.
                let serviceID = try #require(c.serviceClientID)
                let serviceSecret = try #require(c.serviceClientSecret)
                let noSecret = try await client.form("/oauth2/token/", [("grant_type", "client_credentials"), ("client_id", serviceID)])
                #expect(noSecret.status == .unauthorized && noSecret.error == "invalid_client")
                let badSecret = try await client.form(
                    "/oauth2/token/", [("grant_type", "client_credentials")], headers: basic(serviceID, "wrong"))
                #expect(badSecret.status == .unauthorized)
                let granted = try await client.form(
                    "/oauth2/token/", [("grant_type", "client_credentials")], headers: basic(serviceID, serviceSecret))
                #expect(granted.status == .ok, "\(granted.text)")
                #expect(granted.json["refresh_token"] == nil)
                #expect(granted.json["token_type"] as? String == "Bearer")
                let service = try #require(granted.json["access_token"] as? String)
                let allocated = try await client.call(.get, Self.path(""), headers: bearer(service))
                #expect(allocated.status == .ok, "the service account is the robot: \(allocated.text)")
                // In the form body too.
                let inBody = try await client.form(
                    "/oauth2/token/",
                    [("grant_type", "client_credentials"), ("client_id", serviceID), ("client_secret", serviceSecret)])
                #expect(inBody.status == .ok)

                // Revocation by the public client's id alone.
                let revoked = try await client.form("/oauth2/revoke-token/", [("token", token), ("client_id", c.robotClientID)])
                #expect(revoked.status == .ok)
                #expect(try await client.call(.get, Self.path(""), headers: bearer(token)).status == .unauthorized)
            }
        }
    }

    @Test("a credentials file from before the service client still reads, with no service client")
    func oldCredentialsFile() throws {
        let text = """
            LABPORTAL_ADMIN_USER=admin
            LABPORTAL_ADMIN_PASSWORD=a
            LABPORTAL_ADMIN_API_TOKEN=b
            LABPORTAL_ROBOT_USER=robot
            LABPORTAL_ROBOT_PASSWORD=c
            LABPORTAL_ROBOT_CLIENT_ID=d
            LABPORTAL_ROBOT_CLIENT_SECRET=e
            """
        let credentials = try BootstrapCredentials.parse(text, path: "old.env")
        #expect(credentials.robotClientID == "d")
        #expect(credentials.serviceClientID == nil && credentials.serviceClientSecret == nil)
    }

    @Test("at the capacity edge, a spare still starting is handed out rather than a 503", arguments: TestBackends.all)
    func startingSpareAtCapacity(backend: DatabaseBackend) async throws {
        // Capacity 2, one spare: the first request claims the ready spare, whose replacement is still starting when
        // the second comes. The real portal answers 200, 200.
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 2, reserved: 1)])
        let provisioner = StubProvisioner()
        try await SessionHarness.with(backend, portal: portal, provisioner: provisioner) { harness in
            try await harness.pass()  // the spare, ready
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.path(""), headers: bearer(token))
                #expect(first.status == .ok)
                provisioner.holding.withLock { $0 = true }
                try await harness.dependencies.runtime.pass()  // the replacement spare is made, and its lab is starting
                let starting = try await harness.dependencies.sessions.sessions(in: [.starting]).filter { $0.ownerID == nil }
                #expect(starting.count == 1, "a replacement spare is starting")
                let second = try await client.call(.get, Self.path(""), headers: bearer(token))
                #expect(second.status == .ok, "\(second.text)")
                #expect(second.json["name"] as? String == starting.first?.name)
                let claimed = try #require(try await harness.session(starting.first?.name ?? ""))
                #expect(claimed.state == .starting && claimed.ownerID != nil && claimed.pending)
                // Its lab comes up: it waits for activation, and the activation URL works.
                provisioner.holding.withLock { $0 = false }
                await harness.dependencies.runtime.waitForIdle()
                #expect(try await harness.session(claimed.name)?.state == .waiting)
                let activate = try await client.call(.get, second.json["url"] as? String ?? "")
                #expect(activate.status == .found, "\(activate.text)")
                #expect(try await harness.session(claimed.name)?.state == .running)
                // Now the capacity is used: the next request is refused.
                #expect(try await client.call(.get, Self.path(""), headers: bearer(token)).status == .serviceUnavailable)
            }
        }
    }

    @Test("on PostgreSQL, a spare that another transaction holds at that moment is waited for, not refused")
    func lockedSpareAtCapacity() async throws {
        guard TestBackends.postgresURL != nil else {
            #expect(!TestBackends.postgresRequired, "PostgreSQL is required in this run")
            return
        }
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 1, reserved: 1)])
        try await SessionHarness.with(.postgres, portal: portal) { harness in
            try await harness.pass()
            let spare = try #require(try await harness.dependencies.sessions.sessions(in: [.waiting]).first)
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                // Another transaction (the runtime recording the spare's lab, say) holds its row for a moment.
                let holding = Mutex(false)
                let holder = Task {
                    try await harness.database.transaction { db in
                        _ = try await db.raw("SELECT name FROM sessions WHERE name = \(bind: spare.name) FOR UPDATE").all()
                        holding.withLock { $0 = true }
                        try await Task.sleep(for: .milliseconds(700))
                    }
                }
                for _ in 0..<200 where !holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                #expect(holding.withLock { $0 })
                let answer = try await client.call(.get, Self.path(""), headers: bearer(token))
                try await holder.value
                #expect(answer.status == .ok, "\(answer.text)")
                #expect(answer.json["name"] as? String == spare.name)
            }
        }
    }

    @Test("config/ answers the lab's URL and the session's password (which its lab gets); authorize/ who asks")
    func configAndAuthorize() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 5)])
        let provisioner = StubProvisioner()
        try await SessionHarness.with(portal: portal, provisioner: provisioner) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.path("&user=fay"), headers: bearer(token))
                let name = try #require(first.json["name"] as? String)
                let before = try await client.call(.get, "/workshops/session/\(name)/config/", headers: bearer(token))
                #expect(before.status == .ok)
                #expect(before.json["url"] is NSNull, "no lab yet: \(before.text)")
                try await harness.pass()
                let config = try await client.call(.get, "/workshops/session/\(name)/config/", headers: bearer(token))
                #expect(config.status == .ok, "\(config.text)")
                #expect(config.json["url"] as? String == "http://lab.test/\(name)/")
                let password = try #require(config.json["password"] as? String)
                #expect(password.count == 32 && password.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
                #expect(try await client.call(.get, "/workshops/session/\(name)/config", headers: bearer(token)).json["password"] as? String == password)
                #expect(before.json["password"] as? String == password, "the same password before and after")
                #expect(provisioner.creations.withLock { $0 }.first { $0.session == name }?.password == password, "the lab gets it")
                let second = try await client.call(.get, Self.path("&user=gus"), headers: bearer(token))
                let other = try #require(second.json["name"] as? String)
                #expect(try await client.call(.get, "/workshops/session/\(other)/config/", headers: bearer(token)).json["password"] as? String != password)

                let authorize = try await client.call(.get, "/workshops/session/\(name)/authorize/", headers: bearer(token))
                #expect(authorize.status == .ok)
                #expect(authorize.text == #"{"owner":"fay","user":"robot","staff":false}"#, "\(authorize.text)")
                let c = harness.credentials
                let admin = try await client.call(
                    .get, "/workshops/session/\(name)/authorize/", headers: basic(c.adminUser, c.adminAPIToken))
                #expect(admin.json["staff"] as? Bool == true && admin.json["user"] as? String == c.adminUser, "\(admin.text)")
                #expect(try await client.call(.get, "/workshops/session/lab-w01-s999/config/", headers: bearer(token)).status == .notFound)
                #expect(try await client.call(.get, "/workshops/session/\(name)/config/").status == .unauthorized)
            }
        }
    }
}
