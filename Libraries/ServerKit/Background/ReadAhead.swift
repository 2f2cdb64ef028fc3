import Synchronization

/// Pages of a sequential bulk read made ahead of the reader: when page `n` is answered, pages `n + 1 … n + depth`
/// (each one's key is known only from the page before it) are made one after another in the background, so that the
/// reader's next calls find them made or being made while it was busy with page `n`. Holds at most `capacity` pages
/// (the oldest go first); a page kept longer than `maxAge` is read again. Keyset pages read ahead are what a read at
/// that moment would have answered: an export is not a snapshot either way.
public final class ReadAhead<Key: Hashable & Sendable, Page: Sendable>: Sendable {
    public typealias Read = @Sendable (Key) async throws -> Page
    public typealias Next = @Sendable (Page) -> Key?

    private struct Entry {
        var task: Task<Page, any Error>
        var at: ContinuousClock.Instant
        /// How many pages after this one should follow it.
        var depth: Int
        /// The key after this page, once it is made.
        var following: Key??
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
    }

    private enum Step {
        case started
        case continueWith(Key)
        case nothing
    }

    let capacity: Int
    let depth: Int
    let maxAge: Duration
    private let state = Mutex(State())

    public init(depth: Int = 2, capacity: Int = 8, maxAge: Duration = .seconds(30)) {
        self.depth = max(1, depth)
        self.capacity = max(depth + 1, capacity)
        self.maxAge = maxAge
    }

    /// The page for `key`: the one made ahead if there is a fresh one, else read now. Then the pages after it are
    /// made ahead.
    public func page(_ key: Key, read: @escaping Read, next: @escaping Next) async throws -> Page {
        let kept: Task<Page, any Error>? = state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: key) else { return nil }
            state.order.removeAll { $0 == key }
            return ContinuousClock.now - entry.at <= maxAge ? entry.task : nil
        }
        let page: Page
        if let kept, let value = try? await kept.value {
            page = value
        } else {
            page = try await read(key)
        }
        if let following = next(page) { ahead(following, depth: depth, read: read, next: next) }
        return page
    }

    /// Makes sure `key` and up to `depth - 1` pages after it are made or being made.
    private func ahead(_ key: Key, depth: Int, read: @escaping Read, next: @escaping Next) {
        guard depth > 0 else { return }
        let step: Step = state.withLock { state in
            if var entry = state.entries[key] {
                entry.depth = max(entry.depth, depth)
                state.entries[key] = entry
                // Already made: go on from the page after it.
                if case .some(.some(let following)) = entry.following { return .continueWith(following) }
                return .nothing
            }
            let task = Task {
                let page = try await read(key)
                self.made(key, page: page, read: read, next: next)
                return page
            }
            state.entries[key] = Entry(task: task, at: .now, depth: depth, following: nil)
            state.order.append(key)
            while state.order.count > capacity {
                let oldest = state.order.removeFirst()
                state.entries.removeValue(forKey: oldest)?.task.cancel()
            }
            return .started
        }
        if case .continueWith(let following) = step { ahead(following, depth: depth - 1, read: read, next: next) }
    }

    /// A page made ahead: note what follows it, and make that too while depth remains.
    private func made(_ key: Key, page: Page, read: @escaping Read, next: @escaping Next) {
        let following = next(page)
        let depth: Int = state.withLock { state in
            guard var entry = state.entries[key] else { return 0 }
            entry.following = .some(following)
            state.entries[key] = entry
            return entry.depth
        }
        if let following { ahead(following, depth: depth - 1, read: read, next: next) }
    }
}
