import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import TestSupport
import Testing

@Suite("Users: admin REST, classrooms_access, API tokens")
struct UsersTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])

    @Test("admins create and read users and make API tokens that work by HTTP Basic")
    func createAndRead() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            let admin = basic(c.adminUser, c.adminAPIToken)
            try await harness.application().test(.router) { client in
                let created = try await client.call(
                    .post, "/users.json?login_name=jo&email=jo%40example.com&first_name=Jo&classrooms_access=True",
                    headers: [.authorization: admin[.authorization]!, .contentType: "application/json"], body: "")
                #expect(created.status == .created, "\(created.text)")
                let id = try #require(created.json["id"] as? String)
                #expect(Int(id) != nil)
                #expect(created.json["login_name"] as? String == "jo")
                #expect(created.json["classrooms_access"] as? Bool == true)
                let shown = try await client.call(.get, "/users/\(id).json", headers: admin)
                #expect(shown.json["email"] as? String == "jo@example.com")

                let duplicate = try await client.call(.post, "/users?login_name=jo", headers: admin)
                #expect(duplicate.status == .conflict)
                let missing = try await client.call(.post, "/users", headers: admin)
                #expect(missing.status == .badRequest)
                #expect(missing.json["field"] as? String == "login_name")
                let badRole = try await client.call(.post, "/users?login_name=x&role=god", headers: admin)
                #expect(badRole.json["field"] as? String == "role")

                let token = try await client.call(.post, "/users/\(id)/api_tokens", headers: admin)
                #expect(token.status == .created)
                let value = try #require(token.json["value"] as? String)
                let me = try await client.call(.get, "/users/\(id)", headers: basic("jo", value))
                #expect(me.status == .ok)
                let other = try await client.call(.get, "/users/1", headers: basic("jo", value))
                #expect(other.status == .forbidden)
                let list = try await client.call(.get, "/users?count=2", headers: admin)
                #expect(list.headers[HTTPField.Name("Content-Range")!] == "items 0-1/3")
                let notAdmin = try await client.call(.post, "/users?login_name=y", headers: basic("jo", value))
                #expect(notAdmin.status == .forbidden)
                let unknown = try await client.call(.get, "/users/999", headers: admin)
                #expect(unknown.status == .notFound)
            }
        }
    }

    @Test("PUT /users/<id>?classrooms_access=… for admins and user managers; not for admin accounts or others")
    func classroomsAccess() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let c = harness.credentials
            let repository = harness.dependencies.identity.repository
            let manager = try await repository.createUser(.init(username: "mgr", role: .user, userManager: true), now: harness.clock.now)
            let plain = try await repository.createUser(.init(username: "plain", role: .user), now: harness.clock.now)
            let managerToken = try await repository.issueAPIToken(userID: manager.id, now: harness.clock.now)
            let plainToken = try await repository.issueAPIToken(userID: plain.id, now: harness.clock.now)
            try await harness.application().test(.router) { client in
                let byManager = try await client.call(
                    .put, "/users/\(plain.id)?classrooms_access=true", headers: basic("mgr", managerToken))
                #expect(byManager.status == .ok)
                #expect(byManager.json["classrooms_access"] as? Bool == true)
                // The change is seen at once through identity.authenticate (the cache entry is dropped).
                let seen = try await harness.dependencies.authenticator.authenticate(basic("plain", plainToken)[.authorization]!)
                #expect(seen.classroomsAccess)
                let byAdmin = try await client.call(
                    .put, "/users/\(plain.id)?classrooms_access=False", headers: basic(c.adminUser, c.adminAPIToken))
                #expect(byAdmin.json["classrooms_access"] as? Bool == false)
                let byPlain = try await client.call(
                    .put, "/users/\(manager.id)?classrooms_access=true", headers: basic("plain", plainToken))
                #expect(byPlain.status == .forbidden)
                let adminAccount = try await client.call(
                    .put, "/users/1?classrooms_access=false", headers: basic(c.adminUser, c.adminAPIToken))
                #expect(adminAccount.status == .unprocessableContent)
                let bad = try await client.call(
                    .put, "/users/\(plain.id)?classrooms_access=maybe", headers: basic(c.adminUser, c.adminAPIToken))
                #expect(bad.status == .badRequest)
                #expect(bad.json["field"] as? String == "classrooms_access")
            }
        }
    }
}
