import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServerKit

/// The Educates session-management API (`educates-session-management.txt`): session requests, activation, the
/// user's sessions, and schedule / extend / terminate. Paths answer with and without the trailing slash.
struct WorkshopSessionController: Sendable {
    let dependencies: SessionDependencies

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/workshops/environment/:env/request", use: requestSession)
        router.post("/workshops/environment/:env/request", use: requestSession)
        router.get("/workshops/session/:session/activate", use: activate)
        router.get("/workshops/user/:user/sessions", use: userSessions)
        for method in [HTTPRequest.Method.get, .post] {
            router.on("/workshops/session/:session/schedule", method: method, use: schedule)
            router.on("/workshops/session/:session/extend", method: method, use: extend)
            router.on("/workshops/session/:session/terminate", method: method, use: terminate)
        }
        router.get("/workshops/session/:session/config", use: config)
        router.get("/workshops/session/:session/authorize", use: authorize)
        router.post("/workshops/session/:session/event", use: event)
    }

    // MARK: Request

    @Sendable func requestSession(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        _ = try await dependencies.robot(request, action: "Session requests")
        let environmentName = try Validation.slug(context.parameters.get("env"), field: "env")
        let snapshot = try await dependencies.portal.current()
        guard let environment = snapshot.environment(named: environmentName) else {
            throw SessionError.environmentDoesNotExist
        }
        let query = try request.query.refusingNUL()
        guard let indexURL = (query["index_url"] ?? query["redirect_url"]).flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ServiceFailure(.badRequest, "Need redirect URL for workshop index", field: "index_url")
        }
        let email = query["email"] ?? ""
        if !email.isEmpty && !Validation.isEmail(email) {
            throw ServiceFailure(.badRequest, "Invalid email address provided", field: "email")
        }
        var timeout = 60
        if let text = query["timeout"], !text.isEmpty {
            guard let value = Int(text), value >= 0, value <= 86_400 else {
                throw ServiceFailure(
                    .badRequest, "timeout must be a whole number of seconds from 0 to 86400", field: "timeout")
            }
            timeout = value
        }
        let parameters = try Self.parameters(try await request.bodyData(limit: 1 << 20))

        // A front end's own user id is used as the username (made on its first request, reused afterwards, as the
        // real portal does); without one, each request is a new user with a uuid.
        let supplied = query["user"].flatMap { $0.isEmpty ? nil : $0 }
        func requestedUser() async throws -> RequestedUser {
            guard let name = supplied else {
                return .new(newUser(UUID().uuidString.lowercased()))
            }
            guard let existing = try await dependencies.identity.repository.user(username: name) else {
                guard Validation.isFrontEndUserID(name) else {
                    throw ServiceFailure(
                        .badRequest, "user must be 1 to 150 of the characters A-Z a-z 0-9 - _ @ .", field: "user")
                }
                return .new(newUser(name))
            }
            guard existing.user.role.takesSessionRequests else { throw SessionError.requestsNotPermittedForUser }
            return .existing(existing.user)
        }
        func newUser(_ username: String) -> IdentityRepository.NewUser {
            .init(
                username: username, email: email, firstName: query["first_name"] ?? query["firstname"] ?? "",
                lastName: query["last_name"] ?? query["lastname"] ?? "", role: .anonymous)
        }
        func allocation(_ user: RequestedUser) -> AllocationRequest {
            AllocationRequest(
                environment: environment, limits: snapshot.portal.sessions, user: user,
                reacquire: query["session"].flatMap { $0.isEmpty ? nil : $0 }, withToken: true, timeout: timeout,
                indexURL: indexURL, analyticsURL: query["analytics_url"], parameters: parameters)
        }
        let (outcome, user) = try await dependencies.sessions.allocate(
            allocation(try await requestedUser()), now: dependencies.now())
        SessionMetrics.requested(environment: environment.name, outcome: outcome)
        switch outcome {
        case .unavailable:
            throw SessionError.noSessionAvailable
        case .cannotReacquire:
            throw SessionError.cannotBeReacquired
        case .allocated(let session, let token, let via):
            if via != .reused {
                dependencies.runtime.wake()
                context.logger.info(
                    "session allocated",
                    metadata: ["session": "\(session.name)", "user": "\(user.username)", "state": "\(session.state.rawValue)"])
            }
            let url = "/workshops/session/\(session.name)/activate/?token=\(token ?? "")&index_url=\(FormParameters.encode(indexURL))"
            return JSONResponse.make(
                json: .object([
                    ("name", .string(session.name)),
                    ("session", .string(session.name)),
                    ("user", .string(user.username)),
                    ("url", .string(url)),
                    ("namespace", .string(session.name)),
                    ("workshop", .string(session.workshop)),
                    ("environment", .string(session.environment)),
                ]))
        }
    }

    /// The optional body `{"parameters": [{"name": "P", "value": "v"}]}`.
    static func parameters(_ body: Data) throws -> [RequestParameter] {
        guard !body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) else { return [] }
        guard let object = try? JSONSerialization.jsonObject(with: body) else {
            throw ServiceFailure(.badRequest, "Malformed JSON request payload", field: "parameters")
        }
        guard let dictionary = object as? [String: Any] else {
            throw ServiceFailure(.badRequest, "Invalid JSON request payload: expected an object", field: "parameters")
        }
        guard let list = dictionary["parameters"] else { return [] }
        guard let items = list as? [Any] else {
            throw ServiceFailure(.badRequest, "Invalid JSON request payload: parameters must be a list", field: "parameters")
        }
        var result: [RequestParameter] = []
        for (index, item) in items.enumerated() {
            guard let entry = item as? [String: Any], let name = entry["name"] as? String, !name.isEmpty,
                let value = entry["value"] as? String
            else {
                throw ServiceFailure(
                    .badRequest,
                    "Invalid JSON request payload: each parameter needs a non-empty string name and a string value",
                    field: "parameters[\(index)]")
            }
            result.append(RequestParameter(name: name, value: value))
        }
        return result
    }

    // MARK: Activation

    @Sendable func activate(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("session"), field: "session")
        let query = request.query
        guard let token = query["token"], !token.isEmpty else {
            throw ServiceFailure(.badRequest, "No access token supplied", field: "token")
        }
        let session = try await dependencies.sessions.session(named: name)
        let browser = try await dependencies.browserUser(request)
        if let session, session.state == .stopped, let browser, browser.id == session.ownerID,
            let index = query["index_url"] ?? session.indexURL
        {
            return Redirects.notify(index, "session-deleted")
        }
        guard var session, session.state != .stopped else {
            throw ServiceFailure(.badRequest, "Invalid session name supplied", field: "session")
        }
        guard dependencies.sessions.tokenMatches(token, session: session), let ownerID = session.ownerID else {
            throw ServiceFailure(.badRequest, "Invalid access token for session", field: "token")
        }
        if session.state != .running || session.pending {
            let settings = try? await dependencies.portal.current().environment(named: session.environment)?.settings
            guard let activated = try await dependencies.sessions.activate(name, settings: settings, now: dependencies.now())
            else { throw ServiceFailure(.badRequest, "Invalid session name supplied", field: "session") }
            session = activated
            context.logger.info("session activated", metadata: ["session": "\(name)"])
        }
        var response = Response.redirect(to: "/workshops/session/\(name)/", type: .found)
        if browser?.id != ownerID {
            let cookie = try await dependencies.identity.repository.issueBrowserToken(
                userID: ownerID, now: dependencies.now())
            response.setCookie(
                Cookie(
                    name: BrowserCookies.user, value: cookie, maxAge: Int(IdentityRepository.browserLifetime),
                    path: "/workshops/", httpOnly: true))
        }
        if let index = query["index_url"], !index.isEmpty {
            response.setCookie(
                Cookie(name: BrowserCookies.index, value: FormParameters.encode(index), path: "/workshops/", httpOnly: true))
        }
        return response
    }

    // MARK: A user's sessions

    @Sendable func userSessions(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.robot(request, action: "Session requests")
        let username = try Validation.slug(context.parameters.get("user"), field: "user")
        guard let user = try await dependencies.identity.repository.user(username: username) else {
            return JSONResponse.make(json: .object([("user", .string(username)), ("sessions", .array([]))]))
        }
        let snapshot = try? await dependencies.portal.current()
        let now = dependencies.now()
        let entries: [JSONValue] = try await dependencies.sessions.sessions(ownerID: user.user.id).map { session in
            let timing = SessionTiming(
                session: session, settings: snapshot?.environment(named: session.environment)?.settings, now: now)
            var members: [(String, JSONValue)] = [
                ("name", .string(session.name)),
                ("namespace", .string(session.name)),
                ("workshop", .string(session.workshop)),
                ("environment", .string(session.environment)),
                ("started", .string(EducatesTime.string(session.startedAt))),
            ]
            if session.expiresAt != nil {
                members.append(("expires", .string(EducatesTime.string(session.expiresAt))))
                members.append(("countdown", .int(timing.countdown)))
                members.append(("extendable", .bool(timing.extendable)))
            }
            return .object(members)
        }
        return JSONResponse.make(json: .object([("user", .string(username)), ("sessions", .array(entries))]))
    }

    // MARK: Schedule, extend, terminate

    /// The live session `name` (STARTING to STOPPING), if the caller may act on it.
    // MARK: Analytics

    /// `{"event": {"name": "…", "data": {…}}}` → `{}`. The event is forwarded to the session's `analytics_url` (if it
    /// was requested with one) by the analytics outbox.
    @Sendable func event(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let (session, caller) = try await permittedSession(request, context: context)
        let body = try await request.bodyData(limit: 64 << 10)
        let shape = #"the body must be {"event": {"name": "…", "data": {…}}}"#
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw ServiceFailure(.badRequest, "Invalid JSON request payload: \(shape)", field: "event")
        }
        guard let event = object["event"] as? [String: Any] else {
            throw ServiceFailure(.badRequest, "event is required: \(shape)", field: "event")
        }
        guard let name = event["name"] as? String, !name.isEmpty, name.count <= 256 else {
            throw ServiceFailure(.badRequest, "event.name must be a string of 1 to 256 characters", field: "event.name")
        }
        let data = event["data"] ?? [String: Any]()
        guard data is [String: Any] || data is NSNull else {
            throw ServiceFailure(.badRequest, "event.data must be an object", field: "event.data")
        }
        guard let url = session.analyticsURL, !url.isEmpty else { return JSONResponse.make(json: .object([])) }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil
        else {
            context.logger.warning(
                "analytics event not forwarded: the session's analytics_url is not an http(s) URL",
                metadata: ["session": "\(session.name)", "analytics_url": "\(url)"])
            return JSONResponse.make(json: .object([]))
        }
        let portal = try? await dependencies.portal.current()
        let payload: [String: Any] = [
            "portal": [
                "name": portal?.portal.name ?? "", "uid": portal?.portal.uid ?? "", "generation": portal?.generation ?? 0,
                "url": portal?.portal.url ?? "",
            ],
            "event": [
                "name": name, "timestamp": EducatesTime.string(dependencies.now()) ?? "",
                "user": session.ownerName ?? "", "by": caller.username, "session": session.name,
                "environment": session.environment, "workshop": session.workshop, "data": data,
            ],
        ]
        let bytes = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys, .withoutEscapingSlashes])
        try await dependencies.analytics.enqueue(session: session.name, url: url, payload: Array(bytes))
        return JSONResponse.make(json: .object([]))
    }

    /// `config/`: where the session's lab is (null until it is made) and its password, for its owner, a robot or
    /// an admin.
    @Sendable func config(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (session, _) = try await permittedSession(request, context: context)
        return JSONResponse.make(
            json: .object([
                ("url", session.url.map(JSONValue.string) ?? .null),
                ("password", .string(Secrets.sessionPassword(key: dependencies.sessions.key, session: session.name))),
            ]))
    }

    /// `authorize/`: whose session it is, who asks, and whether the caller is staff (an admin).
    @Sendable func authorize(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (session, caller) = try await permittedSession(request, context: context)
        return JSONResponse.make(
            json: .object([
                ("owner", .string(session.ownerName ?? "")),
                ("user", .string(caller.username)),
                ("staff", .bool(caller.role == .admin)),
            ]))
    }

    func permittedSession(_ request: Request, context: BasicRequestContext) async throws -> (SessionRecord, AuthenticatedUser) {
        let caller = try await dependencies.sessionCaller(request)
        let name = try Validation.slug(context.parameters.get("session"), field: "session")
        guard let session = try await dependencies.sessions.session(named: name), session.state != .stopped else {
            throw SessionError.noSuchSession(name, field: true)
        }
        guard caller.isRobotOrAdmin || caller.id == session.ownerID else {
            throw ServiceFailure(.forbidden, "Access to session not permitted")
        }
        return (session, caller)
    }

    func scheduleMembers(_ session: SessionRecord, extended: Bool?) async -> JSONValue {
        let settings = try? await dependencies.portal.current().environment(named: session.environment)?.settings
        let timing = SessionTiming(session: session, settings: settings, now: dependencies.now())
        var members: [(String, JSONValue)] = [
            ("status", .string(session.pending ? SessionState.waiting.rawValue : session.state.rawValue)),
            ("started", .string(EducatesTime.string(session.startedAt))),
            ("expires", .string(EducatesTime.string(session.expiresAt))),
        ]
        if let extended { members.append(("extended", .bool(extended))) }
        members.append(("expiring", .bool(timing.expiring)))
        if session.expiresAt != nil {
            members.append(("countdown", .int(timing.countdown)))
            members.append(("extendable", .bool(timing.extendable)))
        }
        return .object(members)
    }

    @Sendable func schedule(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (session, _) = try await permittedSession(request, context: context)
        return JSONResponse.make(json: await scheduleMembers(session, extended: nil))
    }

    @Sendable func extend(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (session, _) = try await permittedSession(request, context: context)
        guard session.ownerID != nil else { throw SessionError.sessionNotInUse }
        let settings = try? await dependencies.portal.current().environment(named: session.environment)?.settings
        guard let (updated, extended) = try await dependencies.sessions.extend(
            session.name, settings: settings, now: dependencies.now())
        else { throw SessionError.noSuchSession(session.name, field: true) }
        if extended {
            context.logger.info(
                "session extended",
                metadata: ["session": "\(session.name)", "expires": "\(EducatesTime.string(updated.expiresAt) ?? "")"])
        }
        return JSONResponse.make(json: await scheduleMembers(updated, extended: extended))
    }

    @Sendable func terminate(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let (session, _) = try await permittedSession(request, context: context)
        guard session.ownerID != nil else { throw SessionError.sessionNotInUse }
        guard let stopped = try await dependencies.sessions.terminate(session.name, now: dependencies.now()) else {
            throw SessionError.noSuchSession(session.name, field: true)
        }
        dependencies.runtime.wake()
        context.logger.info("session terminated", metadata: ["session": "\(session.name)"])
        return JSONResponse.make(
            json: .object([
                ("started", .string(EducatesTime.string(stopped.startedAt))),
                ("expires", .string(EducatesTime.string(stopped.expiresAt))),
            ]))
    }
}

