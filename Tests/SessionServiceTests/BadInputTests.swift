import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("session-service: text with a NUL is refused, never stored cut")
struct SessionBadInputTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])

    @Test("user details with a NUL, by the users API or a session request, are refused with 422 naming the field", arguments: TestBackends.all)
    func nulRefused(backend: DatabaseBackend) async throws {
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            let c = harness.credentials
            let admin = basic(c.adminUser, c.adminAPIToken)
            try await harness.application().test(.router) { client in
                let before = try await harness.dependencies.identity.repository.userCount()
                for (uri, field) in [
                    ("/users.json?login_name=a%00b", "login_name"), ("/users.json?login_name=jo&first_name=J%00o", "first_name"),
                    ("/users.json?login_name=jo&last_name=%00", "last_name"), ("/users.json?login_name=jo&email=j%00@example.com", "email"),
                ] {
                    let answer = try await client.call(.post, uri, headers: admin)
                    #expect(answer.status == .unprocessableContent, "\(uri): \(answer.text)")
                    #expect(answer.json["field"] as? String == field, "\(uri): \(answer.text)")
                }
                let json = try await client.call(
                    .post, "/users.json", headers: [.authorization: admin[.authorization]!, .contentType: "application/json"],
                    body: #"{"login_name": "jo", "first_name": "J\u0000o"}"#)
                #expect(json.status == .unprocessableContent)
                #expect(json.json["field"] as? String == "first_name")
                let id = "1"
                let edit = try await client.call(.put, "/users/\(id).json?first_name=x%00", headers: admin)
                #expect(edit.status == .unprocessableContent, "\(edit.text)")

                let token = try await client.robotToken(c)
                for field in ["first_name", "last_name", "email", "user"] {
                    let answer = try await client.call(
                        .get, "/workshops/environment/lab-w01/request/?index_url=x&\(field)=a%00b", headers: bearer(token))
                    #expect(answer.status == .unprocessableContent, "\(field): \(answer.text)")
                    #expect(answer.json["field"] as? String == field, "\(answer.text)")
                }
                #expect(try await harness.dependencies.identity.repository.userCount() == before)
                #expect(try await harness.dependencies.sessions.sessions(in: [.starting, .waiting, .running]).isEmpty)
            }
        }
    }
}
