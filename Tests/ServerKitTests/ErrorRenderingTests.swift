import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ServerKit
import Testing
import Wire

struct Locked: RetryableError {
    var kind: ErrorKind { .locked }
    var publicMessage: String { "the report is not ready yet" }
    var retryAfterSeconds: Int? { 7 }
}

struct SecretInternalType: Error {
    var detail = "password=hunter2"
}

@Suite("REST errors: one JSON shape, mapped from ErrorKind, unknown errors hidden")
struct ErrorRenderingTests {
    func app() -> some ApplicationProtocol {
        let router = Router()
        router.middlewares.add(ServiceHeaderMiddleware(service: "catalog"))
        router.middlewares.add(JSONErrorMiddleware())
        router.get("invalid") { _, _ -> String in
            throw ServiceFailure(.invalid, "capacity must be at least reserved", field: "capacity")
        }
        router.get("bad") { _, _ -> String in throw ServiceFailure(.badRequest, "index_url is required", field: "index_url") }
        router.get("unauthenticated") { _, _ -> String in throw ServiceFailure(.unauthenticated, "no valid credentials") }
        router.get("locked") { _, _ -> String in throw Locked() }
        router.get("capacity") { _, _ -> String in throw ServiceFailure(.unavailable, "No session available") }
        router.get("peer") { _, _ -> String in
            throw WireError(.notFound, "no such session", kind: "not_found")
        }
        router.get("bug") { _, _ -> String in throw SecretInternalType() }
        router.get("http") { _, _ -> String in throw HTTPError(.conflict, message: "already running") }
        return Application(router: router)
    }

    func check(
        _ path: String, status: HTTPResponse.Status, kind: ErrorKind, message: String? = nil, field: String? = nil,
        headers: [HTTPField.Name: String] = [:]
    ) async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == status, "\(path)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                #expect(response.headers[HTTPField.Name(ServiceHeader.name)!] == "catalog")
                let body = try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
                #expect(body.kind == kind)
                if let message { #expect(body.error == message) }
                #expect(body.field == field)
                for (name, value) in headers { #expect(response.headers[name] == value, "\(name)") }
            }
        }
    }

    @Test("each kind has its status, message and field")
    func kinds() async throws {
        try await check("/invalid", status: .unprocessableContent, kind: .invalid,
                        message: "capacity must be at least reserved", field: "capacity")
        try await check("/bad", status: .badRequest, kind: .badRequest, field: "index_url")
        try await check("/unauthenticated", status: .unauthorized, kind: .unauthenticated,
                        headers: [.wwwAuthenticate: #"Bearer realm="LabPortal", Basic realm="LabPortal""#])
        try await check("/locked", status: .init(code: 423), kind: .locked, headers: [.retryAfter: "7"])
        try await check("/capacity", status: .serviceUnavailable, kind: .unavailable, message: "No session available")
        try await check("/peer", status: .notFound, kind: .notFound, message: "no such session")
        try await check("/http", status: .conflict, kind: .conflict, message: "already running")
        try await check("/nowhere", status: .notFound, kind: .notFound, message: "no such resource: GET /nowhere")
    }

    @Test("an unknown error is a 500 that leaks no type name or detail")
    func unknownErrors() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/bug", method: .get) { response in
                #expect(response.status == .internalServerError)
                let text = String(buffer: response.body)
                #expect(!text.contains("SecretInternalType"))
                #expect(!text.contains("hunter2"))
                let body = try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
                #expect(body.kind == .internal)
                #expect(body.error.contains("request"), "carries the request id for the operator")
            }
        }
    }

    @Test("wire mapping: a domain kind becomes its code and data.kind; unknown errors map to nil")
    func wireMapping() {
        let mapped = WireErrorMapping.map(ServiceFailure(.conflict, "already extended", field: "session"))
        #expect(mapped?.code == -32003)
        #expect(mapped?.data == WireError.ErrorData(kind: "conflict", field: "session"))
        #expect(WireErrorMapping.map(ServiceFailure(.invalid, "x"))?.code == -32006)
        #expect(WireErrorMapping.map(ServiceFailure(.unavailable, "x"))?.code == -32004)
        #expect(WireErrorMapping.map(ServiceFailure(.notFound, "x"))?.code == -32002)
        #expect(WireErrorMapping.map(SecretInternalType()) == nil)
        // And back: a peer's error keeps its kind through REST.
        let back = WireError(code: -32004, message: "busy", kind: "rate_limited")
        #expect(back.kind == .rateLimited)
        #expect(ErrorKind.rateLimited.httpStatus == .tooManyRequests)
    }

    @Test("every kind maps to an HTTP status and a wire code")
    func totalMapping() {
        for kind in ErrorKind.allCases {
            #expect(kind.httpStatus.code >= 400)
            #expect(WireError.Code.allCases.contains(kind.wireCode))
        }
    }
}
