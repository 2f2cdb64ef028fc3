import Contracts
import Foundation
@testable import SessionService
import Storage
import TestSupport
import Testing

/// The session-service model with no database and no clock: the state machine, the allocation policy and the spare
/// policy, table by table.
@Suite("Session model: the state machine and the allocation and spare policies")
struct SessionModelTests {
    // MARK: State machine

    struct Transition: Sendable, CustomTestStringConvertible {
        var from: SessionState
        var event: SessionEvent
        var to: SessionState?
        var testDescription: String { "\(from.rawValue) --\(event.rawValue)--> \(to?.rawValue ?? "(does not apply)")" }
    }

    /// Every (state, event) pair, with what it leads to (DESIGN §5).
    static let transitions: [Transition] = [
        .init(from: .starting, event: .labReady, to: .waiting),
        // A spare still starting is claimed when no ready one is left (issue 14: never 503 while an unowned live
        // spare exists); it stays STARTING for a token, and runs at once for the browser flow.
        .init(from: .starting, event: .claimedForActivation, to: .starting),
        .init(from: .starting, event: .claimedToRun, to: .running),
        .init(from: .starting, event: .activated, to: .running),
        .init(from: .starting, event: .stop, to: .stopping),
        .init(from: .starting, event: .tornDown, to: nil),
        .init(from: .waiting, event: .labReady, to: .waiting),
        .init(from: .waiting, event: .claimedForActivation, to: .waiting),
        .init(from: .waiting, event: .claimedToRun, to: .running),
        .init(from: .waiting, event: .activated, to: .running),
        .init(from: .waiting, event: .stop, to: .stopping),
        .init(from: .waiting, event: .tornDown, to: nil),
        .init(from: .running, event: .labReady, to: .running),
        .init(from: .running, event: .claimedForActivation, to: nil),
        .init(from: .running, event: .claimedToRun, to: nil),
        .init(from: .running, event: .activated, to: .running),
        .init(from: .running, event: .stop, to: .stopping),
        .init(from: .running, event: .tornDown, to: nil),
        .init(from: .stopping, event: .labReady, to: nil),
        .init(from: .stopping, event: .claimedForActivation, to: nil),
        .init(from: .stopping, event: .claimedToRun, to: nil),
        .init(from: .stopping, event: .activated, to: nil),
        .init(from: .stopping, event: .stop, to: nil),
        .init(from: .stopping, event: .tornDown, to: .stopped),
    ] + SessionEvent.allCases.map { .init(from: .stopped, event: $0, to: nil) }

    @Test("each state and event leads where the design says", arguments: transitions)
    func transition(_ row: Transition) {
        #expect(row.from.after(row.event) == row.to)
    }

    @Test("the table covers every state and event once")
    func tableIsComplete() {
        #expect(Self.transitions.count == SessionState.allCases.count * SessionEvent.allCases.count)
        for state in SessionState.allCases {
            for event in SessionEvent.allCases {
                #expect(Self.transitions.filter { $0.from == state && $0.event == event }.count == 1)
            }
        }
    }

    @Test("the state sets the SQL binds come from")
    func stateSets() {
        #expect(SessionState.live == [.starting, .waiting, .running, .stopping])
        #expect(SessionState.usable == [.starting, .waiting, .running])
        #expect(SessionState.spare == [.starting, .waiting])
        #expect(SessionState.sources(of: .tornDown) == [.stopping])
        #expect(SessionState.changes(of: .labReady).map(\.from) == [.starting])
        #expect(SessionState.initial(runsAtOnce: true) == .running)
        #expect(SessionState.initial(runsAtOnce: false) == .starting)
        #expect(!SessionState.stopped.isLive && SessionState.stopping.isLive && !SessionState.stopping.isUsable)
    }

    // MARK: Allocation policy

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func settings(capacity: Int = 5, expires: Int? = 1800, deadline: Int? = nil) -> EnvironmentSettings {
        EnvironmentSettings(
            workshop: "ws", capacity: capacity, reserved: 1, initial: 1, expires: expires, deadline: deadline,
            overtime: 0, orphaned: 0, labels: [:])
    }

    static func user(_ role: UserRole, id: String = "u1") -> AuthenticatedUser {
        AuthenticatedUser(
            id: id, username: id, email: "", firstName: "", lastName: "", role: role, classroomsAccess: false,
            userManager: false)
    }

