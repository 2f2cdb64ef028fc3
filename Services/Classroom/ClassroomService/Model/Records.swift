import Contracts
import Foundation
import ServerKit

/// The access a course gives students to one VM of its template.
public enum VMAccessLevel: String, Sendable, Codable, CaseIterable {
    case doNotPublish = "do_not_publish"
    case viewOnly = "view_only"
    case use
    case runAndUse = "run_and_use"
}

public struct VMAccess: Sendable, Equatable, Codable {
    /// The VM id (the template's VM).
    public var vm: String
    public var access: VMAccessLevel
}

/// Who made a change, for `last_updated_by` and the audit trail.
public struct Actor: Sendable, Equatable, Codable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }

    public init(_ user: AuthenticatedUser) {
        id = user.id
        let full = [user.firstName, user.lastName].filter { !$0.isEmpty }.joined(separator: " ")
        name = full.isEmpty ? user.username : full
    }

    /// The class scheduler.
    public static let scheduler = Actor(id: "0", name: "Class scheduler")
}

public struct CourseRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var description: String
    public var templateID: String
    public var maxLabs: Int
    public var vmAccess: [VMAccess]
    public var anonymousSmartRDP: Bool
    public var ssoRequired: Bool
    public var supportURL: String?
    public var customContentEnabled: Bool
    public var customTitle: String?
    public var customContent: String?
    public var customContentIsDefault: Bool
    public var owner: Actor
    public var lastUpdatedBy: Actor
    public var createdAt: Date
    public var updatedAt: Date
    public var lastDeployed: Date?
    /// Computed when read.
    public var classCount: Int

    public init(
        id: Int64,
        name: String,
        description: String,
        templateID: String,
        maxLabs: Int,
        vmAccess: [VMAccess],
        anonymousSmartRDP: Bool,
        ssoRequired: Bool,
        supportURL: String?,
        customContentEnabled: Bool,
        customTitle: String?,
        customContent: String?,
        customContentIsDefault: Bool,
        owner: Actor,
        lastUpdatedBy: Actor,
        createdAt: Date,
        updatedAt: Date,
        lastDeployed: Date?,
        classCount: Int
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.templateID = templateID
        self.maxLabs = maxLabs
        self.vmAccess = vmAccess
        self.anonymousSmartRDP = anonymousSmartRDP
        self.ssoRequired = ssoRequired
        self.supportURL = supportURL
        self.customContentEnabled = customContentEnabled
        self.customTitle = customTitle
        self.customContent = customContent
        self.customContentIsDefault = customContentIsDefault
        self.owner = owner
        self.lastUpdatedBy = lastUpdatedBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastDeployed = lastDeployed
        self.classCount = classCount
    }
}

/// The class states of the seed. `provisioning_error`, `starting_error`, `shutdown_error` and `starting` are
/// deprecated: new classes never enter them (errors are on the labs and in `error_message`).
public enum ClassState: String, Sendable, Codable, CaseIterable {
    case scheduled
    case incomplete
    case provisioning
    case provisioned
    case started
    case running
    case shutdown
    case expired
    case pendingCleanup = "pending_cleanup"
    case pendingDeletion = "pending_deletion"
    case provisioningError = "provisioning_error"
    case startingError = "starting_error"
    case shutdownError = "shutdown_error"
    case starting
}

/// The lab states of the seed.
public enum LabState: String, Sendable, Codable, CaseIterable {
    case initialized
    case provisioning
    case provisioned
    case provisioningError = "provisioning_error"
    case starting
    case started
    case startingError = "starting_error"
    case shuttingDown = "shutting_down"
    case shutDown = "shut_down"
    case shutdownError = "shutdown_error"
    case deleting
    case deleted
    case deletionError = "deletion_error"