/// Checks of path segments and parameters, with errors naming the field.
enum Validation {
    /// A path segment `<name>`: `[-A-Za-z0-9_]+`.
    static func slug(_ value: String?, field: String) throws -> String {
        guard let value, !value.isEmpty,
            value.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (isASCIIAlphanumeric($0)) })
        else {
            throw ServiceFailure(.notFound, "\(field) must match [-A-Za-z0-9_]+", field: field)
        }
        return value
    }

    static func isASCIIAlphanumeric(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }

    /// A front end's own user id on `/request/`: what the real portal accepts there, `[-A-Za-z0-9_@.]`, at most 150
    /// characters (Django's username length).
    static func isFrontEndUserID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 150
            && value.utf8.allSatisfy {
                isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "@")
                    || $0 == UInt8(ascii: ".")
            }
    }

    /// A plausible email address: one `@`, a local part, and a dotted domain without spaces.
    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix("."), text.count <= 254
        else { return false }
        return !text.contains(where: { $0.isWhitespace || $0 == "," || $0 == "<" || $0 == ">" })
    }
}

/// Redirects back to the index URL with a `notification`, merged into any query it already has.
enum Redirects {
    static func notify(_ index: String, _ notification: String) -> Response {
        Response.redirect(to: withNotification(index, notification), type: .found)
    }

    static func withNotification(_ index: String, _ notification: String) -> String {
        var base = index
        var fragment = ""
        if let hash = base.firstIndex(of: "#") {
            fragment = String(base[hash...])
            base = String(base[..<hash])
        }
        let separator = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return base + separator + "notification=" + FormParameters.encode(notification) + fragment
    }
}
