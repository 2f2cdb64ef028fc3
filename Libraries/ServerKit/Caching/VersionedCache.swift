import Synchronization

/// Reads kept while a `ChangeCounter` has not moved: a write by this process drops them all. Exact when this process
/// is the database's only writer (SQLite); with replicas (PostgreSQL) give a `maxAge`, so that another replica's
/// write shows within it. Holds at most `capacity` entries (the oldest go first). Concurrent misses of one key share
/// one read.
public final class VersionedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var version = -1
        var entries: [Key: (value: Value, at: ContinuousClock.Instant)] = [:]
        var order: [Key] = []
        var loading: [Key: Task<Value, any Error>] = [:]
    }

    private enum Found {
        case kept(Value)
        case task(Task<Value, any Error>, owner: Bool)
    }

    public let enabled: Bool
    let capacity: Int
    let maxAge: Duration?
    let counter: ChangeCounter
    private let state = Mutex(State())

    public init(counter: ChangeCounter, enabled: Bool, capacity: Int = 256, maxAge: Duration? = nil) {
        self.counter = counter
        self.enabled = enabled
        self.capacity = max(1, capacity)
        self.maxAge = maxAge
    }

    /// The value for `key`: kept, being read by another caller, or read now with `load` (and kept only if nothing
    /// was written while it was read).
    public func value(for key: Key, load: @escaping @Sendable () async throws -> Value) async throws -> Value {
        guard enabled else { return try await load() }
        let version = counter.value
        let found: Found = state.withLock { state in
            if state.version != version {
                state.version = version
                state.entries = [:]
                state.order = []
                state.loading = [:]
            }
            // Too old: read again (the entry is replaced when the read lands).
            if let kept = state.entries[key], maxAge.map({ ContinuousClock.now - kept.at <= $0 }) ?? true {
                return .kept(kept.value)
            }
            if let task = state.loading[key] { return .task(task, owner: false) }
            let task = Task { try await load() }
            state.loading[key] = task
            return .task(task, owner: true)
        }
        switch found {
        case .kept(let value):
            return value
        case .task(let task, let owner):
            let result = await task.result
            if owner {
                state.withLock { state in
                    guard state.version == version else { return }
                    state.loading[key] = nil
                    guard case .success(let value) = result, counter.value == version else { return }
                    if state.entries.updateValue((value, .now), forKey: key) == nil {
                        state.order.append(key)
                        if state.order.count > capacity { state.entries[state.order.removeFirst()] = nil }
                    }
                }
            }
            return try result.get()
        }
    }
}
