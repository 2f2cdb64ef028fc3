import Foundation
import TestSupport
import Testing

/// deploy/grafana/labportal.json against the real services: every metric it queries is one that a service exports
/// (after the work that makes it: a session request, an export, wire calls, background loops).
@Suite("The Grafana dashboard", .serialized)
struct DashboardTests {
    static let dashboard = repositoryRoot.appendingPathComponent("deploy/grafana/labportal.json")

    /// The metric names in the dashboard's queries and variables.
    static func queriedMetrics() throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: dashboard)) as? [String: Any] ?? [:]
        var expressions: [String] = []
        for panel in object["panels"] as? [[String: Any]] ?? [] {
            for target in panel["targets"] as? [[String: Any]] ?? [] { expressions.append(target["expr"] as? String ?? "") }
        }
        let templating = (object["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        expressions += templating.compactMap { $0["query"] as? String }
        // A metric is a name followed by `{` or `[` or `)` or `,` that is not a function, a label or a keyword.
        let words = try Regex(#"[a-zA-Z_:][a-zA-Z0-9_:]*"#)
        let functions: Set<String> = [
            "sum", "by", "rate", "increase", "histogram_quantile", "max", "label_values", "le", "without", "prometheus",
        ]
        var names = Set<String>()
        for expression in expressions {
            // Drop label matchers ({…}) and legend-like templates first, so that label names and values do not count.
            let bare = expression.replacing(try Regex(#"\{[^}]*\}"#), with: "").replacing(try Regex(#"\[[^\]]*\]"#), with: "")
            for match in bare.matches(of: words) {
                let word = String(bare[match.range])
                guard !functions.contains(word), !["service", "http_route", "http_response_status_code", "environment",
                    "outcome", "state", "lease", "replica", "peer", "code", "method", "kind"].contains(word)
                else { continue }
                names.insert(word)
            }
        }
        return names
    }

    /// The metric names of a Prometheus text exposition (histograms by their sample names: `_bucket`, …).
    static func exported(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("#"), let end = line.firstIndex(where: { $0 == "{" || $0 == " " }) else { return nil }
            return String(line[..<end])
        })
    }

    @Test("every metric the dashboard queries is exported by the services, with service and replica labels")
    func everyQueriedMetricExists() async throws {
        let queried = try Self.queriedMetrics()
        #expect(queried.count >= 12, "the queries were read: \(queried.sorted())")
        #expect(queried.contains("labportal_sessions") && queried.contains("labportal_report_exports_total"))
        try await ReportFlowTests.withFlow { flow in
            let credentials = try WorkshopFlowTests.credentials(flow.stack.home)
            let token = try await robotToken(origin: flow.base, credentials: credentials)
            let session = try await httpRequest(
                "GET", "\(flow.base)/workshops/environment/flow-w01/request/?index_url=https://front.test/",
                headers: ["Authorization": "Bearer \(token)"])
            #expect(session.status == 200, "\(session.text)")
            _ = try await flow.export("/auditing/exports.json")

            var exported = Set<String>()
            var missing = queried
            // labportal_sessions is counted every 15 s: wait for the pass after the request.
            _ = await eventually(attempts: 250, interval: .milliseconds(100)) {
                exported = []
                for service in ["catalog", "session", "classroom", "report"] {
                    guard let metrics = try? await flow.stack.get(service, "/metrics") else { continue }
                    #expect(metrics.text.contains(#"service=""#) && metrics.text.contains(#"replica=""#))
                    exported.formUnion(Self.exported(metrics.text))
                }
                missing = queried.subtracting(exported)
                return missing.isEmpty
            }
            #expect(
                missing.isEmpty,
                "queried by the dashboard, exported by no service: \(missing.sorted()); exported: \(exported.sorted())")
        }
    }
}
