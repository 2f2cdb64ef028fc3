import DequeModule
import SQLKit
import Synchronization

/// Group commit: runs many small write transactions of one kind as one database transaction.
///
/// Callers that arrive while a batch is being written wait, and the next batch takes them all (up to `maxBatch`), so
/// one `BEGIN … COMMIT` (one fsync on SQLite, one lock wait on PostgreSQL) serves many of them. No caller waits for a
/// timer: under light load a batch is one call. `body` gets the whole batch, in arrival order, and answers one output
/// per input in the same order; it can share work between the calls (one statement for many rows), as long as the
/// outcome is what running them one by one in that order would give.
///
/// If a batch throws, nothing of it is committed, and each of its calls runs again alone in its own transaction, so that
/// one call's failure is not the others'. `body` may therefore see one call more than once; it must not have effects
/// outside the transaction.
public final class GroupCommit<Input: Sendable, Output: Sendable>: Sendable {
    public typealias Body = @Sendable ([Input], any SQLDatabase) async throws -> [Output]

    private struct Pending {
        var input: Input
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var queue = Deque<Pending>()
        var draining = false
    }

    let database: Database
    let maxBatch: Int
    let prepare: @Sendable (any SQLDatabase) async throws -> Void
    let body: Body
    let observe: @Sendable (_ calls: Int, _ elapsed: Duration) -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - prepare: runs first in every transaction (for example: lock the row that serialises these writes).
    ///   - body: the batch's work inside the transaction: one output per input, in order.
    ///   - observe: told of every batch written: how many calls it served and how long it took, from `BEGIN` to the
    ///     last answer (for metrics).
    public init(
        database: Database, maxBatch: Int = 64,
        prepare: @escaping @Sendable (any SQLDatabase) async throws -> Void = { _ in },
        observe: @escaping @Sendable (_ calls: Int, _ elapsed: Duration) -> Void = { _, _ in },
        body: @escaping Body
    ) {
        self.database = database
        self.maxBatch = max(1, maxBatch)
        self.prepare = prepare
        self.observe = observe
        self.body = body
    }

    /// Runs `input` in the next batch and answers once that batch is committed.
    public func run(_ input: Input) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let starts = state.withLock { state in
                state.queue.append(Pending(input: input, continuation: continuation))
                if state.draining { return false }
                state.draining = true
                return true
            }
            if starts { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch: [Pending] = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.draining = false
                    return []
                }
                var batch: [Pending] = []
                while batch.count < maxBatch, let next = state.queue.popFirst() { batch.append(next) }
                return batch
            }
            guard !batch.isEmpty else { return }
            let started = ContinuousClock.now
            await write(batch)
            observe(batch.count, ContinuousClock.now - started)
        }
    }

    private func write(_ batch: [Pending]) async {
        let prepare = self.prepare
        let body = self.body
        if batch.count > 1 {
            let inputs = batch.map(\.input)
            do {
                let outputs = try await database.transaction { db in
                    try await prepare(db)
                    let outputs = try await body(inputs, db)
                    guard outputs.count == inputs.count else {
                        throw StorageError.misuse("a group commit answered \(outputs.count) outputs for \(inputs.count) inputs")
                    }
                    return outputs
                }
                for (pending, output) in zip(batch, outputs) { pending.continuation.resume(returning: output) }
                return
            } catch {
                // Fall through: each call on its own, so that only the failing one fails.
            }
        }
        for pending in batch {
            let input = pending.input
            do {
                let output = try await database.transaction { db in
                    try await prepare(db)
                    guard let output = try await body([input], db).first else {
                        throw StorageError.misuse("a group commit answered no output for one input")
                    }
                    return output
                }
                pending.continuation.resume(returning: output)
            } catch {
                pending.continuation.resume(throwing: error)
            }
        }
    }
}
