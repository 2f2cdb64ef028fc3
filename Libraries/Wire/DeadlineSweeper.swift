import HeapModule
import NIOConcurrencyHelpers
import NIOCore

/// Fires actions when their deadlines pass, from one repeating timer instead of one scheduled task per call.
///
/// Scheduling and cancelling a task on an event loop from another thread costs a wake-up of that loop each time;
/// at tens of thousands of calls per second that dominates. Here adding and removing a deadline is a lock and a
/// dictionary operation; a timer sweeps every `tick`, so a deadline fires at most `tick` late.
final class DeadlineSweeper: Sendable {
    private struct Entry: Comparable {
        var deadline: NIODeadline
        var token: UInt64
        static func < (a: Entry, b: Entry) -> Bool { a.deadline < b.deadline }
    }

    private struct State {
        var heap = Heap<Entry>()
        var actions: [UInt64: @Sendable () -> Void] = [:]
        var nextToken: UInt64 = 1
        var timer: RepeatedTask?
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    private let eventLoop: any EventLoop
    private let tick: TimeAmount

    init(eventLoop: any EventLoop, tick: TimeAmount = .milliseconds(10)) {
        self.eventLoop = eventLoop
        self.tick = tick
    }

    /// Registers `action` to run at `deadline` (on the event loop) unless removed first.
    func add(_ deadline: NIODeadline, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLockedValue { state in
            let token = state.nextToken
            state.nextToken += 1
            guard !state.stopped else { return token }
            state.actions[token] = action
            state.heap.insert(Entry(deadline: deadline, token: token))
            if state.timer == nil {
                state.timer = eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in
                    self?.sweep()
                }
            }
            return token
        }
    }

    /// Forgets a deadline; true if it had not fired yet.
    @discardableResult
    func remove(_ token: UInt64) -> Bool {
        state.withLockedValue { $0.actions.removeValue(forKey: token) != nil }
    }

    func stop() {
        let timer = state.withLockedValue { state in
            state.stopped = true
            state.actions.removeAll()
            state.heap = Heap()
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }

    private func sweep() {
        let now = NIODeadline.now()
        let due: [@Sendable () -> Void] = state.withLockedValue { state in
            var due: [@Sendable () -> Void] = []
            while let first = state.heap.min, first.deadline <= now {
                _ = state.heap.popMin()
                if let action = state.actions.removeValue(forKey: first.token) { due.append(action) }
            }
            return due
        }
        for action in due { action() }
    }
}