    static func session(
        _ name: String, environment: String = "env", state: SessionState = .waiting, nonce: String? = "n",
        pending: Bool = true
    ) -> SessionRecord {
        SessionRecord(
            name: name, environment: environment, workshop: "ws", state: state, ownerID: "u1", ownerName: "u1",
            tokenNonce: nonce, tokenDigest: nil, pending: pending, indexURL: nil, analyticsURL: nil, parameters: [],
            provision: .ready, attempts: 0, nextAttemptAt: nil, errorMessage: nil, url: nil, handle: nil,
            createdAt: now, startedAt: now, expiresAt: nil, deadlineAt: nil, stoppedAt: nil)
    }

    struct HeldCase: Sendable, CustomTestStringConvertible {
        var name: String
        var role: UserRole = .user
        var held: [SessionRecord]
        var reacquire: String? = nil
        var withToken = true
        var limits = SessionLimits(maximum: 0, registered: 1, anonymous: 0)
        var expected: AllocationPolicy.HeldDecision
        var testDescription: String { name }
    }

    static let heldCases: [HeldCase] = [
        .init(name: "no session: allocate", held: [], expected: .allocate),
        .init(
            name: "a pending session in the environment is reused, its activation window restarted",
            held: [session("env-s001")], expected: .reuse(session("env-s001"), restartActivation: true)),
        .init(
            name: "an activated session is reused as it is",
            held: [session("env-s001", state: .running, pending: false)],
            expected: .reuse(session("env-s001", state: .running, pending: false), restartActivation: false)),
        .init(
            name: "a browser-flow session has no token to hand out",
            held: [session("env-s001", state: .running, nonce: nil, pending: false)], expected: .cannotReacquire),
        .init(
            name: "the browser flow reuses a tokenless session",
            held: [session("env-s001", state: .running, nonce: nil, pending: false)], withToken: false,
            expected: .reuse(session("env-s001", state: .running, nonce: nil, pending: false), restartActivation: false)),
        .init(
            name: "a stopping session is not reused; it still counts against the cap",
            held: [session("env-s001", state: .stopping)], expected: .refuse),
        .init(
            name: "reacquiring another session than the user's refuses",
            held: [session("env-s001")], reacquire: "env-s002", expected: .refuse),
        .init(name: "reacquiring with nothing held refuses", held: [], reacquire: "env-s001", expected: .refuse),
        .init(
            name: "a session in another environment counts against the registered cap",
            held: [session("other-s001", environment: "other")], expected: .refuse),
        .init(
            name: "admins have no cap", role: .admin, held: [session("other-s001", environment: "other")],
            expected: .allocate),
        .init(
            name: "anonymous users fall back to the registered cap when theirs is 0", role: .anonymous,
            held: [session("other-s001", environment: "other")], expected: .refuse),
        .init(
            name: "anonymous users have their own cap", role: .anonymous,
            held: [session("other-s001", environment: "other")],
            limits: SessionLimits(maximum: 0, registered: 1, anonymous: 2), expected: .allocate),
        .init(
            name: "a cap of 0 is no cap", held: [session("other-s001", environment: "other")],
            limits: SessionLimits(maximum: 0, registered: 0, anonymous: 0), expected: .allocate),
    ]

    @Test("steps 1 and 2: reuse, reacquire and the per-user caps", arguments: heldCases)
    func held(_ row: HeldCase) {
        let policy = AllocationPolicy(
            environment: Self.settings(), limits: row.limits, reacquire: row.reacquire, withToken: row.withToken)
        #expect(policy.decide(user: Self.user(row.role), held: row.held, environmentName: "env") == row.expected)
    }

    struct OnDemandCase: Sendable, CustomTestStringConvertible {
        var name: String
        var capacity = 3
        var live: Int
        var maximum = 0
        var portalAllocated = 0
        var portalLive = 0
        var expected: AllocationPolicy.OnDemandDecision
        /// Which portal counts the step reads, in order.
        var reads: [String]
        var testDescription: String { name }
    }

    static let onDemandCases: [OnDemandCase] = [
        .init(name: "below capacity, no maximum: create", live: 2, expected: .create, reads: []),
        .init(name: "at capacity: refuse, nothing else read", live: 3, maximum: 10, expected: .refuse, reads: []),
        .init(
            name: "owned sessions at the maximum: refuse", live: 0, maximum: 4, portalAllocated: 4, portalLive: 4,
            expected: .refuse, reads: ["allocated"]),
        .init(
            name: "live sessions at the maximum because of spares: evict one", live: 0, maximum: 4, portalAllocated: 3,
            portalLive: 4, expected: .evictOldestSpareThenCreate, reads: ["allocated", "live"]),
        .init(
            name: "below the maximum: create", live: 0, maximum: 4, portalAllocated: 1, portalLive: 3,
            expected: .create, reads: ["allocated", "live"]),
    ]

