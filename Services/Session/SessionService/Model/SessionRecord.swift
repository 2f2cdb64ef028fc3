import Contracts
import Foundation

/// How far a session's lab environment has been provisioned.
public enum ProvisionState: String, Sendable, Codable {
    /// Not yet made (or to be made again after a failure or a restart).
    case pending
    /// Made; `url` points at it.
    case ready
    /// The last attempt failed; `errorMessage` says why, and it is retried at `nextAttemptAt`.
    case failed
    /// Torn down.
    case released

    /// The states in which a lab is (re)made when its attempt is due.
    static let due: [ProvisionState] = [.pending, .failed]
}

/// A workshop session: one lab environment.
public struct SessionRecord: Sendable, Equatable {
    public var name: String
    public var environment: String
    public var workshop: String
    public var state: SessionState
    public var ownerID: String?
    public var ownerName: String?
    /// The allocation's nonce, from which its activation token is derived; nil for spares and web allocations.
    public var tokenNonce: String?
    public var tokenDigest: String?
    /// Allocated through a token and not activated yet.
    public var pending: Bool
    public var indexURL: String?
    public var analyticsURL: String?
    public var parameters: [RequestParameter]
    public var provision: ProvisionState
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var errorMessage: String?
    public var url: String?
    /// The provisioner's own reference (the local provisioner's pid and port, as JSON).
    public var handle: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var expiresAt: Date?
    /// Extensions never go beyond this (activation + the environment's deadline).
    public var deadlineAt: Date?
    public var stoppedAt: Date?

    public var isAllocated: Bool { ownerID != nil }
    public var isLive: Bool { state.isLive }

    /// What following the activation URL does to this session.
    enum Activation: Equatable {
        /// Stopping or stopped: the activation does not apply.
        case refused
        /// Already running and activated: nothing changes.
        case alreadyRunning
        /// The session runs from now: its lifetime and deadline start now.
        case activate(SessionRecord)
    }

    func activation(settings: EnvironmentSettings?, now: Date) -> Activation {
        guard let next = state.after(.activated) else { return .refused }
        if state == next && !pending { return .alreadyRunning }
        var session = self
        session.state = next
        session.pending = false
        session.startedAt = now
        session.expiresAt = settings.flatMap { AllocationPolicy.expiry(now: now, settings: $0) }
        session.deadlineAt = settings.flatMap { AllocationPolicy.deadline(now: now, settings: $0) }
        return .activate(session)
    }

    /// The session extended by one step, when it is extendable now (never beyond its deadline); nil when it is not.
    func extended(settings: EnvironmentSettings?, now: Date) -> SessionRecord? {
        let timing = SessionTiming(session: self, settings: settings, now: now)
        guard timing.extendable, let expires = expiresAt, let deadline = deadlineAt else { return nil }
        var session = self
        session.expiresAt = min(expires.addingTimeInterval(TimeInterval(timing.step)), deadline)
        return session
    }
}

/// Expiry, countdown and extension, as Educates computes them (reference §4.5).
public struct SessionTiming: Sendable, Equatable {
    public var countdown: Int?
    public var expiring: Bool
    public var extendable: Bool
    /// Seconds one extension adds.
    public var step: Int

    public init(session: SessionRecord, settings: EnvironmentSettings?, now: Date) {
        let duration = settings?.expires ?? 0
        let threshold = max(300, min(duration, 14_400) / 4)
        let overtime = settings?.overtime ?? 0
        step = overtime > 0 ? max(300, overtime) : threshold
        if let expires = session.expiresAt {
            let remaining = max(0, Int(expires.timeIntervalSince(now).rounded(.down)))
            countdown = remaining
            expiring = remaining < threshold
            if session.state == .running, !session.pending, let deadline = session.deadlineAt {
                extendable = expires < deadline && remaining < step
            } else {
                extendable = false
            }
        } else {
            countdown = nil
            expiring = false
            extendable = false
        }
    }
}

extension SessionRecord {
    func summary(settings: EnvironmentSettings?, now: Date) -> SessionSummary {
        let timing = SessionTiming(session: self, settings: settings, now: now)
        return SessionSummary(
            name: name, state: state, namespace: name, user: ownerName ?? "", started: startedAt, expires: expiresAt,
            countdown: timing.countdown, extendable: expiresAt == nil ? nil : timing.extendable)
    }
}
