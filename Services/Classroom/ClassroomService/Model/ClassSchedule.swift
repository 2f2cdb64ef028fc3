import Contracts
import Foundation

/// The class schedule: when each step is due, what the labs should be at a given time, and the class state.
///
/// Steps, in time order: provision (`start_at - provision_hours`), run (`start_at - run_hours`), begin (`start_at`),
/// end (`end_at`), shut down (`end_at + shutdown_hours`), clean up (`end_at + cleanup_hours`). Between the run and
/// the end of a class with `daily_startup_time`/`daily_shutdown_time`, the labs also stop at each daily shutdown
/// time and run again at each startup time (in the class's time zone).
public struct ClassSchedule: Sendable {
    public let record: ClassRecord

    public init(_ record: ClassRecord) { self.record = record }

    static let hour: TimeInterval = 3600

    /// When a step is due; nil for a step the class does not have.
    public func time(of step: ScheduleProgress) -> Date? {
        switch step {
        case .none: nil
        case .provisioned: record.startAt.addingTimeInterval(-Double(record.provisionHours) * Self.hour)
        case .run: record.startAt.addingTimeInterval(-Double(record.runHours) * Self.hour)
        case .begun: record.startAt
        case .ended: record.endAt
        case .shutDown: record.endAt.flatMap { end in record.shutdownHours.map { end.addingTimeInterval(Double($0) * Self.hour) } }
        case .cleanedUp: record.endAt.flatMap { end in record.cleanupHours.map { end.addingTimeInterval(Double($0) * Self.hour) } }
        }
    }

    /// The furthest step due at `now`.
    public func due(at now: Date) -> ScheduleProgress {
        var reached = ScheduleProgress.none
        for step in ScheduleProgress.allCases where step != .none {
            if let time = time(of: step), time <= now { reached = max(reached, step) }
        }
        return reached
    }

    // MARK: Daily run and shutdown

    var hasDailySchedule: Bool { record.dailyStartupTime != nil && record.dailyShutdownTime != nil }

    /// The daily boundaries (kind, time) in `(after, until]`, in order.
    func dailyBoundaries(after: Date, until: Date) -> [(LabTarget, Date)] {
        guard hasDailySchedule, let startup = Self.minutes(record.dailyStartupTime),
            let shutdown = Self.minutes(record.dailyShutdownTime), until > after
        else { return [] }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = record.zone
        var result: [(LabTarget, Date)] = []
        var day = calendar.startOfDay(for: after)
        // At most 400 days of boundaries (a class is at most a year long in practice).
        for _ in 0..<400 {
            for (kind, minutes) in [(LabTarget.running, startup), (.stopped, shutdown)] {
                guard let time = calendar.date(bySettingHour: minutes / 60, minute: minutes % 60, second: 0, of: day)
                else { continue }
                if time > after && time <= until { result.append((kind, time)) }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day), next <= until else { break }
            day = next
        }
        return result.sorted { $0.1 < $1.1 }
    }

    /// The daily schedule's word at `now`: the last boundary since the labs were run, if any.
    public func dailyTarget(at now: Date) -> LabTarget? {
        guard hasDailySchedule, let run = time(of: .run) else { return nil }
        let limit = min(now, record.endAt ?? now)
        return dailyBoundaries(after: run, until: limit).last?.0
    }

    /// The next daily boundary after `now`, while the class runs.
    func nextDailyBoundary(after now: Date) -> Date? {
        guard hasDailySchedule, let run = time(of: .run) else { return nil }
        let from = max(now, run)
        let until = record.endAt ?? from.addingTimeInterval(2 * 86_400)
        return dailyBoundaries(after: from, until: until).first?.1
    }

    static func minutes(_ text: String?) -> Int? {
        guard let text else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
            let minutes = Int(parts[1]), (0..<24).contains(hours), (0..<60).contains(minutes)
        else { return nil }
        return hours * 60 + minutes
    }

    // MARK: What the labs should be

    /// What the labs should be once `progress` is applied, at `now`.
    public func labTarget(progress: ScheduleProgress, at now: Date) -> LabTarget? {
        switch progress {
        case .none: nil
        case .provisioned: .provisioned
        case .run, .begun, .ended: dailyTarget(at: now) ?? .running
        case .shutDown: .stopped
        case .cleanedUp: .deleted
        }
    }

    /// When the scheduler must look at the class again after applying `progress` at `now`.
    public func nextDue(progress: ScheduleProgress, after now: Date) -> Date? {
        var candidates: [Date] = []
        for step in ScheduleProgress.allCases where step > progress {
            if let time = time(of: step) {
                candidates.append(time)
                break
            }
        }
        if progress >= .run && progress < .shutDown, let daily = nextDailyBoundary(after: now) {
            candidates.append(daily)
        }
        return candidates.min()
    }

    // MARK: State

    /// How the labs of a class stand, for its state.
    public struct LabTally: Sendable, Equatable {
        public var total: Int
        /// Labs whose environment meets its target.
        public var settled: Int
        public var deleted: Int

        public static let empty = LabTally(total: 0, settled: 0, deleted: 0)

        public init(total: Int, settled: Int, deleted: Int) {
            self.total = total
            self.settled = settled
            self.deleted = deleted
        }
    }

    /// The class state from its schedule, its labs and the time.
    public func state(labs: LabTally, at now: Date) -> ClassState {
        if record.deleting { return .pendingDeletion }
        if record.labCount == 0 && record.progress < .cleanedUp { return .incomplete }
        switch record.progress {
        case .none:
            if let provision = time(of: .provisioned), provision <= now { return .provisioning }
            return .scheduled
        case .provisioned:
            return labs.settled < labs.total ? .provisioning : .provisioned
        case .run, .begun:
            if record.labTarget == .stopped { return .shutdown }
            return record.progress == .run ? .started : .running
        case .ended:
            return record.labTarget == .stopped ? .shutdown : .expired
        case .shutDown:
            return .shutdown
        case .cleanedUp:
            return labs.deleted < labs.total ? .pendingCleanup : .expired
        }
    }
}