    /// The lab's state from its environment in session-service.
    public init(_ environment: LabEnvironment) {
        let failed = environment.error != nil
        switch environment.target {
        case .provisioned:
            self = environment.phase == .pending ? (failed ? .provisioningError : .provisioning) : .provisioned
        case .running:
            switch environment.phase {
            case .running: self = .started
            case .pending where !failed: self = .provisioning
            default: self = failed ? .startingError : .starting
            }
        case .stopped:
            switch environment.phase {
            case .stopped: self = .shutDown
            case .pending: self = failed ? .provisioningError : .provisioning
            default: self = failed ? .shutdownError : .shuttingDown
            }
        case .deleted:
            self = environment.phase == .deleted ? .deleted : (failed ? .deletionError : .deleting)
        }
    }

    /// A lab in one of these may not be deleted (and, for `provisioning`, not renamed).
    public var isBusy: Bool { self == .provisioning || self == .starting || self == .shuttingDown }

    public var isError: Bool {
        self == .provisioningError || self == .startingError || self == .shutdownError || self == .deletionError
    }
}

/// How far the class schedule has gone. Steps are in time order, so one number says which were applied.
public enum ScheduleProgress: Int, Sendable, Codable, Comparable, CaseIterable {
    case none = 0
    case provisioned = 1
    case run = 2
    case begun = 3
    case ended = 4
    case shutDown = 5
    case cleanedUp = 6

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

public struct ClassRecord: Sendable, Equatable {
    public var id: Int64
    public var courseID: Int64
    public var name: String
    public var description: String
    public var owner: Actor
    public var startAt: Date
    public var endAt: Date?
    public var timeZone: String
    public var provisionHours: Int
    public var runHours: Int
    public var cleanupHours: Int?
    public var shutdownHours: Int?
    /// `HH:MM`, in `timeZone`.
    public var dailyStartupTime: String?
    public var dailyShutdownTime: String?
    public var startTime: String?
    public var endTime: String?
    /// Minutes.
    public var runtimeLimit: Int?
    public var expirationDate: Date?
    public var passwordHash: String?
    public var accessCode: String
    public var state: ClassState
    public var errorMessage: String?
    /// What `errorMessage` is about, so that it is cleared when that problem goes away (nil: none).
    public var problem: ClassProblem?
    public var labCount: Int
    public var labsCreatedAt: Date?
    public var labsRunAt: Date?
    public var labsShutdownAt: Date?
    public var labsDeletedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    public var progress: ScheduleProgress
    /// What the labs were last told to be.
    public var labTarget: LabTarget?
    public var nextDueAt: Date?
    public var deleting: Bool
    public var region: String

    public var zone: TimeZone { SkytapTime.zone(named: timeZone) ?? SkytapTime.utc }
    public var deleteAtEnd: Bool { endAt != nil && cleanupHours != nil }

