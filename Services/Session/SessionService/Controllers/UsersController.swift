import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServerKit

/// Users and API tokens (Skytap-style paths, `.json` optional): admins create and read users; admins and user
/// managers set `classrooms_access`.
struct UsersController: Sendable {
    let dependencies: SessionDependencies

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.post("/users", use: create)
        router.post("/users.json", use: create)
        router.get("/users", use: list)
        router.get("/users.json", use: list)
        router.get("/users/:id", use: show)
        router.put("/users/:id", use: update)
        router.post("/users/:id/api_tokens", use: createToken)
        router.post("/users/:id/api_tokens.json", use: createToken)
    }

    static func json(_ user: AuthenticatedUser, createdAt: Date?) -> JSONValue {
        .object([
            ("id", .string(user.id)),
            ("url", .string("/users/\(user.id)")),
            ("login_name", .string(user.username)),
            ("first_name", .string(user.firstName)),
            ("last_name", .string(user.lastName)),
            ("email", .string(user.email)),
            ("role", .string(user.role.rawValue)),
            ("account_role", .string(user.role == .admin ? "admin" : "standard_user")),
            ("classrooms_access", .bool(user.classroomsAccess)),
            ("user_manager", .bool(user.userManager)),
            ("created_at", .string(SkytapTime.string(createdAt))),
        ])
    }

    func admin(_ request: Request) async throws -> AuthenticatedUser {
        let caller = try await dependencies.caller(request)
        guard caller.isAdmin else { throw ServiceFailure(.forbidden, "only administrators may manage users") }
        return caller
    }

    static func id(_ context: BasicRequestContext) throws -> String {
        var id = context.parameters.get("id") ?? ""
        if id.hasSuffix(".json") { id.removeLast(5) }
        guard !id.isEmpty, id.allSatisfy(\.isASCII), id.allSatisfy(\.isNumber) else {
            throw SessionError.noSuchUser(id)
        }
        return id
    }

    @Sendable func create(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        _ = try await admin(request)
        let values = try await SkytapParameters.read(&request)
        guard let login = try values.string("login_name") ?? values.string("username"), !login.isEmpty else {
            throw ServiceFailure(.badRequest, "login_name is required", field: "login_name")
        }
        guard login.count <= 150, login.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@+".contains($0)) })
        else {
            throw ServiceFailure(
                .badRequest, "login_name may hold letters, digits and - _ . @ + (at most 150)", field: "login_name")
        }
        let email = try values.string("email") ?? ""
        if !email.isEmpty && !Validation.isEmail(email) {
            throw ServiceFailure(.badRequest, "email is not a valid email address", field: "email")
        }
        let roleText = try values.string("role") ?? "user"
        guard let role = UserRole(rawValue: roleText), role != .anonymous else {
            throw ServiceFailure(.badRequest, "role must be one of admin, robot, user", field: "role")
        }
        var hash: String?
        if let password = try values.string("password"), !password.isEmpty {
            guard password.count >= 12 else {
                throw ServiceFailure(.badRequest, "password must have at least 12 characters", field: "password")
            }
            hash = try Secrets.hashPassword(password)
        }
        let user = try await dependencies.identity.repository.createUser(
            .init(
                username: login, email: email, firstName: try values.string("first_name") ?? "", lastName: try values.string("last_name") ?? "",
                role: role,
                classroomsAccess: try values.bool("classrooms_access") ?? (role == .admin),
                userManager: try values.bool("user_manager") ?? (role == .admin),
                passwordHash: hash),
            now: dependencies.now())
        context.logger.info("user created", metadata: ["user": "\(user.username)", "role": "\(role.rawValue)"])
        return JSONResponse.make(json: Self.json(user, createdAt: dependencies.now()), status: .created)
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await admin(request)
        let paging = try SkytapPage(request.query)
        let page = try await dependencies.identity.repository.users(offset: paging.offset, limit: paging.count)
        let total = try await dependencies.identity.repository.userCount()
        let headers = paging.headers(returned: page.count, total: total, request: request)
        return JSONResponse.make(json: .array(page.map { Self.json($0.user, createdAt: $0.createdAt) }), headers: headers)
    }

    @Sendable func show(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let id = try Self.id(context)
        guard caller.isAdmin || caller.userManager || caller.id == id else {
            throw ServiceFailure(.forbidden, "you may read only your own user")
        }
        guard let record = try await dependencies.identity.repository.user(id: id) else {
            throw SessionError.noSuchUser(id)
        }
        return JSONResponse.make(json: Self.json(record.user, createdAt: record.createdAt))
    }

    @Sendable func update(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        guard caller.isAdmin || caller.userManager else {
            throw ServiceFailure(.forbidden, "you must be a user manager or administrator to change users")
        }
        let id = try Self.id(context)
        let values = try await SkytapParameters.read(&request)
        guard let record = try await dependencies.identity.repository.user(id: id) else {
            throw SessionError.noSuchUser(id)
        }
        guard let access = try values.bool("classrooms_access") else {
            throw ServiceFailure(.badRequest, "classrooms_access is required (true or false)", field: "classrooms_access")
        }
        guard record.user.role == .user || record.user.role == .robot else {
            throw ServiceFailure(
                .invalid, "classrooms_access cannot be edited for \(record.user.role.rawValue) accounts",
                field: "classrooms_access")
        }
        guard
            let updated = try await dependencies.identity.repository.setClassroomsAccess(
                id: id, to: access, by: caller, now: dependencies.now())
        else {
            throw SessionError.noSuchUser(id)
        }
        dependencies.authenticator.invalidate { _, user in user.id == id }
        dependencies.outbox.wake()
        context.logger.info(
            "classrooms access changed", metadata: ["user": "\(updated.username)", "classrooms_access": "\(access)"])
        return JSONResponse.make(json: Self.json(updated, createdAt: record.createdAt))
    }

    @Sendable func createToken(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let id = try Self.id(context)
        guard caller.isAdmin || caller.id == id else {
            throw ServiceFailure(.forbidden, "only administrators may make API tokens for other users")
        }
        guard let record = try await dependencies.identity.repository.user(id: id) else {
            throw SessionError.noSuchUser(id)
        }
        let token = try await dependencies.identity.repository.issueAPIToken(userID: id, now: dependencies.now())
        context.logger.info("API token created", metadata: ["user": "\(record.user.username)"])
        return JSONResponse.make(
            json: .object([("user", .string(id)), ("login_name", .string(record.user.username)), ("value", .string(token))]),
            status: .created)
    }
}
