import Foundation

/// `audit.record`: an activity another service saw, for classroom-service's audit trail (session-service records
/// `GrantUserClassroomAccessHistory` and `RevokeUserClassroomAccessHistory` this way). Idempotent by `id`: a
/// retried delivery records it once.
public enum AuditRecord {
    public struct Params: Sendable, Equatable, Codable {
        /// Unique per activity, chosen by the sender.
        public var id: String
        public var activity: String
        public var actorID: String
        public var actorName: String
        public var targetType: String
        public var targetID: String
        public var targetName: String
        public var details: String
        public var at: Date

        public init(
            id: String, activity: String, actorID: String, actorName: String, targetType: String, targetID: String,
            targetName: String, details: String, at: Date
        ) {
            self.id = id
            self.activity = activity
            self.actorID = actorID
            self.actorName = actorName
            self.targetType = targetType
            self.targetID = targetID
            self.targetName = targetName
            self.details = details
            self.at = at
        }
    }
}
