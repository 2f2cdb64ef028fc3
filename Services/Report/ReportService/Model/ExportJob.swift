import Foundation
import Storage

/// Where an export job is.
public enum ExportState: String, Sendable, Codable {
    case queued
    case running
    case ready
    case failed
}

/// An export job: a durable row. Any replica may claim it; the claim is a lease that the runner renews while it
/// works, so a job whose runner died is claimed again (and runs again) once the lease lapses.
public struct ExportRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: ExportKind
    public var ownerID: String
    public var ownerEmail: String
    public var filters: ExportFilters
    public var notifyByEmail: Bool
    public var state: ExportState
    public var rows: Int
    public var bytes: Int
    public var error: String?
    public var attempts: Int
    public var holder: String?
    public var leaseUntil: Date?
    public var createdAt: Date
    public var readyAt: Date?
    public var expiresAt: Date?
    public var emailedAt: Date?

    public var finished: Bool { state == .ready || state == .failed }
}

/// What happens to an export job.
public enum ExportEvent: String, Sendable, CaseIterable {
    /// A runner took it (a queued job, or a running one whose runner's lease lapsed).
    case claimed
    /// Its file is complete.
    case finished
    /// It failed for good.
    case failed
    /// Its runner gave it back (a shutdown, or a retry later).
    case released
}

extension ExportState {
    /// The export job's state machine: for each state, the events that apply and where they lead.
    static let transitions: [ExportState: [ExportEvent: ExportState]] = [
        .queued: [.claimed: .running, .failed: .failed],
        .running: [.claimed: .running, .finished: .ready, .failed: .failed, .released: .queued],
        .ready: [:],
        .failed: [:],
    ]

    /// The state after `event`; a state the event does not apply in stays as it is (the write that carries it is
    /// guarded in SQL).
    func after(_ event: ExportEvent) -> ExportState { Self.transitions[self]?[event] ?? self }

    func accepts(_ event: ExportEvent) -> Bool { Self.transitions[self]?[event] != nil }

    /// Jobs that count against a user's unfinished limit.
    static let unfinished: [ExportState] = [.queued, .running]
}

extension ExportRecord {
    /// The job as a runner takes it: running, under the runner's lease, from its first row again.
    func claimed(by holder: String, leaseUntil: Date) throws -> ExportRecord {
        guard state.accepts(.claimed) else {
            throw StorageError.misuse("export \(id) cannot be claimed while \(state.rawValue)")
        }
        var record = self
        record.state = state.after(.claimed)
        record.holder = holder
        record.leaseUntil = leaseUntil
        record.attempts += 1
        record.rows = 0
        record.bytes = 0
        return record
    }
}
