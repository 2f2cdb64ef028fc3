import Contracts
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Storage
import Synchronization

/// `GET /healthz` (alive), `GET /readyz` (database and required peers answer in time, and no request is stuck) and
/// `GET /metrics` (Prometheus, every sample labelled with this replica).
public struct HealthController<Context: RequestContext>: Sendable {
    let service: String
    let database: Database
    let peers: Peers
    let registry: PrometheusCollectorRegistry
    var watchdog: RequestWatchdog? = nil
    /// This replica's name, added as the `replica` label of every metric.
    var replica: String? = nil

    struct Status: Encodable, Sendable {
        var status: String
        var service: String
        var checks: [String: String]
        var error: String?
    }

    public func addRoutes(to router: some RouterMethods<Context>) {
        router.get("healthz") { _, _ in
            JSONResponse.make(Status(status: "ok", service: service, checks: [:], error: nil))
        }
        router.get("readyz") { _, _ in
            var checks: [String: String] = [:]
            var problems: [String] = []
            do {
                try await withDeadline(.seconds(2)) { try await database.ping() }
                checks["database"] = "ok"
            } catch {
                checks["database"] = "unavailable: \(error)"
                problems.append("database")
            }
            if let problem = watchdog?.problem() {
                checks["requests"] = problem
                problems.append("requests")
            } else if watchdog != nil {
                checks["requests"] = "ok"
            }
            let peerProblems = await peers.check()
            for name in peers.required.map(\.rawValue) {
                checks[name] = peerProblems[name].map { "unavailable: \($0)" } ?? "ok"
                if peerProblems[name] != nil { problems.append(name) }
            }
            let ready = problems.isEmpty
            let status = Status(
                status: ready ? "ready" : "not ready", service: service, checks: checks,
                error: ready ? nil : "not ready: \(problems.joined(separator: ", ")) \(problems == ["requests"] ? "stuck" : "unavailable")")
            return JSONResponse.make(status, status: ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            if let replica { buffer = MetricsLabels.adding("replica", replica, to: buffer) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}

public enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// A JSON response of any `Encodable`.
    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":"internal error"}"#.utf8)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var description: String { "no answer in time" }
}

/// Runs `body`, giving up after `timeout`. The caller gets its answer at the deadline even if `body` does not
/// stop when cancelled (a query on a connection that hangs): `body` is cancelled and left to finish on its own.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.start(continuation)
        let work = Task { race.finish(await Result { try await body() }) }
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            race.finish(.failure(DeadlineExceeded()))
        }
        race.track([work, timer])
    }
}

/// The first of a body and its deadline to finish answers; the other is cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var done = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func track(_ tasks: [Task<Void, Never>]) {
        let finished = state.withLock { state in
            if !state.done { state.tasks = tasks }
            return state.done
        }
        if finished { tasks.forEach { $0.cancel() } }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard !state.done else { return (nil, []) }
            state.done = true
            defer { state.continuation = nil }
            return (state.continuation, state.tasks)
        }
        tasks.forEach { $0.cancel() }
        continuation?.resume(with: result)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// Adds one label to every sample of a Prometheus text exposition.
enum MetricsLabels {
    static func adding(_ name: String, _ value: String, to exposition: [UInt8]) -> [UInt8] {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let label = "\(name)=\"\(escaped)\""
        let lines = String(decoding: exposition, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let labelled = lines.map { line -> String in
            if line.isEmpty || line.hasPrefix("#") { return String(line) }
            if let brace = line.firstIndex(of: "{") {
                let after = line.index(after: brace)
                return line[..<after] + label + (line[after] == "}" ? "" : ",") + line[after...]
            }
            if let space = line.firstIndex(of: " ") { return line[..<space] + "{" + label + "}" + line[space...] }
            return String(line)
        }
        let out = labelled.joined(separator: "\n")
        return Array(out.utf8)
    }
}