import Hummingbird
import Synchronization

/// The requests this process is answering, and since when: `/readyz` reports a replica whose requests are stuck (its
/// oldest request older than `stuckAfter`) as not ready, so that a proxy or an orchestrator stops sending it traffic
/// even when its database and peers answer a ping.
///
/// A request counts from when its handler starts until its response head is ready; a streamed body (a report
/// download) is not counted while it streams. Health and metrics routes are not counted.
public final class RequestWatchdog: Sendable {
    private struct State {
        var next = 0
        var started: [Int: ContinuousClock.Instant] = [:]
    }

    public let stuckAfter: Duration
    private let state = Mutex(State())

    public init(stuckAfter: Duration) {
        self.stuckAfter = stuckAfter
    }

    func begin() -> Int {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.next &+= 1
            state.started[state.next] = now
            return state.next
        }
    }

    func end(_ ticket: Int) {
        _ = state.withLock { $0.started.removeValue(forKey: ticket) }
    }

    /// How many requests are in flight, and how long the oldest has been.
    public func snapshot() -> (count: Int, oldest: Duration) {
        let now = ContinuousClock.now
        return state.withLock { state in
            (state.started.count, state.started.values.min().map { now - $0 } ?? .zero)
        }
    }

    /// A problem to report when the oldest request is older than `stuckAfter`.
    public func problem() -> String? {
        let (count, oldest) = snapshot()
        guard oldest > stuckAfter else { return nil }
        let seconds = oldest.components.seconds
        return "stuck: \(count) request(s) in flight, the oldest for \(seconds) s (limit \(stuckAfter.components.seconds) s)"
    }
}

/// Counts every request but the health and metrics routes in a `RequestWatchdog`.
public struct RequestWatchdogMiddleware<Context: RequestContext>: RouterMiddleware {
    let watchdog: RequestWatchdog

    public init(watchdog: RequestWatchdog) { self.watchdog = watchdog }

    static func exempt(_ path: String) -> Bool {
        path == "/healthz" || path == "/readyz" || path == "/metrics"
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard !Self.exempt(request.uri.path) else { return try await next(request, context) }
        let ticket = watchdog.begin()
        defer { watchdog.end(ticket) }
        return try await next(request, context)
    }
}
