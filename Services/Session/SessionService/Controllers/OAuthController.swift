import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServerKit

/// OAuth2 for the Educates paths: `POST /oauth2/token/` (password and refresh_token grants for any client;
/// client_credentials for a confidential client with a service account; a client authenticates by HTTP Basic or in
/// the form body, a public one by its id alone) and `POST /oauth2/revoke-token/`. Answers and errors have the shapes of
/// django-oauth-toolkit, which Educates clients expect.
struct OAuthController: Sendable {
    let dependencies: SessionDependencies

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.post("/oauth2/token", use: token)
        router.post("/oauth2/revoke-token", use: revoke)
    }

    static func oauthError(_ status: HTTPResponse.Status, _ error: String, _ description: String? = nil) -> Response {
        var members: [(String, JSONValue)] = [("error", .string(error))]
        if let description { members.append(("error_description", .string(description))) }
        var headers: HTTPFields = [.cacheControl: "no-store", HTTPField.Name("Pragma")!: "no-cache"]
        if status == .unauthorized { headers[.wwwAuthenticate] = #"Basic realm="LabPortal""# }
        return JSONResponse.make(json: .object(members), status: status, headers: headers)
    }

    /// The client of the request (HTTP Basic first, then the form): checked against its secret when one is sent,
    /// and by its id alone only when it is public.
    func client(_ request: Request, form: FormParameters) async throws -> OAuthClient? {
        var id = form["client_id"]
        var secret = form["client_secret"]
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
            let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            id = String(text[..<colon]).removingPercentEncoding
            secret = String(text[text.index(after: colon)...]).removingPercentEncoding
        }
        guard let id, !id.isEmpty else { return nil }
        return try await dependencies.identity.repository.authenticateClient(id: id, secret: secret)
    }

    static func form(_ request: inout Request) async throws -> FormParameters {
        let body = try await request.bodyData(limit: 64 << 10)
        return FormParameters(String(decoding: body, as: UTF8.self))
    }

    @Sendable func token(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let form = try await Self.form(&request)
        guard let client = try await client(request, form: form) else {
            return Self.oauthError(.unauthorized, "invalid_client")
        }
        let clientID = client.id
        let repository = dependencies.identity.repository
        let now = dependencies.now()
        let issued: IssuedTokens
        switch form["grant_type"] {
        case "password":
            guard let username = form["username"], let password = form["password"],
                let record = try await repository.user(username: username), let hash = record.passwordHash,
                Secrets.verifyPassword(password, against: hash)
            else {
                context.logger.notice("password grant refused", metadata: ["user": "\(form["username"] ?? "")"])
                return Self.oauthError(.badRequest, "invalid_grant", "Invalid credentials given.")
            }
            issued = try await repository.issueGrant(userID: record.user.id, clientID: clientID, now: now)
            context.logger.info("token issued", metadata: ["user": "\(username)", "grant": "password"])
        case "refresh_token":
            guard let refresh = form["refresh_token"],
                let (tokens, _) = try await repository.refresh(refresh, clientID: clientID, now: now)
            else { return Self.oauthError(.badRequest, "invalid_grant", "Invalid refresh token.") }
            issued = tokens
        case "client_credentials":
            // A confidential client, proved by its secret, for its own service account; no refresh token (RFC 6749
            // §4.4.3): the client asks again.
            guard client.kind == .confidential, client.secretChecked, let serviceUserID = client.serviceUserID,
                let account = try await repository.user(id: serviceUserID)
            else { return Self.oauthError(.badRequest, "unauthorized_client") }
            let tokens = try await repository.issueGrant(userID: account.user.id, clientID: clientID, now: now)
            context.logger.info("token issued", metadata: ["user": "\(account.user.username)", "grant": "client_credentials"])
            return Self.tokens(tokens, withRefresh: false)
        case "authorization_code", "implicit":
            return Self.oauthError(.badRequest, "unauthorized_client")
        case nil, "":
            return Self.oauthError(.badRequest, "unsupported_grant_type", "grant_type is required.")
        default:
            return Self.oauthError(.badRequest, "unsupported_grant_type")
        }
        return Self.tokens(issued, withRefresh: true)
    }

    /// The token answer of django-oauth-toolkit, never cached.
    static func tokens(_ issued: IssuedTokens, withRefresh: Bool) -> Response {
        var members: [(String, JSONValue)] = [
            ("access_token", .string(issued.accessToken)),
            ("expires_in", .int(issued.expiresIn)),
            ("token_type", "Bearer"),
            ("scope", "user:info"),
        ]
        if withRefresh { members.append(("refresh_token", .string(issued.refreshToken))) }
        return JSONResponse.make(json: .object(members), headers: [.cacheControl: "no-store", HTTPField.Name("Pragma")!: "no-cache"])
    }

    @Sendable func revoke(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let form = try await Self.form(&request)
        guard let clientID = try await client(request, form: form)?.id else {
            return Self.oauthError(.unauthorized, "invalid_client")
        }
        guard let token = form["token"], !token.isEmpty else {
            return Self.oauthError(.badRequest, "invalid_request", "token is required.")
        }
        try await dependencies.identity.repository.revoke(token, clientID: clientID)
        // This replica stops accepting it at once; others within the 30 s cache lifetime.
        dependencies.authenticator.invalidate { key, _ in key.hasSuffix(" \(token)") }
        context.logger.info("token revoked")
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }
}