    public init(
        id: Int64,
        courseID: Int64,
        name: String,
        description: String,
        owner: Actor,
        startAt: Date,
        endAt: Date?,
        timeZone: String,
        provisionHours: Int,
        runHours: Int,
        cleanupHours: Int?,
        shutdownHours: Int?,
        dailyStartupTime: String?,
        dailyShutdownTime: String?,
        startTime: String?,
        endTime: String?,
        runtimeLimit: Int?,
        expirationDate: Date?,
        passwordHash: String?,
        accessCode: String,
        state: ClassState,
        errorMessage: String?,
        labCount: Int,
        labsCreatedAt: Date?,
        labsRunAt: Date?,
        labsShutdownAt: Date?,
        labsDeletedAt: Date?,
        createdAt: Date,
        updatedAt: Date,
        progress: ScheduleProgress,
        labTarget: LabTarget?,
        nextDueAt: Date?,
        deleting: Bool,
        region: String,
        problem: ClassProblem? = nil
    ) {
        self.problem = problem
        self.id = id
        self.courseID = courseID
        self.name = name
        self.description = description
        self.owner = owner
        self.startAt = startAt
        self.endAt = endAt
        self.timeZone = timeZone
        self.provisionHours = provisionHours
        self.runHours = runHours
        self.cleanupHours = cleanupHours
        self.shutdownHours = shutdownHours
        self.dailyStartupTime = dailyStartupTime
        self.dailyShutdownTime = dailyShutdownTime
        self.startTime = startTime
        self.endTime = endTime
        self.runtimeLimit = runtimeLimit
        self.expirationDate = expirationDate
        self.passwordHash = passwordHash
        self.accessCode = accessCode
        self.state = state
        self.errorMessage = errorMessage
        self.labCount = labCount
        self.labsCreatedAt = labsCreatedAt
        self.labsRunAt = labsRunAt
        self.labsShutdownAt = labsShutdownAt
        self.labsDeletedAt = labsDeletedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.progress = progress
        self.labTarget = labTarget
        self.nextDueAt = nextDueAt
        self.deleting = deleting
        self.region = region
    }
}

/// The columns of a lab that bulk reads need.
public struct LabListing: Sendable, Equatable {
    public var id: Int64
    public var classID: Int64
    public var name: String
    public var state: LabState
    public var configurationID: String?
    public var accessToken: String
}

/// A lab of an export page, its cells already JSON (see `ClassroomRepository.labJSONRows`).
public struct LabJSONRow: Sendable, Equatable {
    public var id: Int64
    public var classID: Int64
    /// `["<id>","<class_id>","<name>"]`
    public var head: String
    /// `[<configuration_id>,<desktops_url>,"<state>"]`
    public var tail: String
}

public struct LabRecord: Sendable, Equatable {
    public var id: Int64
    public var classID: Int64
    public var name: String
    public var state: LabState
    public var configurationID: String?
    public var environmentURL: String?
    public var errorMessage: String?
    /// What session-service should make of its environment; nil before the class is provisioned.
    public var target: LabTarget?
    /// Whether session-service has been told `target`.
    public var pushed: Bool
    /// Removed through the API; kept until its environment is deleted.
    public var removed: Bool
    /// The secret part of the student page's URL.
    public var accessToken: String
    /// When a student first opened the lab (for `runtime_limit`).
    public var firstAccessAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
}

public struct AuditEvent: Sendable, Equatable {
    public var id: Int64
    public var activity: String
    public var actor: Actor
    public var targetType: String
    public var targetID: String
    public var targetName: String
    public var details: String
    public var createdAt: Date
}

/// The Classrooms activities of the seed's auditing table.
public enum AuditActivity: String, Sendable, CaseIterable {
    case addTemplateToTrainingCourse = "AddTemplateToTrainingCourseHistory"
    case cleanUpTrainingClass = "CleanUpTrainingClassHistory"
    case createTrainingClass = "CreateTrainingClassHistory"
    case createTrainingCourse = "CreateTrainingCourseHistory"
    case createTrainingLab = "CreateTrainingLabHistory"
    case deleteTrainingClass = "DeleteTrainingClassHistory"
    case deleteTrainingCourse = "DeleteTrainingCourseHistory"
    case deleteTrainingLab = "DeleteTrainingLabHistory"
    case failedTrainingClassInstructorLogin = "FailedTrainingClassInstructorLoginHistory"
    case grantUserClassroomAccess = "GrantUserClassroomAccessHistory"
    case provisionTrainingClass = "ProvisionTrainingClassHistory"
    case removeTemplateFromTrainingCourse = "RemoveTemplateFromTrainingCourseHistory"
    case revokeUserClassroomAccess = "RevokeUserClassroomAccessHistory"
    case runTrainingClass = "RunTrainingClassHistory"
    case shutdownTrainingClass = "ShutdownTrainingClassHistory"
    case updateTrainingClass = "UpdateTrainingClassHistory"
    case updateTrainingCourse = "UpdateTrainingCourseHistory"
    case updateTrainingLab = "UpdateTrainingLabHistory"
}
