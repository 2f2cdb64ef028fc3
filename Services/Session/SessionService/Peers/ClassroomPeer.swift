import Contracts
import ServerKit
import Wire

/// What session-service asks classroom-service.
public struct ClassroomPeer: Sendable {
    public var record: @Sendable (AuditRecord.Params) async throws -> Void

    public init(record: @escaping @Sendable (AuditRecord.Params) async throws -> Void) { self.record = record }

    public static func live(_ client: WireClient) -> ClassroomPeer {
        ClassroomPeer(record: { params in
            _ = try await client.call(AuditRecord.self, params)
        })
    }

    /// For a deployment or a test without classroom-service: every delivery fails and stays queued.
    public static let unavailable = ClassroomPeer(record: { _ in
        throw ServiceFailure(.unavailable, "classroom-service is not configured")
    })
}
