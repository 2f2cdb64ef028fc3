import ServerKit
import Synchronization
import Testing

@Suite("WakeSignal: a loop's sleep that a signal, its timeout or cancellation ends")
struct WakeSignalTests {
    /// Whether `operation` finishes within `limit` (a bound so that a hang fails the test instead of the run).
    func finishes(within limit: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await operation()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test("a cancelled wait returns at once (a sibling service's failure must not leave the process hanging)")
    func cancellation() async {
        let signal = WakeSignal()
        let waiter = Task { await signal.wait(for: .seconds(600)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        #expect(await finishes(within: .seconds(20)) { await waiter.value })
        // A wait in an already cancelled task returns too, and the signal is usable again afterwards.
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await signal.wait(for: .seconds(600))
        }
        #expect(await finishes(within: .seconds(20)) { await cancelled.value })
        signal.signal()
        #expect(await finishes(within: .seconds(20)) { await signal.wait(for: .seconds(600)) })
    }

    @Test("a signal given before the wait is kept for it; a timeout is not kept for the next wait")
    func keptAndNotKept() async {
        let signal = WakeSignal()
        signal.signal()
        #expect(await finishes(within: .seconds(20)) { await signal.wait(for: .seconds(600)) })
        await signal.wait(for: .milliseconds(10))  // ends by its timeout
        let signalled = Mutex(false)
        let sender = Task {
            try? await Task.sleep(for: .milliseconds(300))
            signalled.withLock { $0 = true }
            signal.signal()
        }
        await signal.wait(for: .seconds(600))
        #expect(signalled.withLock { $0 }, "the wait ended by the later signal, not by the earlier timeout")
        await sender.value
    }
}
