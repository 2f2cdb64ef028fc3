import Contracts
import Foundation
import Logging
import ServerKit
import Storage

/// Audit activities for classroom-service's trail, kept in session-service's database in the same transaction as
/// the change they describe, and delivered (`audit.record`) by the holder of the `session-audit-outbox` lease until
/// classroom-service takes them. Nothing is lost while classroom-service is down, and the trail keeps its order: one
/// activity that cannot be delivered holds back the rest (2 s, doubling, at most 5 min between attempts).
enum AuditOutbox {
    static let policy = DeliveryPolicy(
        order: .strict, backoffBase: 2, backoffMaximumShift: 8, backoffCap: 300, maximumAttempts: nil,
        maximumPending: nil, batch: 200)

    static func make(
        database: Database, classroom: ClassroomPeer, leases: Leases, interval: Duration = .seconds(2),
        now: @escaping @Sendable () -> Date, logger: Logger
    ) -> Outbox {
        Outbox(
            store: OutboxStore(database: database, table: SessionTables.auditOutbox), policy: policy,
            noun: "audit activity", lease: "session-audit-outbox", leases: leases, interval: interval, now: now,
            logger: logger
        ) { entry in
            guard let params = try? JSONDecoder().decode(AuditRecord.Params.self, from: Data(entry.payload.utf8)) else {
                throw UndeliverableMessage("the stored activity is not an audit record")
            }
            try await classroom.record(params)
        }
    }
}
