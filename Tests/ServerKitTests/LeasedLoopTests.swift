import Foundation
import SQLKit
import ServerKit
import Storage
import Synchronization
import TestSupport
import Testing

@Suite("LeasedLoop: one holder at a time, and the lease row is not written on every pass")
struct LeasedLoopTests {
    /// Waits (bounded) until `condition` holds.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<400 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return condition()
    }

    /// The value of `labportal_lease_held{lease}` on this process's /metrics.
    static func held(_ lease: String) -> String? {
        var buffer: [UInt8] = []
        MetricsSetup.registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("labportal_lease_held{") && $0.contains(#"lease="\#(lease)""#) }?
            .split(separator: " ").last.map(String.init)
    }

    @Test("passes woken within a third of the TTL keep the lease as it is; later ones renew it; a lost lease stops them")
    func renewal() async throws {
        try await TestDatabase(.sqlite, label: "leases").with { database in
            for statement in Leases.migrationStatements { try await database.sql.raw(SQLQueryString(statement)).run() }
            let leases = Leases(database)
            _ = MetricsSetup.registry  // the gauge of the lease is read below
            let clock = ManualClock()
            let passes = Mutex<[Bool]>([])
            let loop = LeasedLoop(
                lease: "test-loop", leases: leases, interval: .seconds(3600), ttl: .seconds(15), holder: "me",
                now: clock.source, logger: quietLogger)
            let running = Task { await loop.run(drain: {}) { first in passes.withLock { $0.append(first) } } }
            defer { running.cancel() }
            func expiry() async throws -> Int64? {
                try await database.sql.raw("SELECT expires_at_ms FROM leases WHERE name = 'test-loop'").first()?
                    .decode(column: "expires_at_ms", as: Int64.self)
            }
            let start = Int64(clock.now.timeIntervalSince1970 * 1000)

            #expect(await eventually { passes.withLock { $0 } == [true] })
            #expect(try await expiry() == start + 15_000)

            clock.advance(seconds: 4)
            loop.wake()
            #expect(await eventually { passes.withLock { $0.count } == 2 })
            #expect(try await expiry() == start + 15_000, "4 s after taking it, the lease is not written again")
            #expect(try await !leases.acquire("test-loop", holder: "other", ttl: .seconds(15), now: clock.now))

            clock.advance(seconds: 2)
            loop.wake()
            #expect(await eventually { passes.withLock { $0.count } == 3 })
            #expect(try await expiry() == start + 21_000, "6 s after, it is renewed")
            #expect(passes.withLock { $0 } == [true, false, false])

            // Another holder takes it once it has expired; this loop's next turn finds it taken and passes no more.
            clock.advance(seconds: 30)
            #expect(try await leases.acquire("test-loop", holder: "other", ttl: .seconds(15), now: clock.now))
            loop.wake()
            // The loop's turn is seen on /metrics: it no longer holds the lease (no sleep that a slow machine outruns).
            #expect(await eventually { Self.held("test-loop").flatMap(Double.init) == 0 }, "the loop did not find the lease taken: \(Self.held("test-loop") ?? "none")")
            #expect(passes.withLock { $0.count } == 3)
            // Given back, it is taken again, and the pass knows it is the first since.
            try await leases.release("test-loop", holder: "other")
            loop.wake()
            #expect(await eventually { passes.withLock { $0.count } == 4 })
            #expect(passes.withLock { $0.last } == true)
        }
    }
}