    @Test("step 4: capacity, then the portal maximum, reading counts only when needed", arguments: onDemandCases)
    func onDemand(_ row: OnDemandCase) async {
        let policy = AllocationPolicy(
            environment: Self.settings(capacity: row.capacity),
            limits: SessionLimits(maximum: row.maximum, registered: 1, anonymous: 0), withToken: true)
        var reads: [String] = []
        let decision = await policy.onDemand(
            environmentLive: row.live,
            portalAllocated: { reads.append("allocated"); return row.portalAllocated },
            portalLive: { reads.append("live"); return row.portalLive })
        #expect(decision == row.expected)
        #expect(reads == row.reads)
    }

    @Test("what a claimed or new session gets: a token's activation window, or the browser flow's lifetime")
    func grants() {
        let now = Self.now
        let token = AllocationPolicy(
            environment: Self.settings(expires: 1800, deadline: 3600), limits: .init(maximum: 0, registered: 1, anonymous: 0),
            withToken: true, timeout: 60)
        #expect(token.grant(now: now) == .init(pending: true, startedAt: now, expiresAt: now + 60, deadlineAt: nil))
        #expect(token.claimEvent == .claimedForActivation && token.onDemandState == .starting)
        let untimed = AllocationPolicy(
            environment: Self.settings(expires: 1800), limits: .init(maximum: 0, registered: 1, anonymous: 0),
            withToken: true, timeout: 0)
        #expect(untimed.grant(now: now).expiresAt == now + 1800, "timeout 0: the workshop's duration")
        let browser = AllocationPolicy(
            environment: Self.settings(expires: 1800, deadline: 1200), limits: .init(maximum: 0, registered: 1, anonymous: 0),
            withToken: false)
        #expect(
            browser.grant(now: now) == .init(pending: false, startedAt: now, expiresAt: now + 1800, deadlineAt: now + 1800),
            "the deadline is never before the duration")
        #expect(browser.claimEvent == .claimedToRun && browser.onDemandState == .running)
        let endless = AllocationPolicy(
            environment: Self.settings(expires: nil), limits: .init(maximum: 0, registered: 1, anonymous: 0),
            withToken: false)
        #expect(endless.grant(now: now) == .init(pending: false, startedAt: now, expiresAt: nil, deadlineAt: nil))
    }

    @Test("request parameters are merged over the workshop's; unknown names are dropped")
    func parameters() {
        let merged = AllocationPolicy.resolve(
            [.init(name: "a", value: "1"), .init(name: "zz", value: "x")],
            defaults: [.init(name: "a", value: "0"), .init(name: "b", value: "2")])
        #expect(merged == [.init(name: "a", value: "1"), .init(name: "b", value: "2")])
    }

    @Test("activation: from starting or waiting the lifetime starts now; running is unchanged; stopping refused")
    func activation() {
        let settings = Self.settings(expires: 600, deadline: 1200)
        let later = Self.now + 100
        guard case .activate(let activated) = Self.session("s", state: .waiting).activation(settings: settings, now: later)
        else {
            Issue.record("a waiting session activates")
            return
        }
        #expect(activated.state == .running && !activated.pending)
        #expect(activated.expiresAt == later + 600 && activated.deadlineAt == later + 1200 && activated.startedAt == later)
        if case .activate = Self.session("s", state: .starting).activation(settings: settings, now: later) {} else {
            Issue.record("a starting session activates (the page waits for its lab)")
        }
        #expect(
            Self.session("s", state: .running, pending: false).activation(settings: settings, now: later)
                == .alreadyRunning)
        if case .activate = Self.session("s", state: .running, pending: true).activation(settings: settings, now: later) {
        } else {
            Issue.record("a running session still pending activation activates")
        }
        #expect(Self.session("s", state: .stopping).activation(settings: settings, now: later) == .refused)
        #expect(Self.session("s", state: .stopped).activation(settings: settings, now: later) == .refused)
    }

    @Test("extension: one step near the end, never past the deadline; not when not extendable")
    func extension_() {
        let settings = Self.settings(expires: 1800, deadline: 2400)
        var session = Self.session("s", state: .running, pending: false)
        session.expiresAt = Self.now + 100
        session.deadlineAt = Self.now + 400
        let extended = session.extended(settings: settings, now: Self.now)
        #expect(extended?.expiresAt == Self.now + 400, "capped at the deadline")
        session.expiresAt = Self.now + 1700
        session.deadlineAt = Self.now + 5000
        #expect(session.extended(settings: settings, now: Self.now) == nil, "far from the end: not extendable")
        session.pending = true
        session.expiresAt = Self.now + 100
        #expect(session.extended(settings: settings, now: Self.now) == nil, "not activated: not extendable")
    }

    // MARK: Spare policy

    struct SpareCase: Sendable, CustomTestStringConvertible {
        var name: String
        var initial: Int
        var reserved: Int
        var capacity = 10
        var maximum = 0
        var history: SparePolicy.History
        var spares: Int
        var live: Int
        var portalLive = 0
        var target: Int
        var create: Int
        var testDescription: String { name }
    }

    static let spareCases: [SpareCase] = [
        .init(
            name: "first top-up makes initial", initial: 3, reserved: 1, history: .init(initialized: false, everUsed: false),
            spares: 0, live: 0, target: 3, create: 3),
        .init(
            name: "afterwards reserved", initial: 3, reserved: 1, history: .init(initialized: true, everUsed: true),
            spares: 0, live: 2, target: 1, create: 1),
        .init(
            name: "initial 0: no spares until the first request", initial: 0, reserved: 2,
            history: .init(initialized: true, everUsed: false), spares: 0, live: 0, target: 0, create: 0),
        .init(
            name: "initial 0 after a request: reserved", initial: 0, reserved: 2,
            history: .init(initialized: true, everUsed: true), spares: 0, live: 1, target: 2, create: 2),
        .init(
            name: "within capacity", initial: 1, reserved: 5, capacity: 4, history: .init(initialized: true, everUsed: true),
            spares: 1, live: 3, target: 5, create: 1),
        .init(
            name: "within the portal maximum", initial: 1, reserved: 5, maximum: 6,
            history: .init(initialized: true, everUsed: true), spares: 0, live: 0, portalLive: 4, target: 5, create: 2),
        .init(
            name: "enough spares: none", initial: 1, reserved: 2, history: .init(initialized: true, everUsed: true),
            spares: 3, live: 3, target: 2, create: 0),
    ]

    @Test("spares: the target and how many to make", arguments: spareCases)
    func spares(_ row: SpareCase) async {
        var settings = Self.settings(capacity: row.capacity)
        settings.initial = row.initial
        settings.reserved = row.reserved
        let policy = SparePolicy(settings: settings, maximum: row.maximum)
        let target = policy.target(row.history)
        #expect(target == row.target)
        let create = await policy.toCreate(
            target: target, spares: row.spares, environmentLive: row.live, portalLive: { row.portalLive })
        #expect(create == row.create)
    }

    @Test("spares to stop after a reload: above max(initial, reserved), or above capacity", arguments: [
        // (initial, reserved, capacity, spares, live, excess)
        (1, 1, 10, 3, 3, 2), (3, 1, 10, 3, 3, 0), (1, 1, 2, 1, 4, 1), (0, 0, 10, 2, 2, 2), (1, 2, 10, 1, 1, 0),
    ])
    func trimming(_ row: (Int, Int, Int, Int, Int, Int)) {
        var settings = Self.settings(capacity: row.2)
        settings.initial = row.0
        settings.reserved = row.1
        #expect(SparePolicy(settings: settings, maximum: 0).excess(spares: row.3, environmentLive: row.4) == row.5)
    }
}

