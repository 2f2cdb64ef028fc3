import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ServerKit
import Testing

@Suite("A known path asked with another method: 405 with Allow, as JSON")
struct MethodNotAllowedTests {
    @Test("405 names the methods of the path (parameters and groups too); unknown paths stay 404")
    func allow() async throws {
        let router = ServiceRouter.make(service: "test")
        let routes = ServiceRoutes(router)
        routes.get("/things") { _, _ in "list" }
        routes.post("/things") { _, _ in "made" }
        routes.get("/things/:id") { _, _ in "one" }
        routes.put("/things/:id") { _, _ in "edited" }
        routes.group("/v2").delete("/gone/:id") { _, _ in HTTPResponse.Status.noContent }
        try await Application(router: router).test(.router) { client in
            let cases: [(HTTPRequest.Method, String, HTTPResponse.Status, String?)] = [
                (.get, "/things", .ok, nil),
                (.delete, "/things", .methodNotAllowed, "GET, HEAD, POST"),
                (.post, "/things/42", .methodNotAllowed, "GET, HEAD, PUT"),
                (.get, "/v2/gone/1", .methodNotAllowed, "DELETE"),
                (.delete, "/v2/gone/1", .noContent, nil),
                (.post, "/nothing/here", .notFound, nil),
            ]
            for (method, path, status, allow) in cases {
                try await client.execute(uri: path, method: method) { response in
                    #expect(response.status == status, "\(method) \(path)")
                    #expect(response.headers[.allow] == allow, "\(method) \(path)")
                    if status.code >= 400 {
                        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                        let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                        #expect(body?["kind"] as? String == (status == .notFound ? "not_found" : "method_not_allowed"), "\(body ?? [:])")
                    }
                }
            }
        }
    }
}
