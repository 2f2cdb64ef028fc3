import Contracts
import Foundation
import TestSupport
import Testing

/// Real nginx, rendered from deploy/nginx, in front of the real services: each route prefix reaches its service.
@Suite("nginx routing", .serialized)
struct NginxRoutingTests {
    static let routes: [(String, String)] = [
        ("/workshops/catalog/environments/", "catalog"),
        ("/workshops/catalog/workshops/", "catalog"),
        ("/workshops/environment/lab-w01/status/", "catalog"),
        ("/workshops/environment/lab-w01/status", "catalog"),
        ("/workshops/environment/lab-w01/request/?index_url=x", "session"),
        ("/workshops/environment/lab-w01/create/", "session"),
        ("/workshops/session/lab-w01-s001/activate/?token=t", "session"),
        ("/workshops/session/lab-w01-s001/", "session"),
        ("/workshops/user/u1/sessions/", "session"),
        ("/oauth2/token/", "session"),
        ("/oauth2/revoke-token/", "session"),
        ("/users/12", "session"),
        ("/v2/templates", "classroom"),
        ("/v2/templates/ws1.json", "classroom"),
        ("/v2/courses.json", "classroom"),
        ("/v2/courses/3.json", "classroom"),
        ("/courses.json", "classroom"),
        ("/courses/3/classes.json", "classroom"),
        ("/v2/classes/5", "classroom"),
        ("/v2/classes/5/labs.json", "classroom"),
        ("/v2/classes/5/labs/create_multiple.json", "classroom"),
        ("/v2/classes/5/configurations.json", "classroom"),
        ("/v2/labs/7.json", "classroom"),
        ("/v2/lab/7", "classroom"),
        ("/instructor/5?access_code=abc", "classroom"),
        ("/desktops/7", "classroom"),
        ("/v2/courses/exports.json", "report"),
        ("/v2/courses/exports/9.json", "report"),
        ("/v2/classes/exports.json", "report"),
        ("/v2/classes/exports/9.csv", "report"),
        ("/v2/classes/5/labs/exports.json", "report"),
        ("/v2/labs/exports/9.csv.gz", "report"),
        ("/auditing/exports.json", "report"),
        ("/auditing/exports/9", "report"),
        ("/workshops/sessions/exports/", "report"),
        ("/workshops/sessions/exports/9.csv", "report"),
        ("/healthz/catalog", "catalog"),
        ("/healthz/session", "session"),
        ("/healthz/classroom", "classroom"),
        ("/healthz/report", "report"),
    ]

