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
        }
    }
}
