import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import ServerKit
import Synchronization
import Testing

@Suite("Readiness: stuck requests, deadlines that hold, and the replica label of metrics")
struct ReadinessTests {
    @Test("a request in flight longer than the limit is reported as stuck; health routes never count")
    func stuckRequests() async throws {
        let watchdog = RequestWatchdog(stuckAfter: .milliseconds(200))
        let router = Router()
        router.middlewares.add(RequestWatchdogMiddleware(watchdog: watchdog))
        let release = WakeSignal()
        router.get("slow") { _, _ in
            await release.wait(for: .seconds(30))
            return "done"
        }
        // A health route is not counted while it runs.
        router.get("readyz") { _, _ in "\(watchdog.snapshot().count)" }
        try await Application(router: router).test(.live) { client in
            #expect(try await client.execute(uri: "/readyz", method: .get) { String(buffer: $0.body) } == "0")
            async let slow = client.execute(uri: "/slow", method: .get) { $0.status }
            // Polled, not slept: the machine may be busy. Bounded: 10 s at most each.
            for _ in 0..<200 where watchdog.snapshot().count == 0 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(watchdog.snapshot().count == 1)
            #expect(watchdog.problem() == nil || watchdog.snapshot().oldest > .milliseconds(200))
            for _ in 0..<200 where watchdog.problem() == nil { try await Task.sleep(for: .milliseconds(50)) }
            // (Asked directly: the test client sends its requests one after another on one connection.)
            let problem = try #require(watchdog.problem())
            #expect(problem.hasPrefix("stuck: 1 request(s) in flight"))
            release.signal()
            #expect(try await slow == .ok)
            #expect(watchdog.snapshot().count == 0)
            #expect(watchdog.problem() == nil)
        }
    }

    @Test("withDeadline answers at the deadline even when the body ignores cancellation")
    func deadlineHolds() async throws {
        let finished = Mutex(false)
        let started = ContinuousClock.now
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) {
                // A body that does not stop when cancelled.
                await withCheckedContinuation { continuation in
                    DispatchQueue.global().asyncAfter(deadline: .now() + 20) { continuation.resume() }
                }
                finished.withLock { $0 = true }
            }
        }
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(finished.withLock { $0 } == false)
        #expect(try await withDeadline(.seconds(5)) { 42 } == 42)
        await #expect(throws: CancellationError.self) {
            try await withDeadline(.seconds(5)) { throw CancellationError() }
        }
    }

    @Test("every sample of the exposition carries the replica label; comments and spacing are kept")
    func replicaLabel() {
        let exposition = """
            # TYPE requests counter
            requests{route="/a",method="GET"} 3
            requests 7
            up{} 1

            """
        let labelled = String(decoding: MetricsLabels.adding("replica", #"s-1 "x""#, to: Array(exposition.utf8)), as: UTF8.self)
        #expect(labelled == """
            # TYPE requests counter
            requests{replica="s-1 \\"x\\"",route="/a",method="GET"} 3
            requests{replica="s-1 \\"x\\""} 7
            up{replica="s-1 \\"x\\""} 1

            """)
    }
}
