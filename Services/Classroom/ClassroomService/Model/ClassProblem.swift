import Contracts
import Foundation

/// What a class's `error_message` is about. Each problem is cleared by its own cure: the template back in the
/// catalog, the failing lab recovered, session-service reachable again.
public enum ClassProblem: String, Sendable, Codable, CaseIterable {
    /// The course's template is gone from the catalog: the class cannot be provisioned.
    case templateMissing = "template_missing"
    /// A lab is in an error state; the message names the lab and its error.
    case labFailed = "lab_failed"
    /// The labs' targets could not be sent to session-service.
    case sessionServiceUnreachable = "session_service_unreachable"

    var message: String? {
        switch self {
        case .templateMissing: "the course's template no longer exists; the class cannot be provisioned"
        case .sessionServiceUnreachable: "session-service could not be reached to change the labs"
        case .labFailed: nil
        }
    }
}

extension ClassRecord {
    /// Says what is wrong with the class.
    mutating func report(_ problem: ClassProblem, message: String) {
        self.problem = problem
        errorMessage = message
    }

    /// Clears the class's problem when it is one of `cured`.
    mutating func clear(_ cured: Set<ClassProblem>) {
        guard let problem, cured.contains(problem) else { return }
        self.problem = nil
        errorMessage = nil
    }

    /// The class's lab count, problem, completion times and state from its labs' tally (`firstLabError`: the first
    /// failing lab, as "lab <name>: <error>").
    mutating func settle(labs tally: ClassSchedule.LabTally, firstLabError: String?, now: Date) {
        labCount = tally.total
        if let error = firstLabError {
            report(.labFailed, message: error)
        } else {
            // The lab that failed has recovered, or session-service answers again.
            clear([.labFailed, .sessionServiceUnreachable])
        }
        if tally.total > 0 && tally.settled == tally.total {
            if progress >= .provisioned && labsCreatedAt == nil { labsCreatedAt = now }
            if progress == .cleanedUp && tally.deleted == tally.total && labsDeletedAt == nil { labsDeletedAt = now }
        }
        state = ClassSchedule(self).state(labs: tally, at: now)
    }
}

extension LabState {
    /// States in which a lab's environment meets its target.
    static let settled: [LabState] = [.provisioned, .started, .shutDown, .deleted]
    /// States that report a failure.
    static let errors: [LabState] = allCases.filter(\.isError)
}

extension ClassState {
    /// The deprecated error states a class of an older version may still be in.
    static let errors: [ClassState] = [.provisioningError, .startingError, .shutdownError]
}
