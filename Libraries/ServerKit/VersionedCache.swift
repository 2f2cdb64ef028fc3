import Synchronization

/// Reads kept while a `ChangeCounter` has not moved: a write by this process drops them all. Only exact when this
/// process is the database's only writer (SQLite); with replicas on PostgreSQL leave it disabled. Holds at most
/// `capacity` entries (the oldest go first).
public final class VersionedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var version = -1
        var entries: [Key: Value] = [:]
        var order: [Key] = []
    }

    public let enabled: Bool
    let capacity: Int
    let counter: ChangeCounter
    private let state = Mutex(State())

    public init(counter: ChangeCounter, enabled: Bool, capacity: Int = 256) {
        self.counter = counter
        self.enabled = enabled
        self.capacity = max(1, capacity)
    }

    /// The value for `key`: kept, or read with `load` (and kept only if nothing was written while it was read).
    public func value(for key: Key, load: () async throws -> Value) async rethrows -> Value {
        guard enabled else { return try await load() }
        let version = counter.value
        if let kept = state.withLock({ $0.version == version ? $0.entries[key] : nil }) { return kept }
        let value = try await load()
        state.withLock { state in
            guard counter.value == version else { return }
            if state.version != version {
                state = State()
                state.version = version
            }
            if state.entries.updateValue(value, forKey: key) == nil {
                state.order.append(key)
                if state.order.count > capacity { state.entries[state.order.removeFirst()] = nil }
            }
        }
        return value
    }
}
