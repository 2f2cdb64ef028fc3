import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerKit
@testable import SessionService
import Storage
import Synchronization
import TestSupport
import Testing

/// A provisioner for tests: records what it was asked, answers at once, and fails while told to.
final class StubProvisioner: Provisioner {
    let created = Mutex<[String]>([])
    let deleted = Mutex<[String]>([])
    /// Every action in order, as "action:session" ("create-stopped" for a lab made without running it).
    let actions = Mutex<[String]>([])
    let failing = Mutex<String?>(nil)
    /// Sessions whose lab `isAlive` says is gone.
    let dead = Mutex<Set<String>>([])
    /// While set, `create` waits (at most 30 s) before it answers: labs that are still starting.
    let holding = Mutex(false)
    /// The requests `create` was given.
    let creations = Mutex<[ProvisionRequest]>([])

    func create(_ request: ProvisionRequest) async throws -> ProvisionResult {
        creations.withLock { $0.append(request) }
        for _ in 0..<3000 where holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        if let message = failing.withLock({ $0 }) { throw ProvisionError(message) }
        created.withLock { $0.append(request.session) }
        actions.withLock { $0.append("\(request.runs ? "create" : "create-stopped"):\(request.session)") }
        return ProvisionResult(url: "http://lab.test/\(request.session)/", handle: "h-\(request.session)")
    }

    func start(_ request: ProvisionRequest) async throws -> ProvisionResult {
        if let message = failing.withLock({ $0 }) { throw ProvisionError(message) }
        actions.withLock { $0.append("start:\(request.session)") }
        return ProvisionResult(url: "http://lab.test/\(request.session)/", handle: "h-\(request.session)")
    }

    func stop(_ request: ProvisionRequest) async throws {
        if let message = failing.withLock({ $0 }) { throw ProvisionError(message) }
        actions.withLock { $0.append("stop:\(request.session)") }
    }

    func delete(_ request: ProvisionRequest) async throws {
        deleted.withLock { $0.append(request.session) }
        actions.withLock { $0.append("delete:\(request.session)") }
    }

    func isAlive(_ request: ProvisionRequest) async -> Bool { !dead.withLock { $0.contains(request.session) } }
}

/// session-service in-process on a real database (SQLite or PostgreSQL), with a manual clock, a stub catalog and a
/// stub provisioner, driven through its real router.
struct SessionHarness: Sendable {
    let database: Database
    let dependencies: SessionDependencies
    let clock: ManualClock
    let catalog: StubCatalog
    let provisioner: any Provisioner
    let credentials: BootstrapCredentials

    static let testCredentials = BootstrapCredentials(
        adminUser: "admin", adminPassword: "admin-password-1234", adminAPIToken: "AdminApiToken0123456789abcdefghij",
        robotUser: "robot", robotPassword: "robot-password-1234", robotClientID: "robot-client",
        robotClientSecret: "robot-client-secret-0123456789", serviceClientID: "service-client",
        serviceClientSecret: "service-client-secret-0123456789")

    static func with<T: Sendable>(
        _ backend: DatabaseBackend = .sqlite, portal: CatalogPortal.Snapshot,
        provisioner: (any Provisioner)? = nil,
        _ body: @Sendable (SessionHarness) async throws -> T
    ) async throws -> T {
        try await TestDatabase(backend, label: "session").with { database in
            try await Migrator(SessionApplication.spec.migrations).migrate(database, logger: quietLogger)
            let clock = ManualClock()
            let catalog = StubCatalog(portal)
            let provisioner = provisioner ?? StubProvisioner()
            let dependencies = try await SessionApplication.makeDependencies(
                database: database, catalog: catalog.peer, provisioner: provisioner,
                analytics: .http(timeout: .seconds(2)), portalMaxAge: .zero,
                now: clock.source, logger: quietLogger)
            try await dependencies.prepare()
            try await testCredentials.apply(to: dependencies.identity.repository, now: clock.now, logger: quietLogger)
            let harness = SessionHarness(
                database: database, dependencies: dependencies, clock: clock, catalog: catalog,
                provisioner: provisioner, credentials: testCredentials)
            return try await body(harness)
        }
    }

    func application() -> some ApplicationProtocol {
        let router = ServiceRouter.make(service: "session")
        SessionApplication.addRoutes(to: router, dependencies: dependencies)
        return Application(router: router, logger: quietLogger)
    }

    /// Runs the lab runtime once and waits for the provisioning and teardown it started.
    func pass() async throws {
        try await dependencies.runtime.pass()
        await dependencies.runtime.waitForIdle()
    }

    func session(_ name: String) async throws -> SessionRecord? {
        try await dependencies.sessions.session(named: name)
    }
}

// MARK: HTTP helpers

struct HTTPAnswer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    var location: String { headers[.location] ?? "" }
    var error: String? { json["error"] as? String }
}

extension TestClientProtocol {
    func call(
        _ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: String? = nil
    ) async throws -> HTTPAnswer {
        try await execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
        ) { response in
            HTTPAnswer(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    func form(_ uri: String, _ fields: [(String, String)], headers: HTTPFields = [:]) async throws -> HTTPAnswer {
        var headers = headers
        headers[.contentType] = "application/x-www-form-urlencoded"
        let body = fields.map { "\(FormParameters.encode($0.0))=\(FormParameters.encode($0.1))" }.joined(separator: "&")
        return try await call(.post, uri, headers: headers, body: body)
    }

    /// A robot access token, by the password grant with client credentials in the body.
    func robotToken(_ credentials: BootstrapCredentials) async throws -> String {
        let answer = try await form(
            "/oauth2/token/",
            [
                ("grant_type", "password"), ("username", credentials.robotUser), ("password", credentials.robotPassword),
                ("client_id", credentials.robotClientID), ("client_secret", credentials.robotClientSecret),
            ])
        guard answer.status == .ok, let token = answer.json["access_token"] as? String else {
            Issue.record("no robot token: \(answer.status) \(answer.text)")
            throw CancellationError()
        }
        return token
    }
}

func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

func basic(_ user: String, _ secret: String) -> HTTPFields {
    [.authorization: "Basic \(Data("\(user):\(secret)".utf8).base64EncodedString())"]
}

/// The query parameters of a URL or path.
func queryItems(_ url: String) -> FormParameters {
    guard let mark = url.firstIndex(of: "?") else { return FormParameters() }
    return FormParameters(String(url[url.index(after: mark)...]))
}

/// The `name=value` of a `Set-Cookie` header, for sending back.
func cookies(_ headers: HTTPFields) -> String {
    headers[values: .setCookie].map { $0.split(separator: ";")[0] }.joined(separator: "; ")
}
