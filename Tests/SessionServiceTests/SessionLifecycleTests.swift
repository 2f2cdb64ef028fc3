import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("Activation, expiry, extension, termination, the user's sessions and the browser flow")
struct SessionLifecycleTests {
    static let index = "https://hub.test/?x=1"

    static func request(_ client: some TestClientProtocol, _ token: String, env: String = "lab-w01", extra: String = "")
        async throws -> HTTPAnswer
    {
        try await client.call(
            .get, "/workshops/environment/\(env)/request/?index_url=\(FormParameters.encode(index))\(extra)",
            headers: bearer(token))
    }

    @Test("activation: errors for no token, unknown session, wrong token; then 302 to the session page with a cookie")
    func activation() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", expires: 1800)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let url = try #require(try await Self.request(client, token).json["url"] as? String)

                let missing = try await client.call(.get, "/workshops/session/lab-w01-s001/activate/")
                #expect(missing.status == .badRequest)
                #expect(missing.error == "No access token supplied")
                let unknown = try await client.call(.get, "/workshops/session/lab-w01-s099/activate/?token=abc")
                #expect(unknown.status == .badRequest)
                #expect(unknown.error == "Invalid session name supplied")
                let wrong = try await client.call(.get, "/workshops/session/lab-w01-s001/activate/?token=abc")
                #expect(wrong.status == .badRequest)
                #expect(wrong.error == "Invalid access token for session")

                harness.clock.advance(seconds: 10)
                let activated = try await client.call(.get, url)
                #expect(activated.status == .found)
                #expect(activated.location == "/workshops/session/lab-w01-s001/")
                #expect(cookies(activated.headers).contains("labportal_user="))
                let session = try #require(try await harness.session("lab-w01-s001"))
                #expect(session.state == .running && !session.pending)
                #expect(session.startedAt == harness.clock.now)
                #expect(session.expiresAt == harness.clock.now.addingTimeInterval(1800))

