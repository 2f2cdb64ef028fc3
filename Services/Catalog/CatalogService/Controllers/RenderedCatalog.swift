import Contracts
import NIOCore
import Synchronization

/// Catalog answers kept as sent, for as long as what they were made from has not moved: the portal generation and
/// session-service's counts (compared whole, so a session that comes or goes shows at once). Answers that list
/// sessions carry a live countdown and are never kept. Holds at most `capacity` answers (the oldest go first).
final class RenderedCatalog: Sendable {
    struct Key: Hashable, Sendable {
        var route: String
        var privileged: Bool
        var query: String
    }

    private struct Entry {
        var generation: Int
        var overview: SessionsOverview.Result
        var body: ByteBuffer
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 128) { self.capacity = max(1, capacity) }

    /// The answer for `key` made from this generation and these counts, made now with `render` if none is kept.
    func body(
        for key: Key, generation: Int, overview: SessionsOverview.Result, render: () -> ByteBuffer
    ) -> ByteBuffer {
        let kept: ByteBuffer? = state.withLock { state in
            guard let entry = state.entries[key], entry.generation == generation, entry.overview == overview else {
                return nil
            }
            return entry.body
        }
        if let kept { return kept }
        let body = render()
        state.withLock { state in
            if state.entries.updateValue(Entry(generation: generation, overview: overview, body: body), forKey: key) == nil {
                state.order.append(key)
                if state.order.count > capacity { state.entries[state.order.removeFirst()] = nil }
            }
        }
        return body
    }
}
