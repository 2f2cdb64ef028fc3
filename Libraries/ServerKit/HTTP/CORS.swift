import Configuration
import Foundation
import HTTPTypes
import Hummingbird

/// Cross-origin access to a service's REST routes (`http.cors.*`). The default is the real Educates portal's: every
/// origin (`*`), no credentials. A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
/// 200 on any path, before routing; other answers to a request with an `Origin` the settings allow carry
/// `Access-Control-Allow-Origin`.
public struct CORSSettings: Sendable, Equatable {
    /// `["*"]` for every origin; empty for no CORS headers at all.
    public var allowOrigins: [String]
    public var allowMethods: [String]
    public var allowHeaders: [String]
    public var maxAgeSeconds: Int
    /// Never together with `*` (browsers refuse it, and it would hand any site the user's cookies).
    public var allowCredentials: Bool

    public static let `default` = CORSSettings(
        allowOrigins: ["*"], allowMethods: ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"],
        allowHeaders: ["accept", "authorization", "content-type", "origin", "x-request-id"], maxAgeSeconds: 3600,
        allowCredentials: false)

    public init(allowOrigins: [String], allowMethods: [String], allowHeaders: [String], maxAgeSeconds: Int, allowCredentials: Bool) {
        self.allowOrigins = allowOrigins
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
        self.maxAgeSeconds = maxAgeSeconds
        self.allowCredentials = allowCredentials
    }

    var allowsAll: Bool { allowOrigins.contains("*") }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, or nil when it is not allowed.
    func allowedOrigin(_ origin: String) -> String? {
        if allowsAll { return "*" }
        return allowOrigins.contains(origin) ? origin : nil
    }

    /// Reads `http.cors.*`.
    public init(reader: ConfigReader) throws {
        func list(_ key: String) throws -> [String] {
            try reader.requireString(key).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        allowOrigins = try list("http.cors.allow_origins")
        allowMethods = try list("http.cors.allow_methods").map { $0.uppercased() }
        allowHeaders = try list("http.cors.allow_headers").map { $0.lowercased() }
        maxAgeSeconds = try reader.requireInt("http.cors.max_age_s", in: 0...86_400)
        allowCredentials = try reader.requireBool("http.cors.allow_credentials")
        if allowCredentials && allowsAll {
            throw ConfigurationError(
                key: "http.cors.allow_credentials", problem: "cannot be true while http.cors.allow_origins is *; list the origins")
        }
        for origin in allowOrigins where origin != "*" && !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            throw ConfigurationError(key: "http.cors.allow_origins", problem: "\(origin) is not * or an http(s) origin")
        }
    }
}

struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let settings: CORSSettings

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !settings.allowOrigins.isEmpty, let origin = request.headers[.origin] else {
            return try await next(request, context)
        }
        let allowed = settings.allowedOrigin(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [:]
            if let allowed {
                headers[.accessControlAllowOrigin] = allowed
                headers[.accessControlAllowMethods] = settings.allowMethods.joined(separator: ", ")
                headers[.accessControlAllowHeaders] = settings.allowHeaders.joined(separator: ", ")
                headers[.accessControlMaxAge] = String(settings.maxAgeSeconds)
                if settings.allowCredentials { headers[.accessControlAllowCredentials] = "true" }
            }
            if !settings.allowsAll { headers[.vary] = "Origin" }
            headers[.contentLength] = "0"
            return Response(status: .ok, headers: headers)
        }
        var response = try await next(request, context)
        if let allowed {
            response.headers[.accessControlAllowOrigin] = allowed
            if settings.allowCredentials { response.headers[.accessControlAllowCredentials] = "true" }
        }
        if !settings.allowsAll { response.headers[values: .vary].append("Origin") }
        return response
    }
}
