import NIOConcurrencyHelpers
import NIOCore

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
