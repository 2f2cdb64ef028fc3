import Contracts
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Storage

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
            // The service and the replica on every sample, so that one Prometheus scrapes every replica of every
            // service and a dashboard groups by them whatever the scrape configuration calls its jobs.
            buffer = MetricsLabels.adding("service", service, to: buffer)
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
    switch await answerWithin(timeout, body) {
    case .success(let value): return value
    case .failure(let error as DatabaseTimeout) where error.limit == timeout: throw DeadlineExceeded()
    case .failure(let error): throw error
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