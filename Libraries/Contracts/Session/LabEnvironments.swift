import Foundation

/// What classroom-service wants of a lab's environment. The lab runtime converges the environment towards it.
public enum LabTarget: String, Sendable, Codable, CaseIterable {
    /// Made (and left stopped if it was never run).
    case provisioned
    /// Made and running.
    case running
    /// Made and stopped.
    case stopped
    /// Torn down.
    case deleted
}

/// Where a lab's environment is.
public enum LabPhase: String, Sendable, Codable, CaseIterable {
    /// Not made yet.
    case pending
    /// Made, not running.
    case stopped
    /// Running.
    case running
    /// Torn down.
    case deleted
}

/// The environment (a session of session-service) of one lab of a class. Its owner is the lab.
public struct LabEnvironment: Sendable, Equatable, Codable {
    /// The session name: the lab's `configuration_id`.
    public var name: String
    public var lab: String
    public var workshop: String
    public var target: LabTarget
    public var phase: LabPhase
    /// The last failure while converging, cleared by the next success. Failures are retried.
    public var error: String?
    /// Where the running lab is.
    public var url: String?
    public var updatedAt: Date

    public init(
        name: String, lab: String, workshop: String, target: LabTarget, phase: LabPhase, error: String?, url: String?,
        updatedAt: Date
    ) {
        self.name = name
        self.lab = lab
        self.workshop = workshop
        self.target = target
        self.phase = phase
        self.error = error
        self.url = url
        self.updatedAt = updatedAt
    }

    /// Whether the environment is where it was asked to be (a `provisioned` target is met by a running one too).
    public var settled: Bool {
        switch target {
        case .provisioned: phase == .stopped || phase == .running
        case .running: phase == .running
        case .stopped: phase == .stopped
        case .deleted: phase == .deleted
        }
    }
}

/// `labs.apply`: sets what a lab's environment should be, making it (on the workshop) when the lab has none. Idempotent:
/// applying the same target again changes nothing. Answers the environment as it is now; the runtime converges it
/// in the background.
public enum LabsApply {
    public struct Params: Sendable, Equatable, Codable {
        public var lab: String
        public var workshop: String
        public var target: LabTarget
        /// Shown as the session's owner (the lab's name).
        public var owner: String?

        public init(lab: String, workshop: String, target: LabTarget, owner: String? = nil) {
            self.lab = lab
            self.workshop = workshop
            self.target = target
            self.owner = owner
        }
    }

    public struct Result: Sendable, Equatable, Codable {
        /// Nil when the target is `deleted` and the lab never had an environment.
        public var environment: LabEnvironment?

        public init(environment: LabEnvironment?) { self.environment = environment }
    }
}

/// `labs.status`: the current environment of each lab asked about (a lab that never had one is left out). At most
/// `maximumLabs` labs per call.
public enum LabsStatus {
    public static let maximumLabs = 1000

    public struct Params: Sendable, Equatable, Codable {
        public var labs: [String]

        public init(labs: [String]) { self.labs = labs }
    }

    public struct Result: Sendable, Equatable, Codable {
        public var environments: [LabEnvironment]

        public init(environments: [LabEnvironment]) { self.environments = environments }
    }
}