@Suite("Stored values this version does not know are errors, never defaults")
struct UnknownStoredValueTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", reserved: 1, initial: 1)])

    @Test("a session whose state or lab target is unknown fails to read instead of reading as STOPPED or deleted",
          arguments: TestBackends.all)
    func unknownState(backend: DatabaseBackend) async throws {
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            try await harness.dependencies.runtime.pass()
            let spare = try #require(try await harness.dependencies.sessions.sessions(in: [.starting, .waiting]).first)
            try await harness.database.sql.update("sessions").set("state", to: "PAUSED")
                .where("name", .equal, spare.name).run()
            await #expect(throws: StorageError.self) { try await harness.dependencies.sessions.session(named: spare.name) }
            do {
                _ = try await harness.dependencies.sessions.session(named: spare.name)
            } catch {
                #expect("\(error)".contains("state holds \"PAUSED\""), "the error names the column and value: \(error)")
            }

            _ = try await harness.dependencies.labs.apply(
                LabsApply.Params(lab: "7", workshop: "ws", target: .running), now: harness.clock.now)
            try await harness.database.sql.update("lab_environments").set("target", to: "hibernated").run()
            await #expect(throws: StorageError.self) { try await harness.dependencies.labs.status(labs: ["7"]) }
        }
    }
}
