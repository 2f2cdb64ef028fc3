import Contracts

/// What happens to a workshop session (DESIGN §5). Each event moves a session from some states to another; the
/// transition table below is the only place that says which.
enum SessionEvent: String, Sendable, CaseIterable {
    /// The provisioner made the session's lab.
    case labReady
    /// A front end's request claimed a spare (ready, or still starting when none is ready): it waits for
    /// activation with a token.
    case claimedForActivation
    /// The browser flow claimed a spare: it runs at once (no token; the page waits for its lab).
    case claimedToRun
    /// The activation URL was followed (or the browser flow started it).
    case activated
    /// Terminated, expired, orphaned, evicted or trimmed: the lab is to be torn down.
    case stop
    /// The lab is torn down.
    case tornDown
}

extension SessionState {
    /// The session state machine: for each state, the events that apply to it and the state each leads to. An event
    /// that is not listed for a state does not apply (the write that carries it changes nothing).
    static let transitions: [SessionState: [SessionEvent: SessionState]] = [
        .starting: [
            .labReady: .waiting, .claimedForActivation: .starting, .claimedToRun: .running, .activated: .running,
            .stop: .stopping,
        ],
        .waiting: [
            .labReady: .waiting, .claimedForActivation: .waiting, .claimedToRun: .running, .activated: .running,
            .stop: .stopping,
        ],
        .running: [.labReady: .running, .activated: .running, .stop: .stopping],
        .stopping: [.tornDown: .stopped],
        .stopped: [:],
    ]

    /// The state after `event`, or nil when the event does not apply in this state.
    func after(_ event: SessionEvent) -> SessionState? { Self.transitions[self]?[event] }

    /// The states `event` applies in, in declaration order.
    static func sources(of event: SessionEvent) -> [SessionState] {
        allCases.filter { $0.after(event) != nil }
    }

    /// The states `event` changes (those it applies in and leaves), with where each goes.
    static func changes(of event: SessionEvent) -> [(from: SessionState, to: SessionState)] {
        allCases.compactMap { state in state.after(event).flatMap { $0 == state ? nil : (state, $0) } }
    }

    /// States that hold a lab and count against capacity and the portal maximum: every state but STOPPED.
    static let live: [SessionState] = allCases.filter { $0 != .stopped }

    /// States a session can still be used, reused or activated in: live and not being torn down.
    static let usable: [SessionState] = sources(of: .stop)

    /// An unowned session in these states is a spare (ready or still starting).
    static let spare: [SessionState] = [.starting, .waiting]

    /// A ready spare: what `available` counts, and what a request claims first.
    static let claimable: SessionState = .waiting

    /// The spares a request claims, in this order: ready ones, then (as the real portal does at the capacity edge)
    /// ones still starting, so that no request is refused while an unowned live spare exists.
    static let claimOrder: [SessionState] = [.waiting, .starting]

    /// The state a new session starts in: a spare or a session waiting for activation is STARTING until its lab is
    /// up; a session of the browser flow is RUNNING at once (the page waits for its lab).
    static func initial(runsAtOnce: Bool) -> SessionState { runsAtOnce ? .running : .starting }

    var isLive: Bool { self != .stopped }
    var isUsable: Bool { after(.stop) != nil }
}
