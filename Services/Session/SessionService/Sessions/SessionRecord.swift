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
    public var isLive: Bool { state != .stopped }
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