    @Test("every route prefix of DESIGN §3 reaches its service through nginx")
    func routes() async throws {
        guard let nginx = NginxProxy.binary else {
            #expect(!NginxProxy.required, "nginx is required in this run but is missing")
            return
        }
        try await LocalStack.with { stack in
            try stack.startAll()
            for name in ["catalog", "session", "classroom", "report"] { try await stack.waitReady(name) }

            let proxy = try await NginxProxy(stack: stack, binary: nginx)
            defer { proxy.stop() }
            let port = proxy.port
            for (path, service) in Self.routes {
                let answer = try await httpGet("http://127.0.0.1:\(port)\(path)")
                #expect(answer.header(ServiceHeader.name) == service, "\(path) → \(service), got \(answer.header(ServiceHeader.name) ?? "none") (\(answer.status))")
            }
            let unknown = try await httpGet("http://127.0.0.1:\(port)/nowhere")
            #expect(unknown.status == 404)
            #expect(unknown.json?["error"] != nil)
            // Each service's readiness, through the proxy's upstream, is the same as direct.
            let ready = try await httpGet("http://127.0.0.1:\(port)/workshops/catalog/environments/")
            #expect(ready.header("X-Request-Id")?.isEmpty == false, "the request id passes through")

            // `?access_token=` stands for the Bearer header, on every service, and no secret in a query string or
            // a Referer reaches the access log.
            let token = try await robotToken(origin: proxy.base, credentials: try WorkshopFlowTests.credentials(stack.home))
            let sessions = try await httpGet("\(proxy.base)/workshops/user/nobody/sessions/?access_token=\(token)&x=1")
            #expect(sessions.status == 200, "\(sessions.text)")
            let catalog = try await httpGet("\(proxy.base)/workshops/catalog/environments/?access_token=\(token)")
            #expect(catalog.status == 200, "\(catalog.text)")
            #expect(try await httpGet("\(proxy.base)/workshops/catalog/environments/?access_token=wrong").status == 401)
            _ = try await httpRequest(
                "GET", "\(proxy.base)/workshops/session/nope/activate/?token=ActivationSecret1&index_url=x&password=p2&access_token=Third3",
                headers: ["Referer": "\(proxy.base)/workshops/session/s/activate/?token=RefererSecret4&index_url=y"])
            let logged = await eventually(attempts: 50, interval: .milliseconds(100)) {
                ((try? String(contentsOfFile: "\(stack.home)/nginx/logs/access.log", encoding: .utf8)) ?? "").contains("nope/activate")
            }
            #expect(logged)
            let log = (try? String(contentsOfFile: "\(stack.home)/nginx/logs/access.log", encoding: .utf8)) ?? ""
            for secret in [token, "ActivationSecret1", "RefererSecret4", "Third3"] {
                #expect(!log.contains(secret), "\(secret) is in the access log:\n\(log.suffix(2000))")
            }
            #expect(log.contains("access_token=REDACTED&x=1"), "\(log.suffix(2000))")
            #expect(log.contains("token=REDACTED&index_url=x"))

            // A page on another origin may call the API: preflights on the public paths of every service answer 200.
            for (path, service) in [
                ("/oauth2/token/", "session"), ("/workshops/catalog/environments/", "catalog"),
                ("/workshops/environment/x/request/", "session"), ("/v2/classes.json", "classroom"),
                ("/v2/labs/exports/1.json", "report"),
            ] {
                let preflight = try await httpRequest(
                    "OPTIONS", "\(proxy.base)\(path)",
                    headers: ["Origin": "http://front.test", "Access-Control-Request-Method": "POST",
                              "Access-Control-Request-Headers": "authorization"])
                #expect(preflight.status == 200, "\(path): \(preflight.status)")
                #expect(preflight.header("Access-Control-Allow-Origin") == "*", "\(path)")
                #expect(preflight.header("Access-Control-Allow-Headers")?.contains("authorization") == true)
                #expect(preflight.header(ServiceHeader.name) == service)
            }
            let fromPage = try await httpRequest(
                "GET", "\(proxy.base)/workshops/catalog/environments/", headers: ["Origin": "http://front.test", "Authorization": "Bearer \(token)"])
            #expect(fromPage.header("Access-Control-Allow-Origin") == "*")
        }
    }
}

@Suite("nginx's own errors", .serialized)
struct NginxErrorTests {
    @Test("errors nginx answers itself are the JSON error body with the request id: bad path, large body, no upstream, unknown path")
    func jsonErrors() async throws {
        guard let nginx = NginxProxy.binary else {
            #expect(!NginxProxy.required, "nginx is required in this run but is missing")
            return
        }
        // No service is started: every upstream refuses the connection.
        try await LocalStack.with { stack in
            let proxy = try await NginxProxy(stack: stack, binary: nginx)
            defer { proxy.stop() }
            let cases: [(String, String, Data?, Int, String)] = [
                ("GET", "/v2/classes/%00.json", nil, 400, "bad_request"),
                ("POST", "/v2/courses.json", Data(count: 3 << 20), 413, "too_large"),
                ("GET", "/workshops/catalog/environments/", nil, 503, "unavailable"),
                ("GET", "/nowhere/at/all", nil, 404, "not_found"),
            ]
            for (method, path, body, status, kind) in cases {
                let answer = try await httpRequest(
                    method, "\(proxy.base)\(path)", headers: ["X-Request-Id": "req-\(status)"], body: body)
                #expect(answer.status == status, "\(method) \(path): \(answer.status) \(answer.text)")
                #expect(answer.header("Content-Type")?.hasPrefix("application/json") == true, "\(path): \(answer.text)")
                #expect(answer.json?["kind"] as? String == kind, "\(path): \(answer.text)")
                // A request line nginx cannot read is refused before its headers are read: it gets nginx's own id.
                let id = status == 400 ? try #require(answer.header("X-Request-Id")) : "req-\(status)"
                #expect(answer.json?["request_id"] as? String == id, "\(path): \(answer.text)")
                #expect(answer.header("X-Request-Id") == id)
            }
            // An id that is not a plain token is replaced, so that it cannot break the JSON it is echoed in.
            let odd = try await httpRequest("GET", "\(proxy.base)/nowhere", headers: ["X-Request-Id": #"a"b"#])
            let id = try #require(odd.json?["request_id"] as? String)
            #expect(id != #"a"b"# && !id.isEmpty)
        }
    }
}
