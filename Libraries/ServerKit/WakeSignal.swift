import Synchronization

/// Wakes a sleeping loop early. A signal that comes while nobody waits is kept for the next wait. Meant for one
/// loop: each waiter's own timeout is a signal too, so a second concurrent waiter would see the first one's.
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after `duration`, or earlier on a signal.
    public func wait(for duration: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: duration)
                if !Task.isCancelled { self.signal() }
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now: Bool = state.withLock { state in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    precondition(state.waiter == nil, "WakeSignal has one waiter at a time; give each loop its own")
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
            group.cancelAll()
        }
    }
}
