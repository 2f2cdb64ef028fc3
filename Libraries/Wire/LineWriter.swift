import NIOConcurrencyHelpers
import NIOCore

/// Writes lines to a connection from many tasks, coalescing whatever is queued into one write and one flush.
///
/// Producers never wait; the queue is bounded by whoever produces (the server's in-flight limit, the client's
/// pending-call limit). One task runs `run(_:)` and owns the outbound writer.
final class LineWriter: Sendable {
    private struct State {
        var queue: [ByteBuffer] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    /// Queues one line (the buffer must already end with `\n`). Lines queued after `finish()` are dropped.
    func enqueue(_ line: ByteBuffer) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { state in
            guard !state.finished else { return nil }
            state.queue.append(line)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Lets `run` return once everything queued so far is written.
    func finish() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Writes batches until `finish()` is called and the queue is empty.
    func run(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        while true {
            let batch = await nextBatch()
            guard let batch else { return }
            try await outbound.write(contentsOf: batch)
        }
    }

    private func nextBatch() async -> [ByteBuffer]? {
        while true {
            enum Step { case batch([ByteBuffer]), done, wait }
            let step: Step = state.withLockedValue { state in
                if !state.queue.isEmpty {
                    defer { state.queue.removeAll(keepingCapacity: true) }
                    return .batch(state.queue)
                }
                return state.finished ? .done : .wait
            }
            switch step {
            case .batch(let lines): return lines
            case .done: return nil
            case .wait:
                // Cancelling the writer's task finishes it: what is queued is still written, then it returns.
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLockedValue { state in
                            if state.queue.isEmpty && !state.finished {
                                state.waiter = continuation
                                return false
                            }
                            return true
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.finish()
                }
            }
        }
    }
}

/// Bounds the requests in flight on one connection: the read loop waits while the limit is reached, which stops
/// reading from the socket and so pushes back on the peer.
final class InFlightLimiter: Sendable {
    private struct State {
        var count = 0
        var waiter: CheckedContinuation<Void, Never>?
        var drainWaiter: CheckedContinuation<Void, Never>?
    }

    private let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) { self.limit = max(1, limit) }

    func acquire() async {
        while true {
            let acquired = state.withLockedValue { state in
                if state.count < limit {
                    state.count += 1
                    return true
                }
                return false
            }
            if acquired { return }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state in
                    if state.count < limit { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    func release() {
        let (waiter, drainWaiter): (CheckedContinuation<Void, Never>?, CheckedContinuation<Void, Never>?) =
            state.withLockedValue { state in
                state.count -= 1
                let waiter = state.waiter
                state.waiter = nil
                var drainWaiter: CheckedContinuation<Void, Never>?
                if state.count == 0 {
                    drainWaiter = state.drainWaiter
                    state.drainWaiter = nil
                }
                return (waiter, drainWaiter)
            }
        waiter?.resume()
        drainWaiter?.resume()
    }

    /// Returns when nothing is in flight.
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { state in
                if state.count == 0 { return true }
                state.drainWaiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
