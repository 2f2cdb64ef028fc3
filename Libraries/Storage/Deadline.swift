import Synchronization

/// The error of a database operation that did not finish within its time limit.
public struct DatabaseTimeout: Error, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "the database did not answer within \(limit.components.seconds) s" }
}

/// A value that crosses tasks without being Sendable itself: handed from the task that made it to the one waiting for
/// it, and never touched by both.
struct Handed<T>: @unchecked Sendable {
    var value: T
}

/// Runs `body` and answers its result, or `DatabaseTimeout` once `limit` passes, without waiting for a body that does
/// not stop (a query on a connection that hangs); such a body is cancelled and left to end on its own.
///
/// `abort` gets a function that ends the wait at once with an error (a connection that closes under the body).
public func answerWithin<T: Sendable>(
    _ limit: Duration, abort: ((@escaping @Sendable (any Error) -> Void) -> Void)? = nil,
    _ body: @escaping @Sendable () async throws -> T
) async -> Result<T, any Error> {
    let race = Race<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>, Never>) in
        race.start(continuation)
        abort? { error in race.finish(.failure(error)) }
        let work = Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        let timer = Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            race.finish(.failure(DatabaseTimeout(limit: limit)))
        }
        race.track([work, timer])
    }
}

private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result<T, any Error>, Never>?
        var tasks: [Task<Void, Never>] = []
        var done = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func track(_ tasks: [Task<Void, Never>]) {
        let done = state.withLock { state in
            if !state.done { state.tasks = tasks }
            return state.done
        }
        if done { tasks.forEach { $0.cancel() } }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<Result<T, any Error>, Never>?, [Task<Void, Never>]) in
            guard !state.done else { return (nil, []) }
            state.done = true
            defer { state.continuation = nil }
            return (state.continuation, state.tasks)
        }
        tasks.forEach { $0.cancel() }
        continuation?.resume(returning: result)
    }
}
