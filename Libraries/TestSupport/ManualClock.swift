import Foundation
import Synchronization

/// A clock tests move by hand: services read `now` from it, so nothing sleeps.
public final class ManualClock: Sendable {
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_795_000_000)) {
        current = Mutex(start)
    }

    public var now: Date { current.withLock { $0 } }

    /// A closure for the services' `now:` parameter.
    public var source: @Sendable () -> Date { { self.now } }

    public func advance(seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}
