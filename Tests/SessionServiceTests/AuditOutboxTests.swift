import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
@testable import SessionService
import Storage
import Synchronization
import TestSupport
import Testing

@Suite("Grant and revoke of classrooms access reach the classroom audit trail")
struct AuditOutboxTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws")])

    @Test("a change queues its activity in the same transaction; delivery retries while classroom-service is down", arguments: TestBackends.all)
    func delivery(backend: DatabaseBackend) async throws {
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            let c = harness.credentials
            let admin = basic(c.adminUser, c.adminAPIToken)
            let delivered = Mutex<[AuditRecord.Params]>([])
            let down = Mutex(true)
            let outbox = AuditOutbox.make(
                database: harness.database,
                classroom: ClassroomPeer(record: { params in
                    if down.withLock({ $0 }) { throw ServiceFailure(.unavailable, "classroom is down") }
                    delivered.withLock { $0.append(params) }
                }),
                leases: Leases(harness.database), now: harness.clock.source, logger: quietLogger)
            try await harness.application().test(.router) { client in
                let created = try await client.call(.post, "/users?login_name=jo&first_name=Jo", headers: admin)
                let id = try #require(created.json["id"] as? String)
                _ = try await client.call(.put, "/users/\(id)?classrooms_access=true", headers: admin)
                // The same value again is no change and no activity.
                _ = try await client.call(.put, "/users/\(id)?classrooms_access=true", headers: admin)
                _ = try await client.call(.put, "/users/\(id)?classrooms_access=false", headers: admin)
                #expect(try await outbox.pending() == 2)

                #expect(try await outbox.pass() == 0)
                #expect(try await outbox.pending() == 2)
                down.withLock { $0 = false }
                // Backing off: not before the retry time.
                #expect(try await outbox.pass() == 0)
                harness.clock.advance(seconds: 5)
                #expect(try await outbox.pass() == 2)
                #expect(try await outbox.pending() == 0)
                let activities = delivered.withLock { $0 }
                #expect(activities.map(\.activity) == ["GrantUserClassroomAccessHistory", "RevokeUserClassroomAccessHistory"])
                #expect(activities.first?.targetID == id)
                #expect(activities.first?.targetName == "jo")
                #expect(activities.first?.actorID == "1")
                #expect(Set(activities.map(\.id)).count == 2)
            }
        }
    }
}
