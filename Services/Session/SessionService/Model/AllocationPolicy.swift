import Contracts
import Foundation

/// Who a session request is for.
public enum RequestedUser: Sendable {
    /// An existing user.
    case existing(AuthenticatedUser)
    /// A user to create in the same transaction (a session request that names no known user).
    case new(IdentityRepository.NewUser)
}

/// A session request, as checked by the REST layer.
public struct AllocationRequest: Sendable {
    public var environment: CatalogEnvironment
    public var limits: SessionLimits
    public var user: RequestedUser
    /// `session=`: only reacquire this session, never create one.
    public var reacquire: String?
    /// REST requests get an activation token; the browser flow does not (the session runs at once).
    public var withToken: Bool
    /// Seconds to activate in; 0 means the workshop's duration.
    public var timeout: Int
    public var indexURL: String?
    public var analyticsURL: String?
    public var parameters: [RequestParameter]
}

/// Where an allocated session came from.
public enum AllocationSource: String, Sendable, Equatable {
    /// The user's live session in the environment, answered again.
    case reused
    /// A ready hot spare, claimed.
    case spare
    /// Made for this request.
    case onDemand = "on_demand"
}

public enum AllocationOutcome: Sendable, Equatable {
    /// The session, with its activation token when it has one.
    case allocated(SessionRecord, token: String?, via: AllocationSource)
    /// No capacity, a cap, or nothing to reacquire.
    case unavailable
    /// The user's session was made by the browser flow and has no token to hand out.
    case cannotReacquire

    /// Its name on /metrics (`outcome` of `labportal_session_requests_total`).
    public var metricName: String {
        switch self {
        case .allocated(_, _, let via): via.rawValue
        case .unavailable: "unavailable"
        case .cannotReacquire: "cannot_reacquire"
        }
    }
}

/// The rules of a session request (the order of the reference, §4.3), with no database and no clock: the repository
/// reads what a step needs, asks the policy, and writes what it decided.
///
/// 1. The user's live session in the environment is reused (its activation window starts again).
/// 2. Otherwise the per-user cap applies (admins have none).
/// 3. A ready spare is claimed.
/// 4. Otherwise a session is made on demand, within the environment's capacity and the portal maximum; when only
///    spares stand in the way of the maximum, the oldest spare is stopped to make room.
struct AllocationPolicy: Sendable {
    var environment: EnvironmentSettings
    var limits: SessionLimits
    var reacquire: String?
    var withToken: Bool
    var timeout: Int

    init(_ request: AllocationRequest) {
        environment = request.environment.settings
        limits = request.limits
        reacquire = request.reacquire
        withToken = request.withToken
        timeout = request.timeout
    }

    init(environment: EnvironmentSettings, limits: SessionLimits, reacquire: String? = nil, withToken: Bool, timeout: Int = 0) {
        self.environment = environment
        self.limits = limits
        self.reacquire = reacquire
        self.withToken = withToken
        self.timeout = timeout
    }

    // MARK: Steps 1 and 2: reuse and the per-user cap

    enum HeldDecision: Equatable {
        /// Answer this session of the user's again; when it still waits for activation, its window starts again.
        case reuse(SessionRecord, restartActivation: Bool)
        /// The user's session has no token to hand out (it was made by the browser flow).
        case cannotReacquire
        /// Nothing to reacquire, or the user is at their cap.
        case refuse
        /// Go on to claim a spare or make a session.
        case allocate
    }

    /// Steps 1 and 2 for a user and the live sessions they hold (in any environment, oldest first). A user made by
    /// this request holds none.
    func decide(user: AuthenticatedUser, held: [SessionRecord], environmentName: String) -> HeldDecision {
        if let existing = held.first(where: { $0.environment == environmentName && $0.state.isUsable }) {
            if let wanted = reacquire, wanted != existing.name { return .refuse }
            if withToken && existing.tokenNonce == nil { return .cannotReacquire }
            return .reuse(existing, restartActivation: withToken && existing.pending)
        }
        if reacquire != nil { return .refuse }
        if let cap = cap(for: user.role), held.count >= cap { return .refuse }
        return .allocate
    }

    /// How many sessions a user of `role` may hold at once; nil for no limit.
    func cap(for role: UserRole) -> Int? {
        guard role != .admin else { return nil }
        let cap = role == .anonymous ? (limits.anonymous != 0 ? limits.anonymous : limits.registered) : limits.registered
        return cap > 0 ? cap : nil
    }

    // MARK: Steps 3 and 4: what the session gets

    /// What a claimed or new session is set to.
    struct Grant: Equatable {
        var pending: Bool
        var startedAt: Date
        var expiresAt: Date?
        var deadlineAt: Date?
    }

