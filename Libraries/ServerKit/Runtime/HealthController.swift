import Contracts
import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Storage

/// `GET /healthz` (alive), `GET /readyz` (database and required peers answer) and `GET /metrics` (Prometheus).
public struct HealthController<Context: RequestContext>: Sendable {
    let service: String
    let database: Database
    let peers: Peers
    let registry: PrometheusCollectorRegistry

    struct Status: Encodable, Sendable {
        var status: String
        var service: String
        var checks: [String: String]
        var error: String?
    }

    public func addRoutes(to router: Router<Context>) {
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
            let peerProblems = await peers.check()
            for name in peers.required.map(\.rawValue) {
                checks[name] = peerProblems[name].map { "unavailable: \($0)" } ?? "ok"
                if peerProblems[name] != nil { problems.append(name) }
            }
            let ready = problems.isEmpty
            let status = Status(
                status: ready ? "ready" : "not ready", service: service, checks: checks,
                error: ready ? nil : "not ready: \(problems.joined(separator: ", ")) unavailable")
            return JSONResponse.make(status, status: ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
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

/// Runs `body`, giving up after `timeout`.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw DeadlineExceeded()
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}
