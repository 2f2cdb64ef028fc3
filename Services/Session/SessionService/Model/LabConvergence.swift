import Contracts

/// How a classroom lab's environment moves towards the target classroom-service set: one provisioner step at a time,
/// decided from (target, phase) alone.
enum LabStep: Equatable, Sendable {
    /// Never made: nothing to tear down, it is deleted at once.
    case forget
    /// Tear the environment down.
    case delete
    /// Make it, and start it when `start`.
    case create(start: Bool)
    case start
    case stop
    /// The phase meets the target.
    case none

    /// The phase the environment is in once the step succeeded.
    var reaches: LabPhase? {
        switch self {
        case .forget, .delete: .deleted
        case .create(let start): start ? .running : .stopped
        case .start: .running
        case .stop: .stopped
        case .none: nil
        }
    }
}

extension LabTarget {
    /// The phases in which this target is met.
    var settledPhases: [LabPhase] {
        switch self {
        case .provisioned: [.stopped, .running]
        case .running: [.running]
        case .stopped: [.stopped]
        case .deleted: [.deleted]
        }
    }
}

extension LabEnvironment {
    /// Whether the phase meets the target.
    var isSettled: Bool { target.settledPhases.contains(phase) }

    /// The next step towards the target.
    var nextStep: LabStep {
        switch (target, phase) {
        case (.deleted, .pending): .forget
        case (.deleted, .deleted): .none
        case (.deleted, _): .delete
        case (_, .pending): .create(start: target == .running)
        case (.running, .stopped): .start
        case (.stopped, .running): .stop
        default: .none
        }
    }
}