                // The page: title, countdown, Extend and Terminate, the lab.
                try await harness.pass()
                let page = try await client.call(
                    .get, "/workshops/session/lab-w01-s001/", headers: [.cookie: cookies(activated.headers)])
                #expect(page.status == .ok)
                #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(page.text.contains("Title of ws"))
                #expect(page.text.contains(#"id="countdown">30:00<"#))
                #expect(page.text.contains(">Extend</button>") && page.text.contains(">Terminate</button>"))
                #expect(page.text.contains(#"<iframe id="lab" src="http://lab.test/lab-w01-s001/""#))
                // Without the cookie, the page is not this browser's.
                let stranger = try await client.call(.get, "/workshops/session/lab-w01-s001/")
                #expect(stranger.status == .found)
                #expect(stranger.location.contains("notification=session-invalid"))
            }
        }
    }

    @Test("an unactivated session is deleted after its timeout; the reaper catches up after downtime")
    func activationTimeout() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])
        let provisioner = StubProvisioner()
        try await SessionHarness.with(portal: portal, provisioner: provisioner) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                _ = try await Self.request(client, token, extra: "&timeout=30")
                _ = try await Self.request(client, token)  // default 60 s
                try await harness.pass()
                harness.clock.advance(seconds: 31)
                try await harness.pass()
                #expect(try await harness.session("lab-w01-s001")?.state == .stopped)
                #expect(try await harness.session("lab-w01-s002")?.state == .waiting)
                #expect(provisioner.deleted.withLock { $0 } == ["lab-w01-s001"])
                // Nothing ran for ten minutes: one pass catches up.
                harness.clock.advance(seconds: 600)
                try await harness.pass()
                #expect(try await harness.session("lab-w01-s002")?.state == .stopped)
                // timeout=0 means the workshop's duration.
                _ = try await Self.request(client, token, extra: "&timeout=0")
                let third = try #require(try await harness.session("lab-w01-s003"))
                #expect(third.expiresAt == harness.clock.now.addingTimeInterval(1800))
            }
        }
    }

    @Test("schedule, extend (refused with extended false, then granted up to the deadline), terminate, then 404")
    func extendAndTerminate() async throws {
        let portal = StubCatalog.portal(
            [StubCatalog.environment("lab-w01", workshop: "ws", expires: 3600, deadline: 7200, overtime: 900)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let answer = try await Self.request(client, token)
                let url = try #require(answer.json["url"] as? String)
                let robot = bearer(token)
                let pending = try await client.call(.get, "/workshops/session/lab-w01-s001/schedule/", headers: robot)
                #expect(pending.json["status"] as? String == "WAITING")
                #expect(pending.json["countdown"] as? Int == 60)

                _ = try await client.call(.get, url)
                let schedule = try await client.call(.get, "/workshops/session/lab-w01-s001/schedule", headers: robot)
                #expect(schedule.status == .ok)
                #expect(schedule.json["status"] as? String == "RUNNING")
                #expect(schedule.json["countdown"] as? Int == 3600)
                #expect(schedule.json["expiring"] as? Bool == false)
                #expect(schedule.json["extendable"] as? Bool == false)
                #expect((schedule.json["started"] as? String)?.hasSuffix("Z") == true)

                let refused = try await client.call(.post, "/workshops/session/lab-w01-s001/extend/", headers: robot)
                #expect(refused.status == .ok)
                #expect(refused.json["extended"] as? Bool == false)

                harness.clock.advance(seconds: 3400)  // 200 s left < step 900
                let before = try await client.call(.get, "/workshops/session/lab-w01-s001/schedule/", headers: robot)
                #expect(before.json["extendable"] as? Bool == true)
                #expect(before.json["expiring"] as? Bool == true)
                let extended = try await client.call(.get, "/workshops/session/lab-w01-s001/extend/", headers: robot)
                #expect(extended.json["extended"] as? Bool == true)
                #expect(extended.json["countdown"] as? Int == 1100)
                let again = try await client.call(.get, "/workshops/session/lab-w01-s001/extend/", headers: robot)
                #expect(again.json["extended"] as? Bool == false)

                // Extensions never pass started + deadline.
                harness.clock.advance(seconds: 1000)
                _ = try await client.call(.get, "/workshops/session/lab-w01-s001/extend/", headers: robot)
                harness.clock.advance(seconds: 890)
                _ = try await client.call(.get, "/workshops/session/lab-w01-s001/extend/", headers: robot)
                let capped = try #require(try await harness.session("lab-w01-s001"))
                #expect(capped.expiresAt! <= capped.deadlineAt!)
                #expect(capped.deadlineAt == capped.startedAt!.addingTimeInterval(7200))

                let terminated = try await client.call(.post, "/workshops/session/lab-w01-s001/terminate/", headers: robot)
                #expect(terminated.status == .ok)
                #expect(terminated.json["expires"] as? String == EducatesTime.string(harness.clock.now))
                #expect(try await harness.session("lab-w01-s001")?.state == .stopping)
                try await harness.pass()
                #expect(try await harness.session("lab-w01-s001")?.state == .stopped)
                let gone = try await client.call(.post, "/workshops/session/lab-w01-s001/terminate/", headers: robot)
                #expect(gone.status == .notFound)
            }
        }
    }

    @Test("per-session access: owner, robot or admin; others get 403; a spare cannot be extended or terminated")
    func sessionAccess() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", reserved: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.pass()
            let repository = harness.dependencies.identity.repository
            let other = try await repository.createUser(.init(username: "other", role: .user), now: harness.clock.now)
            let otherToken = try await repository.issueGrant(
                userID: other.id, clientID: harness.credentials.robotClientID, now: harness.clock.now)
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let spare = try await client.call(.get, "/workshops/session/lab-w01-s001/extend/", headers: bearer(token))
                #expect(spare.status == .badRequest)
                #expect(spare.error == "Session is not currently in use")
                let forbidden = try await client.call(
                    .get, "/workshops/session/lab-w01-s001/schedule/", headers: bearer(otherToken.accessToken))
                #expect(forbidden.status == .forbidden)
                #expect(forbidden.error == "Access to session not permitted")
                let missing = try await client.call(.get, "/workshops/session/lab-w01-s404/schedule/", headers: bearer(token))
                #expect(missing.status == .notFound)
                let unauthenticated = try await client.call(.get, "/workshops/session/lab-w01-s001/schedule/")
                #expect(unauthenticated.status == .unauthorized)
            }
        }
    }

    @Test("the user's sessions list: active ones with timing, no state; unknown users get an empty list")
    func userSessions() async throws {
        let portal = StubCatalog.portal(
            [StubCatalog.environment("lab-w01", workshop: "a"), StubCatalog.environment("lab-w02", workshop: "b", expires: nil)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await Self.request(client, token)
                let user = try #require(first.json["user"] as? String)
                _ = try await Self.request(client, token, env: "lab-w02", extra: "&user=\(user)")
                let list = try await client.call(.get, "/workshops/user/\(user)/sessions/", headers: bearer(token))
                #expect(list.json["user"] as? String == user)
                let sessions = try #require(list.json["sessions"] as? [[String: Any]])
                #expect(sessions.map { $0["name"] as? String } == ["lab-w01-s001", "lab-w02-s001"])
                #expect(sessions[0]["state"] == nil)
                #expect(sessions[0]["workshop"] as? String == "a")
                #expect(sessions[0]["countdown"] as? Int == 60)
                #expect(sessions[0]["extendable"] as? Bool == false)
                let empty = try await client.call(.get, "/workshops/user/nobody/sessions", headers: bearer(token))
                #expect(empty.status == .ok)
                #expect((empty.json["sessions"] as? [Any])?.isEmpty == true)
                let badName = try await client.call(.get, "/workshops/user/a@b.com/sessions/", headers: bearer(token))
                #expect(badName.status == .notFound)
            }
        }
    }

    @Test("notifications: session-deleted, session-invalid, workshop-invalid, session-unavailable, merged into the index URL")
    func notifications() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let url = try #require(try await Self.request(client, token).json["url"] as? String)
                let activated = try await client.call(.get, url)
                let cookie: HTTPFields = [.cookie: cookies(activated.headers)]

                // session-invalid: a session this browser does not own, or none at all.
                let invalid = try await client.call(.get, "/workshops/session/lab-w01-s777/", headers: cookie)
                #expect(invalid.location == "https://hub.test/?x=1&notification=session-invalid")

                // workshop-invalid: an unknown environment in the browser flow.
                let workshop = try await client.call(.get, "/workshops/environment/nope-w09/", headers: cookie)
                #expect(workshop.location == "https://hub.test/?x=1&notification=workshop-invalid")

                // session-deleted: deleting from the browser, and visiting the page after.
                let deleted = try await client.call(.get, "/workshops/session/lab-w01-s001/delete/", headers: cookie)
                #expect(deleted.location == "https://hub.test/?x=1&notification=session-deleted")
                let page = try await client.call(.get, "/workshops/session/lab-w01-s001/", headers: cookie)
                #expect(page.location == "https://hub.test/?x=1&notification=session-deleted")
                try await harness.pass()
                let reactivate = try await client.call(.get, url, headers: cookie)
                #expect(reactivate.location == "https://hub.test/?x=1&notification=session-deleted")

                // session-unavailable: the anonymous entry when capacity (1) is taken.
                _ = try await Self.request(client, token)
                let create = try await client.call(
                    .get, "/workshops/environment/lab-w01/create/?index_url=\(FormParameters.encode("https://web.test/"))")
                #expect(create.status == .found)
                #expect(create.location == "/workshops/environment/lab-w01/?made=1&index_url=https%3A%2F%2Fweb.test%2F")
                let anonymous: HTTPFields = [.cookie: cookies(create.headers)]
                let unavailable = try await client.call(.get, create.location, headers: anonymous)
                #expect(unavailable.location == "https://web.test/?notification=session-unavailable")

                // Without the index URL in the request or the browser, the portal default is used.
                let fallback = try await client.call(.get, "/workshops/session/lab-w01-s888/")
                #expect(fallback.location == "http://portal.test/index/?notification=session-invalid")
            }
        }
    }

    @Test("the anonymous browser entry allocates a running session and opens its page")
    func anonymousEntry() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", reserved: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.pass()
            try await harness.application().test(.router) { client in
                let create = try await client.call(.get, "/workshops/environment/lab-w01/create/?index_url=https%3A%2F%2Fweb.test%2F")
                let cookie: HTTPFields = [.cookie: cookies(create.headers)]
                let enter = try await client.call(.get, create.location, headers: cookie)
                #expect(enter.location == "/workshops/session/lab-w01-s001/")
                let session = try #require(try await harness.session("lab-w01-s001"))
                #expect(session.state == .running && session.tokenNonce == nil && session.expiresAt != nil)
                let page = try await client.call(.get, enter.location, headers: cookie)
                #expect(page.status == .ok)
                // A REST reacquire of a browser-made session is refused.
                let token = try await client.robotToken(harness.credentials)
                let owner = try #require(session.ownerName)
                let reacquire = try await client.call(
                    .get, "/workshops/environment/lab-w01/request/?index_url=x&user=\(owner)", headers: bearer(token))
                #expect(reacquire.status == .serviceUnavailable)
                #expect(reacquire.error == "Cannot be reacquired")

                // A browser that refuses cookies is not sent round create/ and <env>/ forever: the second time it
                // goes back to the index, told there is no session for it.
                let noCookies = try await client.call(.get, create.location)
                #expect(noCookies.location == "https://web.test/?notification=session-unavailable", "\(noCookies.location)")
                let first = try await client.call(.get, "/workshops/environment/lab-w01/?index_url=https%3A%2F%2Fweb.test%2F")
                #expect(first.location == "/workshops/environment/lab-w01/create/?index_url=https%3A%2F%2Fweb.test%2F")
                let unknown = try await client.call(.get, "/workshops/environment/lab-w99/?index_url=https%3A%2F%2Fweb.test%2F")
                #expect(unknown.location == "https://web.test/?notification=workshop-invalid")
            }
        }
    }

    @Test("provisioning failures show on the session with a message and are retried")
    func provisioningFailure() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", reserved: 1)])
        let provisioner = StubProvisioner()
        provisioner.failing.withLock { $0 = "the cluster is full" }
        try await SessionHarness.with(portal: portal, provisioner: provisioner) { harness in
            try await harness.pass()
            let failed = try #require(try await harness.session("lab-w01-s001"))
            #expect(failed.provision == .failed && failed.errorMessage == "the cluster is full")
            #expect(failed.state == .starting && failed.attempts == 1)
            try await harness.pass()  // not due yet
            #expect(try await harness.session("lab-w01-s001")?.attempts == 1)
            provisioner.failing.withLock { $0 = nil }
            harness.clock.advance(seconds: 6)
            try await harness.pass()
            let ready = try #require(try await harness.session("lab-w01-s001"))
            #expect(ready.provision == .ready && ready.state == .waiting && ready.errorMessage == nil)
        }
    }
}
