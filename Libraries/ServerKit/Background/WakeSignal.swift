import Synchronization

/// Wakes a sleeping loop early. A signal that comes while nobody waits is kept for the next wait. Meant for one
/// loop: each waiter's own timeout is a signal too, so a second concurrent waiter would see the first one's.
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        /// The wait in progress, and whether its own timeout or cancellation came before it was registered.
        var active: Int?
        var activeWoken = false
        var nextID = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the loop now, or at its next wait.
    public func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Ends the wait `id` only (its timeout, or its task's cancellation); never kept for a later wait.
    private func end(_ id: Int) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if let waiter = state.waiter, waiter.id == id {
                state.waiter = nil
                return waiter.continuation
            }
            if state.active == id { state.activeWoken = true }
            return nil
        }
        waiter?.resume()
    }

    /// Returns after `duration`, earlier on a signal, and at once when the task is cancelled.
    public func wait(for duration: Duration) async {
        let id: Int = state.withLock { state in
            precondition(state.active == nil, "WakeSignal has one waiter at a time; give each loop its own")
            state.nextID += 1
            state.active = state.nextID
            state.activeWoken = false
            return state.nextID
        }
        defer { state.withLock { $0.active = nil } }
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    try? await Task.sleep(for: duration)
                    self.end(id)
                }
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now: Bool = state.withLock { state in
                        if state.pending || state.activeWoken {
                            state.pending = false
                            return true
                        }
                        state.waiter = (id, continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
                group.cancelAll()
            }
        } onCancel: {
            self.end(id)
        }
    }
}
