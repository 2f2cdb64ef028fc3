import Contracts
import Foundation

/// What one pass of the scheduler decides for one class: the record to save, the audit activities, and whether the
/// labs are retargeted or the course was deployed. The repository reads the class, calls `advance`, and writes this.
public struct ScheduleAdvance: Sendable, Equatable {
    public var record: ClassRecord
    public var from: ScheduleProgress
    /// Activities for the audit trail, in step order (each by the scheduler, on the class).
    public var audits: [AuditActivity]
    /// The labs' new target, when it moved.
    public var retarget: LabTarget?
    /// The class was provisioned now: its course's `last_deployed` is now.
    public var deployed: Bool
    /// Why the class was held back (its template is gone); nil when it was not.
    public var blocked: String?
    /// Whether the pass changed the class (a step applied, or the labs' target moved).
    public var changed: Bool
}

extension ClassSchedule {
    /// Applies every step and daily boundary that is due at `now`. Each step is applied once (the progress marker
    /// only grows). A class whose template is missing is not provisioned: it says why and is looked at again in a
    /// minute.
    public func advance(at now: Date, templateExists: Bool) -> ScheduleAdvance {
        var record = record
        let due = due(at: now)
        let from = record.progress
        var result = ScheduleAdvance(
            record: record, from: from, audits: [], retarget: nil, deployed: false, blocked: nil, changed: false)
        if due > from && from == .none && !templateExists {
            let message = ClassProblem.templateMissing.message ?? ""
            record.report(.templateMissing, message: message)
            record.nextDueAt = now.addingTimeInterval(60)
            result.record = record
            result.blocked = message
            return result
        }
        record.clear([.templateMissing])
        let target = labTarget(progress: max(due, from), at: now)
        for step in ScheduleProgress.allCases where step > from && step <= due {
            switch step {
            case .provisioned:
                result.audits.append(.provisionTrainingClass)
                result.deployed = true
            case .run:
                record.labsRunAt = now
                result.audits.append(.runTrainingClass)
            case .shutDown:
                record.labsShutdownAt = now
                result.audits.append(.shutdownTrainingClass)
            case .cleanedUp:
                result.audits.append(.cleanUpTrainingClass)
            case .none, .begun, .ended:
                break
            }
        }
        if due > from {
            record.progress = due
            result.changed = true
        }
        if let target, target != record.labTarget {
            result.changed = true
            record.labTarget = target
            result.retarget = target
        }
        record.nextDueAt = nextDue(progress: record.progress, after: now)
        record.updatedAt = now
        result.record = record
        return result
    }
}
