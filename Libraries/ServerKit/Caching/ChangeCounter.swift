import Synchronization

/// A count of writes, shared by copies of a repository: a cache keeps what it read at one count and reuses it while the
/// count has not moved (exact when this process is the only writer, as with SQLite).
public final class ChangeCounter: Sendable {
    private let count = Mutex(0)

    public init() {}

    public var value: Int { count.withLock { $0 } }

    public func bump() { count.withLock { $0 += 1 } }
}
