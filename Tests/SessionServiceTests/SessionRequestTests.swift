import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("Session requests: the response, parameters, errors and the allocation order")
struct SessionRequestTests {
    static let index = "https://hub.test/"
    static func requestPath(_ env: String = "lab-w01", _ extra: String = "") -> String {
        "/workshops/environment/\(env)/request/?index_url=\(FormParameters.encode(index))\(extra)"
    }

    @Test("a request answers the seed's fields (with the deprecated session) and a working activation URL")
    func response() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let answer = try await client.call(
                    .post, Self.requestPath("lab-w01", "&email=ann%40example.com&first_name=Ann&last_name=Lee"),
                    headers: bearer(token), body: #"{"parameters": [{"name": "GREETING", "value": "hi"}, {"name": "OTHER", "value": "x"}]}"#)
                #expect(answer.status == .ok, "\(answer.text)")
                let json = answer.json
                #expect(json["name"] as? String == "lab-w01-s001")
                #expect(json["session"] as? String == "lab-w01-s001")
                #expect(json["namespace"] as? String == "lab-w01-s001")
                #expect(json["workshop"] as? String == "ws")
                #expect(json["environment"] as? String == "lab-w01")
                let user = try #require(json["user"] as? String)
                #expect(UUID(uuidString: user) != nil)
                let url = try #require(json["url"] as? String)
                #expect(url.hasPrefix("/workshops/session/lab-w01-s001/activate/?token="))
                let query = queryItems(url)
                #expect(query["token"]?.count == 32)
                #expect(query["index_url"] == Self.index)

                let session = try #require(try await harness.session("lab-w01-s001"))
                #expect(session.parameters == [RequestParameter(name: "GREETING", value: "hi")])
                #expect(session.pending && session.ownerName == user)
                #expect(session.tokenDigest != query["token"])
                let record = try #require(try await harness.dependencies.identity.repository.user(username: user))
                #expect(record.user.email == "ann@example.com" && record.user.firstName == "Ann")
                #expect(record.user.role == .anonymous)

                // Without the trailing slash, by GET, it answers the same way (the user's existing session).
                let again = try await client.call(
                    .get, "/workshops/environment/lab-w01/request?index_url=x&user=\(user)", headers: bearer(token))
                #expect(again.status == .ok)
                #expect(again.json["name"] as? String == "lab-w01-s001")
                #expect(queryItems(again.json["url"] as? String ?? "")["token"] == query["token"])
            }
        }
    }

    @Test("error paths: 401 without or with a bad token, 403 for a non-robot, 404 unknown environment, 400s naming the field")
    func errors() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            let c = harness.credentials
            try await harness.application().test(.router) { client in
                let none = try await client.call(.get, Self.requestPath())
                #expect(none.status == .unauthorized)
                #expect(none.headers[.wwwAuthenticate] != nil)
                #expect(try await client.call(.get, Self.requestPath(), headers: bearer("nope")).status == .unauthorized)

                let userRecord = try await harness.dependencies.identity.repository.createUser(
                    .init(username: "pat", role: .user, passwordHash: try Secrets.hashPassword("pat-password-123")),
                    now: harness.clock.now)
                let patToken = try await harness.dependencies.identity.repository.issueGrant(
                    userID: userRecord.id, clientID: c.robotClientID, now: harness.clock.now)
                let forbidden = try await client.call(.get, Self.requestPath(), headers: bearer(patToken.accessToken))
                #expect(forbidden.status == .forbidden)
                #expect(forbidden.error == "Session requests not permitted")

                let token = try await client.robotToken(c)
                let unknown = try await client.call(.get, Self.requestPath("nope-w99"), headers: bearer(token))
                #expect(unknown.status == .notFound)
                #expect(unknown.error == "Environment does not exist")

                let noIndex = try await client.call(.get, "/workshops/environment/lab-w01/request/", headers: bearer(token))
                #expect(noIndex.status == .badRequest)
                #expect(noIndex.error == "Need redirect URL for workshop index")
                #expect(noIndex.json["field"] as? String == "index_url")

                let email = try await client.call(.get, Self.requestPath("lab-w01", "&email=not-an-email"), headers: bearer(token))
                #expect(email.status == .badRequest)
                #expect(email.json["field"] as? String == "email")

                let timeout = try await client.call(.get, Self.requestPath("lab-w01", "&timeout=soon"), headers: bearer(token))
                #expect(timeout.status == .badRequest)
                #expect(timeout.json["field"] as? String == "timeout")

                let malformed = try await client.call(.post, Self.requestPath(), headers: bearer(token), body: "{not json")
                #expect(malformed.status == .badRequest)
                #expect(malformed.error == "Malformed JSON request payload")
                let invalid = try await client.call(
                    .post, Self.requestPath(), headers: bearer(token), body: #"{"parameters": [{"name": 3}]}"#)
                #expect(invalid.status == .badRequest)
                #expect(invalid.error?.hasPrefix("Invalid JSON request payload") == true)

                let staff = try await client.call(.get, Self.requestPath("lab-w01", "&user=\(c.adminUser)"), headers: bearer(token))
                #expect(staff.status == .badRequest)
                #expect(staff.error == "Session requests not permitted for user")

                #expect(try await client.call(.get, Self.requestPath(), headers: bearer(token)).status == .ok)
                let full = try await client.call(.get, Self.requestPath(), headers: bearer(token))
                #expect(full.status == .serviceUnavailable)
                #expect(full.error == "No session available")
            }
        }
    }

    @Test("order: the user's session first (same token, window restarted), then a ready spare, then on demand")
    func allocationOrder() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 3, reserved: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.pass()  // the spare is made and provisioned
            let spare = try #require(try await harness.session("lab-w01-s001"))
            #expect(spare.state == .waiting && spare.ownerID == nil && spare.provision == .ready)

            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.requestPath(), headers: bearer(token))
                #expect(first.json["name"] as? String == "lab-w01-s001")  // the spare
                let user = try #require(first.json["user"] as? String)
                let firstToken = queryItems(first.json["url"] as? String ?? "")["token"]
                let allocated = try #require(try await harness.session("lab-w01-s001"))
                #expect(allocated.expiresAt == harness.clock.now.addingTimeInterval(60))

                harness.clock.advance(seconds: 40)
                let again = try await client.call(.get, Self.requestPath("lab-w01", "&user=\(user)"), headers: bearer(token))
                #expect(again.json["name"] as? String == "lab-w01-s001")
                #expect(queryItems(again.json["url"] as? String ?? "")["token"] == firstToken)
                let restarted = try #require(try await harness.session("lab-w01-s001"))
                #expect(restarted.expiresAt == harness.clock.now.addingTimeInterval(60))

                // `session=` only reacquires: a different name gives 503, never a new session.
                let other = try await client.call(
                    .get, Self.requestPath("lab-w01", "&user=\(user)&session=lab-w01-s009"), headers: bearer(token))
                #expect(other.status == .serviceUnavailable)
                let reacquire = try await client.call(
                    .get, Self.requestPath("lab-w01", "&session=lab-w01-s001"), headers: bearer(token))
                #expect(reacquire.status == .serviceUnavailable)  // a new user has nothing to reacquire

                // The replacement spare; a second user takes it, a third is made on demand.
                try await harness.pass()
                let second = try await client.call(.get, Self.requestPath(), headers: bearer(token))
                #expect(second.json["name"] as? String == "lab-w01-s002")
                let third = try await client.call(.get, Self.requestPath(), headers: bearer(token))
                #expect(third.json["name"] as? String == "lab-w01-s003")
                let onDemand = try #require(try await harness.session("lab-w01-s003"))
                #expect(onDemand.state == .starting && onDemand.provision == .pending)
                // Capacity 3 is reached: no spare is added, a fourth user gets 503.
                try await harness.pass()
                #expect(try await harness.session("lab-w01-s004") == nil)
                #expect(try await client.call(.get, Self.requestPath(), headers: bearer(token)).status == .serviceUnavailable)
                #expect(try #require(try await harness.session("lab-w01-s003")).state == .waiting)
            }
        }
    }

    @Test("caps: anonymous and registered per-user limits, and the portal maximum evicts the oldest spare")
    func caps() async throws {
        let portal = StubCatalog.portal(
            [
                StubCatalog.environment("lab-w01", workshop: "a", capacity: 5, reserved: 1),
                StubCatalog.environment("lab-w02", workshop: "b", capacity: 5, reserved: 1),
                StubCatalog.environment("lab-w03", workshop: "c", capacity: 5, reserved: 0),
            ],
            maximum: 3, registered: 2, anonymous: 1)
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.pass()
            #expect(try await harness.session("lab-w01-s001")?.state == .waiting)
            #expect(try await harness.session("lab-w02-s001")?.state == .waiting)
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await client.call(.get, Self.requestPath("lab-w01"), headers: bearer(token))
                let anonymous = try #require(first.json["user"] as? String)
                // An anonymous user holds at most 1.
                let capped = try await client.call(
                    .get, Self.requestPath("lab-w02", "&user=\(anonymous)"), headers: bearer(token))
                #expect(capped.status == .serviceUnavailable)

                // A registered user holds at most 2.
                _ = try await harness.dependencies.identity.repository.createUser(
                    .init(username: "reg", role: .user), now: harness.clock.now)
                #expect(try await client.call(.get, Self.requestPath("lab-w02", "&user=reg"), headers: bearer(token)).status == .ok)
                // Portal: 2 allocated + the lab-w01 replacement spare is not yet made (pass not run): active = 2 + 0.
                // lab-w03 has no spare: on demand, within maximum 3.
                try await harness.pass()  // spares replaced: lab-w01-s002, lab-w02-s002 → active 4 > max? capped at 3
                let spares = try await harness.dependencies.sessions.sessions(in: [.starting, .waiting])
                    .filter { $0.ownerID == nil }
                #expect(spares.count == 1)  // maximum 3 = 2 allocated + 1 spare
                let third = try await client.call(.get, Self.requestPath("lab-w03", "&user=reg"), headers: bearer(token))
                #expect(third.status == .ok, "\(third.text)")
                // Only the spare stood in the way: it was stopped for the new session.
                let stopped = try #require(try await harness.session(spares[0].name))
                #expect(stopped.state == .stopping)
                // Now 3 allocated = maximum: nobody else gets one.
                let over = try await client.call(.get, Self.requestPath("lab-w03"), headers: bearer(token))
                #expect(over.status == .serviceUnavailable)
            }
        }
    }
}
