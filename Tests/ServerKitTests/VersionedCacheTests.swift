import ServerKit
import Synchronization
import Testing

@Suite("VersionedCache")
struct VersionedCacheTests {
    @Test("kept until the counter moves; concurrent misses share one read; disabled reads every time")
    func cache() async throws {
        let counter = ChangeCounter()
        let cache = VersionedCache<String, Int>(counter: counter, enabled: true, capacity: 2)
        let loads = Mutex(0)
        let load: @Sendable () async throws -> Int = {
            try await Task.sleep(for: .milliseconds(20))
            return loads.withLock { $0 += 1; return $0 }
        }
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 { group.addTask { try await cache.value(for: "a", load: load) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(values) == [1])
        #expect(try await cache.value(for: "a", load: load) == 1)
        counter.bump()
        #expect(try await cache.value(for: "a", load: load) == 2)
        // Capacity 2: the oldest key goes.
        _ = try await cache.value(for: "b", load: load)
        _ = try await cache.value(for: "c", load: load)
        #expect(try await cache.value(for: "a", load: load) == 5)

        let off = VersionedCache<String, Int>(counter: counter, enabled: false)
        let first = try await off.value(for: "a", load: load)
        let second = try await off.value(for: "a", load: load)
        #expect(second == first + 1)
    }

    @Test("with a maximum age, a kept value is read again once it is older")
    func maxAge() async throws {
        let counter = ChangeCounter()
        let cache = VersionedCache<String, Int>(counter: counter, enabled: true, maxAge: .milliseconds(50))
        let loads = Mutex(0)
        let load: @Sendable () async throws -> Int = { loads.withLock { $0 += 1; return $0 } }
        #expect(try await cache.value(for: "a", load: load) == 1)
        #expect(try await cache.value(for: "a", load: load) == 1)
        try await Task.sleep(for: .milliseconds(80))
        #expect(try await cache.value(for: "a", load: load) == 2)
    }
}
