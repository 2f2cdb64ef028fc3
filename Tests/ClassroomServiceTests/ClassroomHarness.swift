@testable import ClassroomService
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerKit
import Storage
import Synchronization
import TestSupport
import Testing

/// Users for the Classrooms paths, by their Basic credentials `name:token-name`.
enum StubUsers {
    static let users: [String: AuthenticatedUser] = [
        "admin": .init(
            id: "1", username: "admin", email: "admin@example.com", firstName: "Ada", lastName: "Admin", role: .admin,
            classroomsAccess: true, userManager: true),
        "alice": .init(
            id: "2", username: "alice", email: "alice@example.com", firstName: "Alice", lastName: "Instructor",
            role: .user, classroomsAccess: true, userManager: false),
        "bob": .init(
            id: "3", username: "bob", email: "bob@example.com", firstName: "Bob", lastName: "Other", role: .user,
            classroomsAccess: true, userManager: false),
        "carol": .init(
            id: "4", username: "carol", email: "carol@example.com", firstName: "Carol", lastName: "NoAccess",
            role: .user, classroomsAccess: false, userManager: false),
    ]

    static var authenticator: StubBasicUsers { StubBasicUsers(users) }
}

/// session-service's lab environments, in memory: `labs.apply` records the target; `settle()` moves every
/// environment to its target (or records the failure set in `failing`).
final class StubLabs: Sendable {
    struct State {
        var environments: [String: LabEnvironment] = [:]
        var made: [String: Int] = [:]
        var applied: [String] = []
        var failing: String?
        var down = false
    }

    let state = Mutex(State())

    var peer: LabPeer {
        LabPeer(
            apply: { params in
                try self.state.withLock { state -> LabEnvironment? in
                    if state.down { throw ServiceFailure(.unavailable, "session is not reachable") }
                    state.applied.append("\(params.lab):\(params.target.rawValue)")
                    if var current = state.environments[params.lab], current.phase != .deleted {
                        current.target = params.target
                        state.environments[params.lab] = current
                        return current
                    }
                    guard params.target != .deleted else { return nil }
                    let count = (state.made[params.lab] ?? 0) + 1
                    state.made[params.lab] = count
                    let environment = LabEnvironment(
                        name: "lab\(params.lab)-s\(String(format: "%03d", count))", lab: params.lab,
                        workshop: params.workshop, target: params.target, phase: .pending, error: nil, url: nil,
                        updatedAt: Date(timeIntervalSince1970: 0))
                    state.environments[params.lab] = environment
                    return environment
                }
            },
            status: { labs in
                try self.state.withLock { state in
                    if state.down { throw ServiceFailure(.unavailable, "session is not reachable") }
                    return labs.compactMap { state.environments[$0] }
                }
            })
    }

    /// Every environment reaches its target (or fails, while `failing` is set).
    func settle() {
        state.withLock { state in
            for (lab, var environment) in state.environments where !environment.settled {
                if let failure = state.failing {
                    environment.error = failure
                } else {
                    environment.error = nil
                    switch environment.target {
                    case .provisioned, .stopped: environment.phase = .stopped
                    case .running: environment.phase = .running
                    case .deleted: environment.phase = .deleted
                    }
                    environment.url = environment.phase == .running ? "http://lab.test/\(environment.name)/" : nil
                }
                state.environments[lab] = environment
            }
        }
    }

    var applied: [String] { state.withLock { $0.applied } }
}

/// classroom-service in-process on a real database, with a manual clock, a stub catalog, stub lab environments and
/// stub users, driven through its real router.
struct ClassroomHarness: Sendable {
    let database: Database
    let dependencies: ClassroomDependencies
    let clock: ManualClock
    let catalog: StubCatalog
    let labs: StubLabs

    /// The catalog: `hello-http` (two VMs, region local) and `shell` (one VM).
    static let portal = StubCatalog.portal([
        CatalogEnvironment(
            name: "lab-w01", position: 1, state: .running,
            workshop: StubCatalog.workshop(
                "hello-http", vms: [.init(id: "web-1", name: "Web server"), .init(id: "db-1", name: "Database")],
                region: "local"),
            settings: StubCatalog.environment("lab-w01", workshop: "hello-http").settings),
        CatalogEnvironment(
            name: "lab-w02", position: 2, state: .running,
            workshop: StubCatalog.workshop("shell", vms: [.init(id: "shell-1", name: "Shell host")], region: "eu"),
            settings: StubCatalog.environment("lab-w02", workshop: "shell").settings),
    ])