    /// The timings of a session claimed or made now: one waiting for activation expires after the activation
    /// timeout (the workshop's duration when 0) and gets its deadline at activation; one of the browser flow runs at
    /// once with the workshop's duration and deadline.
    func grant(now: Date) -> Grant {
        if withToken {
            return Grant(pending: true, startedAt: now, expiresAt: pendingExpiry(now: now), deadlineAt: nil)
        }
        return Grant(
            pending: false, startedAt: now, expiresAt: Self.expiry(now: now, settings: environment),
            deadlineAt: Self.deadline(now: now, settings: environment))
    }

    /// The event that claims a ready spare for this request.
    var claimEvent: SessionEvent { withToken ? .claimedForActivation : .claimedToRun }

    /// The state of a session made on demand for this request.
    var onDemandState: SessionState { SessionState.initial(runsAtOnce: !withToken) }

    /// An unactivated allocation expires after `timeout` seconds, or after the workshop's duration when it is 0.
    func pendingExpiry(now: Date) -> Date? {
        if timeout > 0 { return now.addingTimeInterval(TimeInterval(timeout)) }
        return Self.expiry(now: now, settings: environment)
    }

    static func expiry(now: Date, settings: EnvironmentSettings) -> Date? {
        settings.expires.map { now.addingTimeInterval(TimeInterval($0)) }
    }

    /// Extensions never go beyond activation plus the environment's deadline (never less than its duration).
    static func deadline(now: Date, settings: EnvironmentSettings) -> Date? {
        guard let expires = settings.expires else { return nil }
        return now.addingTimeInterval(TimeInterval(max(settings.deadline ?? expires, expires)))
    }

    // MARK: Step 4: on demand

    enum OnDemandDecision: Equatable {
        case create
        /// The portal maximum is reached only because of spares: stop the oldest spare (if there is none, refuse),
        /// then create.
        case evictOldestSpareThenCreate
        case refuse
    }

    /// Step 4: the environment's capacity (`environmentLive`: its live sessions), then the portal maximum: owned
    /// sessions at the maximum refuse, live sessions at the maximum make room by evicting a spare. The portal counts
    /// are read (in this order) only when the step gets to them.
    func onDemand(
        environmentLive: Int, portalAllocated: () async throws -> Int, portalLive: () async throws -> Int
    ) async rethrows -> OnDemandDecision {
        if environmentLive >= environment.capacity { return .refuse }
        guard limits.maximum > 0 else { return .create }
        if try await portalAllocated() >= limits.maximum { return .refuse }
        if try await portalLive() >= limits.maximum { return .evictOldestSpareThenCreate }
        return .create
    }

    /// Request parameters merged over the workshop's defaults; names the workshop does not define are dropped.
    static func resolve(_ given: [RequestParameter], defaults: [RequestParameter]) -> [RequestParameter] {
        var values: [String: String] = [:]
        for parameter in given { values[parameter.name] = parameter.value }
        return defaults.map { RequestParameter(name: $0.name, value: values[$0.name] ?? $0.value) }
    }
}

/// How many hot spares an environment keeps (reference §4.2), with no database and no clock.
struct SparePolicy: Sendable, Equatable {
    var settings: EnvironmentSettings
    var maximum: Int

    /// What the environment's tally says: whether its first top-up happened, and whether it ever made a session.
    struct History: Equatable {
        var initialized: Bool
        var everUsed: Bool
    }

    /// The number of spares wanted: `initial` the first time; afterwards `reserved`, except that `initial = 0` means
    /// no spares until the first request.
    func target(_ history: History) -> Int {
        if !history.initialized { return settings.initial }
        if settings.initial == 0 && !history.everUsed { return 0 }
        return settings.reserved
    }

    /// How many spares to make now: up to the target, within capacity and the portal maximum (`portalLive` is
    /// asked for only when there is one).
    func toCreate(target: Int, spares: Int, environmentLive: Int, portalLive: () async throws -> Int) async rethrows -> Int {
        var want = min(target - spares, settings.capacity - environmentLive)
        if maximum > 0 && want > 0 {
            want = min(want, maximum - (try await portalLive()))
        }
        return max(want, 0)
    }

    /// How many spares to stop after a reload lowered the numbers: those above `max(initial, reserved)` (so the
    /// spares made at start for `initial` stay), and those that keep the environment above its capacity.
    func excess(spares: Int, environmentLive: Int) -> Int {
        min(spares, max(spares - max(settings.initial, settings.reserved), environmentLive - settings.capacity, 0))
    }
}

extension UserRole {
    /// Whether a front end may request sessions for a user of this role (`user=`): students, registered or
    /// anonymous; never staff or robots (the real portal's rule).
    var takesSessionRequests: Bool { self == .user || self == .anonymous }
}
