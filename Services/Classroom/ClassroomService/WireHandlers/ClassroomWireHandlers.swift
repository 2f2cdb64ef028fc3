import Contracts
import Foundation
import ServerKit
import Wire

/// classroom-service's wire methods: the bulk reads of report-service (`ClassroomPagesWire`) and `audit.record`.
extension ClassroomApplication {
    public static func wireRouter(_ dependencies: ClassroomDependencies) -> WireRouter {
        var router = WireRouter()
        ClassroomPagesWire.register(on: &router, dependencies: dependencies)
        router.register(AuditRecord.self) { params, _ in
            try await recordAudit(params, dependencies)
            return Empty()
        }
        return router
    }

    /// `audit.record`: only the activities other services see (the grant and revoke of classrooms access).
    static func recordAudit(_ params: AuditRecord.Params, _ dependencies: ClassroomDependencies) async throws {
        let accepted: Set<AuditActivity> = [.grantUserClassroomAccess, .revokeUserClassroomAccess]
        guard let activity = AuditActivity(rawValue: params.activity), accepted.contains(activity) else {
            throw ServiceFailure(
                .badRequest, "activity must be one of \(accepted.map(\.rawValue).sorted().joined(separator: ", "))",
                field: "activity")
        }
        guard !params.id.isEmpty, params.id.count <= 64 else {
            throw ServiceFailure(.badRequest, "id must be 1 to 64 characters", field: "id")
        }
        try await dependencies.repository.record(params)
    }
}