    /// 2030-01-01 00:00:00 UTC.
    static let start = Date(timeIntervalSince1970: 1_893_456_000)

    static func with<T: Sendable>(
        _ backend: DatabaseBackend = .sqlite, clock: ManualClock? = nil, ssoEnabled: Bool = false,
        _ body: @Sendable (ClassroomHarness) async throws -> T
    ) async throws -> T {
        try await TestDatabase(backend, label: "classroom").with { database in
            try await Migrator(ClassroomApplication.spec.migrations).migrate(database, logger: quietLogger)
            let clock = clock ?? ManualClock(Self.start)
            let catalog = StubCatalog(Self.portal)
            let labs = StubLabs()
            let dependencies = ClassroomApplication.makeDependencies(
                database: database, catalog: catalog.peer, labs: labs.peer, authenticator: StubUsers.authenticator,
                settings: .init(publicURL: "https://labs.example.com", ssoEnabled: ssoEnabled), portalMaxAge: .zero,
                now: clock.source, logger: quietLogger)
            return try await body(
                ClassroomHarness(database: database, dependencies: dependencies, clock: clock, catalog: catalog, labs: labs))
        }
    }

    func application() -> some ApplicationProtocol {
        let router = ServiceRouter.make(service: "classroom")
        ClassroomApplication.addRoutes(to: router, dependencies: dependencies)
        return Application(router: router, logger: quietLogger)
    }

    /// A scheduler pass, then the environments settle, then another pass reads their states.
    @discardableResult
    func pass(settle: Bool = true) async throws -> ClassScheduler.Report {
        var report = try await dependencies.scheduler.pass()
        if settle {
            labs.settle()
            let second = try await dependencies.scheduler.pass()
            report.advanced += second.advanced
            report.pushed += second.pushed
            report.synced += second.synced
        }
        return report
    }
}

// MARK: HTTP helpers

struct Answer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    var array: [[String: Any]] { (try? JSONSerialization.jsonObject(with: body) as? [[String: Any]]) ?? [] }
    var error: String? { object["error"] as? String }
    var field: String? { object["field"] as? String }
    func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
}

func basicAuth(_ user: String) -> HTTPFields {
    [.authorization: StubBasicUsers.authorization(user)]
}

extension TestClientProtocol {
    func send(
        _ method: HTTPRequest.Method, _ uri: String, as user: String? = "alice", json: Any? = nil, body: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> Answer {
        var fields = user.map(basicAuth) ?? [:]
        for field in headers { fields[field.name] = field.value }
        var payload = body
        if let json {
            payload = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
            fields[.contentType] = "application/json"
        }
        return try await execute(
            uri: uri, method: method, headers: fields, body: payload.map { ByteBuffer(string: $0) }
        ) { response in
            Answer(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    /// A course of `hello-http` owned by `user`; answers its id.
    func course(_ name: String = "Intro course", as user: String = "alice", extra: [String: Any] = [:]) async throws -> String {
        var json: [String: Any] = ["name": name, "description": "About \(name)", "template_ids": ["hello-http"], "max_labs": 5]
        for (key, value) in extra { json[key] = value }
        let answer = try await send(.post, "/v2/courses.json", as: user, json: json)
        guard answer.status == .ok, let id = answer.object["id"] as? String else {
            Issue.record("course not created: \(answer.status) \(answer.text)")
            throw CancellationError()
        }
        return id
    }

    /// A class of a course; answers its id.
    func klass(course: String, _ fields: [String: Any], as user: String = "alice") async throws -> String {
        let answer = try await send(.post, "/courses/\(course)/classes.json", as: user, json: fields)
        guard answer.status == .ok, let id = answer.object["id"] as? String else {
            Issue.record("class not created: \(answer.status) \(answer.text)")
            throw CancellationError()
        }
        return id
    }

    func labs(_ classID: String, _ names: [String], as user: String = "alice") async throws -> [[String: Any]] {
        let answer = try await send(
            .post, "/v2/classes/\(classID)/labs/create_multiple.json", as: user, json: names.map { ["name": $0] })
        guard answer.status == .ok else {
            Issue.record("labs not added: \(answer.status) \(answer.text)")
            throw CancellationError()
        }
        return answer.array
    }
}
