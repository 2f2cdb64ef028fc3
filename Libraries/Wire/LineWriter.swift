import NIOConcurrencyHelpers
import NIOCore

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

/// Writes lines straight into a channel from any thread, coalescing: lines queued while a write is pending go out
/// in the same batch, with one flush. No task sits between the producer and the event loop.
///
/// Producers never wait; the queue is bounded by whoever produces (the server's in-flight limit, the client's
/// pending-call limit).
final class ChannelLineWriter: Sendable {
    private struct State {
        var queue: [ByteBuffer] = []
        var scheduled = false
        var finished = false
    }

    private let channel: any Channel
    private let state = NIOLockedValueBox(State())

    init(channel: any Channel) { self.channel = channel }

    /// Queues one line (the buffer must already end with `\n`). Lines queued after `finish()` are dropped.
    func enqueue(_ line: ByteBuffer) {
        let schedule: Bool = state.withLockedValue { state in
            guard !state.finished else { return false }
            state.queue.append(line)
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
        if schedule {
            channel.eventLoop.execute { _ = self.drain() }
        }
    }

    /// On the event loop: writes what is queued and flushes. Returns the last write's future, if any.
    private func drain() -> EventLoopFuture<Void>? {
        let batch: [ByteBuffer] = state.withLockedValue { state in
            state.scheduled = false
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        guard let last = batch.last else { return nil }
        for line in batch.dropLast() { channel.write(line, promise: nil) }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(last, promise: promise)
        return promise.futureResult
    }

    /// Stops taking lines and returns once everything queued has been written to the socket (or the channel failed).
    func finish() async {
        state.withLockedValue { $0.finished = true }
        let written = channel.eventLoop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            self.drain() ?? self.channel.eventLoop.makeSucceededVoidFuture()
        }
        try? await written.get()
    }
}
