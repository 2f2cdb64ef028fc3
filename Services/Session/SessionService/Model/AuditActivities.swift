import Contracts
import Foundation

/// The activities session-service adds to classroom-service's audit trail.
enum AuditActivities {
    /// A user's `classrooms_access` was granted or revoked.
    static func classroomsAccess(of user: AuthenticatedUser, to value: Bool, by actor: AuthenticatedUser, now: Date)
        -> AuditRecord.Params
    {
        let actorName = [actor.firstName, actor.lastName].filter { !$0.isEmpty }.joined(separator: " ")
        return AuditRecord.Params(
            id: UUID().uuidString,
            activity: value ? "GrantUserClassroomAccessHistory" : "RevokeUserClassroomAccessHistory",
            actorID: actor.id, actorName: actorName.isEmpty ? actor.username : actorName, targetType: "user",
            targetID: user.id, targetName: user.username, details: "classrooms_access \(value)", at: now)
    }
}
