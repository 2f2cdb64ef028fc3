import Configuration
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ServerKit
import Testing

@Suite("CORS: preflights on every path, the allow-origin header on answers, settings checked at start")
struct CORSTests {
    func router(_ cors: CORSSettings) -> Router<BasicRequestContext> {
        let router = ServiceRouter.make(service: "test", cors: cors)
        let routes = ServiceRoutes(router)
        routes.get("/things") { _, _ in "list" }
        routes.get("/broken") { _, _ -> String in throw ServiceFailure(.badRequest, "no", field: "x") }
        return router
    }

    @Test("the default (the real portal's): every origin, preflights 200 with methods, headers and max age")
    func everyOrigin() async throws {
        try await Application(router: router(.default)).test(.router) { client in
            let preflight: HTTPFields = [
                .origin: "https://front.test", .accessControlRequestMethod: "POST",
                .accessControlRequestHeaders: "authorization, content-type",
            ]
            for path in ["/things", "/oauth2/token/", "/anything/at/all"] {
                try await client.execute(uri: path, method: .options, headers: preflight) { response in
                    #expect(response.status == .ok, "\(path)")
                    #expect(response.headers[.accessControlAllowOrigin] == "*")
                    let methods = response.headers[.accessControlAllowMethods] ?? ""
                    #expect(methods.contains("POST") && methods.contains("GET"))
                    let headers = response.headers[.accessControlAllowHeaders] ?? ""
                    #expect(headers.contains("authorization") && headers.contains("content-type"))
                    #expect(response.headers[.accessControlMaxAge] == "3600")
                    #expect(response.headers[.accessControlAllowCredentials] == nil)
                }
            }
            try await client.execute(uri: "/things", method: .get, headers: [.origin: "https://front.test"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == "*")
            }
            try await client.execute(uri: "/broken", method: .get, headers: [.origin: "https://front.test"]) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.accessControlAllowOrigin] == "*", "errors are readable by the page too")
            }
            try await client.execute(uri: "/things", method: .get) { response in
                #expect(response.headers[.accessControlAllowOrigin] == nil, "no Origin, no CORS headers")
            }
            // OPTIONS without a preflight's headers is routed as usual.
            try await client.execute(uri: "/things", method: .options, headers: [.origin: "https://front.test"]) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
    }

    @Test("listed origins with credentials: only those, echoed, with Vary: Origin")
    func listedOrigins() async throws {
        var settings = CORSSettings.default
        settings.allowOrigins = ["https://front.test"]
        settings.allowCredentials = true
        try await Application(router: router(settings)).test(.router) { client in
            try await client.execute(
                uri: "/things", method: .options,
                headers: [.origin: "https://front.test", .accessControlRequestMethod: "GET"]
            ) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "https://front.test")
                #expect(response.headers[.accessControlAllowCredentials] == "true")
                #expect(response.headers[.vary] == "Origin")
            }
            try await client.execute(
                uri: "/things", method: .options,
                headers: [.origin: "https://evil.test", .accessControlRequestMethod: "GET"]
            ) { response in
                #expect(response.headers[.accessControlAllowOrigin] == nil)
                #expect(response.headers[.accessControlAllowMethods] == nil)
            }
            try await client.execute(uri: "/things", method: .get, headers: [.origin: "https://evil.test"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    @Test("settings: credentials with *, or an origin that is not one, stop the start with the key named")
    func badSettings() async throws {
        func load(_ environment: [String: String]) async throws -> ServiceConfiguration {
            let reader = try await ConfigurationSource.reader(
                arguments: ["catalog-service"], environment: environment,
                defaults: ServiceConfiguration.defaults(for: .catalog, peers: [.session]))
            return try ServiceConfiguration(name: .catalog, peers: [.session], reader: reader)
        }
        #expect(try await load([:]).cors == .default)
        await #expect { try await load(["LABPORTAL_HTTP_CORS_ALLOW_CREDENTIALS": "true"]) } throws: { error in
            (error as? ConfigurationError)?.key == "http.cors.allow_credentials"
        }
        await #expect { try await load(["LABPORTAL_HTTP_CORS_ALLOW_ORIGINS": "front.test"]) } throws: { error in
            (error as? ConfigurationError)?.key == "http.cors.allow_origins"
        }
        let listed = try await load([
            "LABPORTAL_HTTP_CORS_ALLOW_ORIGINS": "https://a.test, https://b.test", "LABPORTAL_HTTP_CORS_ALLOW_CREDENTIALS": "true",
        ])
        #expect(listed.cors.allowOrigins == ["https://a.test", "https://b.test"] && listed.cors.allowCredentials)
    }
}
