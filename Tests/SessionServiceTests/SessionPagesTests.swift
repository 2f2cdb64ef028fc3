import Contracts
import Foundation
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("sessions.page for the sessions report")
struct SessionPagesTests {
    static let portal = StubCatalog.portal([
        StubCatalog.environment("lab-w01", workshop: "ws", capacity: 50),
        StubCatalog.environment("lab-w02", workshop: "other", capacity: 50),
    ])

    @Test("keyset pages cover every session once, in creation order, with the filters", arguments: TestBackends.all)
    func paging(backend: DatabaseBackend) async throws {
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                for index in 0..<12 {
                    let environment = index % 3 == 0 ? "lab-w02" : "lab-w01"
                    let answer = try await client.call(
                        .post, "/workshops/environment/\(environment)/request/?index_url=http://x.test/&user=user\(index)",
                        headers: bearer(token))
                    #expect(answer.status == .ok, "\(answer.text)")
                    if index % 2 == 0 { harness.clock.advance(seconds: 1) }
                }
            }
            var cursor: String?
            var names: [String] = []
            repeat {
                let page = try await SessionPages.page(
                    PageRequest(cursor: cursor, limit: 5, filters: .init()), database: harness.database,
                    now: harness.clock.now)
                names += page.items.map(\.name)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(names.count == 12)
            #expect(Set(names).count == 12)
            let other = try await SessionPages.page(
                PageRequest(limit: 100, filters: .init(query: "environment:lab-w02")), database: harness.database,
                now: harness.clock.now)
            #expect(other.items.count == 4)
            #expect(other.items.allSatisfy { $0.environment == "lab-w02" && $0.workshop == "other" })
            let waiting = try await SessionPages.page(
                PageRequest(limit: 100, filters: .init(query: "state:starting")), database: harness.database,
                now: harness.clock.now)
            #expect(waiting.items.count == 12)
            let recent = try await SessionPages.page(
                PageRequest(
                    limit: 100,
                    filters: .init(
                        createdAt: "\(SkytapTime.string(harness.clock.now.addingTimeInterval(-2))) to \(SkytapTime.string(harness.clock.now))")),
                database: harness.database,
                now: harness.clock.now)
            #expect(recent.items.count < 12)
            #expect(recent.items.count > 0)
            await #expect(throws: ServiceFailure.self) {
                try await SessionPages.page(
                    PageRequest(limit: 100, filters: .init(query: "colour:red")), database: harness.database,
                    now: harness.clock.now)
            }
        }
    }
}
