@testable import CatalogService
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServerKit
import Storage
import Synchronization
import TestSupport
import Testing

/// Callers by token: `robot`, `admin`, `user`.
struct StubAuthenticator: Authenticating {
    func authenticate(_ authorization: String) async throws -> AuthenticatedUser {
        let role: UserRole
        switch authorization {
        case "Bearer robot": role = .robot
        case "Bearer admin": role = .admin
        case "Bearer user": role = .user
        default: throw ServiceFailure(.unauthenticated, "invalid or expired credentials")
        }
        return AuthenticatedUser(
            id: "1", username: role.rawValue, email: "", firstName: "", lastName: "", role: role, classroomsAccess: false,
            userManager: false)
    }
}

@Suite("Catalog REST: environments, workshops, status and reload")
struct CatalogAPITests {
    static let started = Date(timeIntervalSince1970: 1_800_000_000)

    static let overview = SessionsOverview.Result(
        allocated: 3,
        environments: [
            "labportal-w01": .init(
                allocated: 2, available: 1, active: 4,
                sessions: [
                    SessionSummary(
                        name: "labportal-w01-s002", state: .running, namespace: "labportal-w01-s002", user: "u-1",
                        started: started, expires: started.addingTimeInterval(3600), countdown: 1737, extendable: false)
                ]),
            "labportal-w02": .init(allocated: 1, available: 0, active: 1, sessions: []),
        ])

    func withCatalog(
        file: String = PortalDefinitionTests.sample, _ body: @Sendable (any TestClientProtocol, PortalRepository) async throws -> Void
    ) async throws {
        try await TestDatabase(.sqlite, label: "catalogapi").with { database in
            try await Migrator(CatalogMigrations.all).migrate(database, logger: quietLogger)
            let repository = PortalRepository(database: database)
            _ = try await repository.apply(try PortalDefinition.parse(file), now: Self.started)
            let asked = Mutex<[Bool]>([])
            let controller = CatalogController(
                snapshots: SnapshotCache(repository: repository),
                sessions: SessionPeer(overview: { include in
                    asked.withLock { $0.append(include) }
                    var result = Self.overview
                    if !include { for key in result.environments.keys { result.environments[key]?.sessions = nil } }
                    return result
                }),
                authenticator: StubAuthenticator(),
                reload: { _ in try await repository.apply(try PortalDefinition.parse(file.replacingOccurrences(of: "capacity: 10", with: "capacity: 12")), now: Self.started) })
            let router = ServiceRouter.make(service: "catalog")
            controller.addRoutes(to: router)
            try await Application(router: router, logger: quietLogger).test(.router) { client in
                try await body(client, repository)
            }
        }
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, token: String? = "robot") async throws
        -> (HTTPResponse.Status, [String: Any])
    {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: .get, headers: headers, body: nil) { response in
            (response.status, (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]) ?? [:])
        }
    }

    @Test("environments: the portal block with counts, each environment with its workshop and counts")
    func environments() async throws {
        try await withCatalog { client, _ in
            let (status, json) = try await Self.get(client, "/workshops/catalog/environments/")
            #expect(status == .ok)
            let portal = try #require(json["portal"] as? [String: Any])
            #expect(portal["name"] as? String == "labportal")
            #expect(portal["generation"] as? Int == 1)
            #expect(portal["url"] as? String == "https://labs.example.com")
            let sessions = try #require(portal["sessions"] as? [String: Int])
            #expect(sessions == ["maximum": 20, "registered": 2, "anonymous": 1, "allocated": 3])
            let environments = try #require(json["environments"] as? [[String: Any]])
            #expect(environments.count == 2)
            let first = environments[0]
            #expect(first["name"] as? String == "labportal-w01")
            #expect(first["state"] as? String == "RUNNING")
            #expect(first["duration"] as? Int == 3600)
            #expect(first["capacity"] as? Int == 10)
            #expect(first["reserved"] as? Int == 2)
            #expect(first["allocated"] as? Int == 2)
            #expect(first["available"] as? Int == 1)
            #expect(first["sessions"] == nil)
            let workshop = try #require(first["workshop"] as? [String: Any])
            #expect(workshop["name"] as? String == "hello-http")
            #expect((workshop["id"] as? String)?.count == 32)
            #expect(workshop["title"] as? String == "Hello, HTTP")
            #expect(workshop["authors"] as? [String] == ["Ada"])
            #expect(workshop["duration"] as? String == "30m")
            #expect(workshop["labels"] as? [String: String] == ["track": "web"])
            // No expiry: duration is null, as the seed says.
            #expect(environments[1]["duration"] is NSNull)
            // Without the slash too.
            #expect(try await Self.get(client, "/workshops/catalog/environments").0 == .ok)
        }
    }

    @Test("sessions=true lists sessions for robots and admins only; users get RUNNING only and no sessions")
    func sessionsFlag() async throws {
        try await withCatalog { client, _ in
            let (_, json) = try await Self.get(client, "/workshops/catalog/environments/?sessions=true")
            let first = try #require((json["environments"] as? [[String: Any]])?.first)
            let sessions = try #require(first["sessions"] as? [[String: Any]])
            #expect(sessions.count == 1)
            #expect(sessions[0]["name"] as? String == "labportal-w01-s002")
            #expect(sessions[0]["state"] as? String == "RUNNING")
            #expect(sessions[0]["user"] as? String == "u-1")
            #expect(sessions[0]["started"] as? String == "2027-01-15T08:00:00.000Z")
            #expect(sessions[0]["countdown"] as? Int == 1737)
            #expect(sessions[0]["extendable"] as? Bool == false)
            let (_, admin) = try await Self.get(client, "/workshops/catalog/environments/?sessions=1", token: "admin")
            #expect((admin["environments"] as? [[String: Any]])?.first?["sessions"] != nil)
            let (status, user) = try await Self.get(client, "/workshops/catalog/environments/?sessions=true&state=STOPPING", token: "user")
            #expect(status == .ok)
            let list = try #require(user["environments"] as? [[String: Any]])
            #expect(list.count == 2 && list.allSatisfy { $0["sessions"] == nil })
        }
    }

    @Test("filters: state (repeatable, STOPPING), name, labels[…]")
    func filters() async throws {
        try await withCatalog { client, repository in
            // shell-basics leaves the file: its environment goes STOPPING.
            let fewer = PortalDefinitionTests.sample.components(separatedBy: "  - workshop: shell-basics")[0]
            _ = try await repository.apply(try PortalDefinition.parse(fewer), now: Self.started)
            func names(_ query: String) async throws -> [String] {
                let (_, json) = try await Self.get(client, "/workshops/catalog/environments/\(query)")
                return (json["environments"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            }
            #expect(try await names("") == ["labportal-w01"])
            #expect(try await names("?state=STOPPING") == ["labportal-w02"])
            #expect(try await names("?state=running&state=stopping") == ["labportal-w01", "labportal-w02"])
            let (_, stopping) = try await Self.get(client, "/workshops/catalog/environments/?state=STOPPING")
            let entry = try #require((stopping["environments"] as? [[String: Any]])?.first)
            #expect(entry["state"] as? String == "STOPPING" && entry["capacity"] as? Int == 0 && entry["reserved"] as? Int == 0)
            #expect(try await names("?name=hello-http") == ["labportal-w01"])
            #expect(try await names("?name=nothing").isEmpty)
            #expect(try await names("?labels[track]=web") == ["labportal-w01"])
            #expect(try await names("?labels%5Btrack%5D=web") == ["labportal-w01"])
            #expect(try await names("?labels[track]=ops").isEmpty)
            // A label filter whose key is not \w+ is ignored, as the real portal does.
            let (oddStatus, _) = try await Self.get(client, "/workshops/catalog/environments/?labels[a-b]=x")
            #expect(oddStatus == .ok)
            #expect(try await names("?labels[a-b]=x") == ["labportal-w01"])
            #expect(try await names("?labels[a-b]=x&labels[track]=ops").isEmpty)
        }
    }

    @Test("environments are listed in creation order whatever their state")
    func creationOrder() async throws {
        try await withCatalog { client, repository in
            // hello-http (labportal-w01) leaves the file and goes STOPPING; it still comes first.
            let sample = PortalDefinitionTests.sample
            let head = sample.components(separatedBy: "  - workshop: hello-http\n")
            let withoutFirst = head[0] + "  - workshop: shell-basics" + head[1].components(separatedBy: "  - workshop: shell-basics")[1]
            #expect(withoutFirst != PortalDefinitionTests.sample)
            _ = try await repository.apply(try PortalDefinition.parse(withoutFirst), now: Self.started.addingTimeInterval(60))
            let (_, json) = try await Self.get(client, "/workshops/catalog/environments/?state=running&state=stopping")
            let listed = (json["environments"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "") \($0["state"] ?? "")" }
            #expect(listed == ["labportal-w01 STOPPING", "labportal-w02 RUNNING"])
        }
    }

    @Test("workshops lists RUNNING environments' workshops with their environment")
    func workshops() async throws {
        try await withCatalog { client, _ in
            let (status, json) = try await Self.get(client, "/workshops/catalog/workshops/", token: "user")
            #expect(status == .ok)
            let list = try #require(json["workshops"] as? [[String: Any]])
            #expect(list.map { $0["name"] as? String } == ["hello-http", "shell-basics"])
            let environment = try #require(list[0]["environment"] as? [String: Any])
            #expect(environment["name"] as? String == "labportal-w01")
            #expect(environment["allocated"] as? Int == 2)
            #expect(json["portal"] != nil)
        }
    }

    @Test("status: robots only (403 otherwise), 404 for an unknown environment, sessions on request")
    func status() async throws {
        try await withCatalog { client, _ in
            let (status, json) = try await Self.get(client, "/workshops/environment/labportal-w01/status/?sessions=true")
            #expect(status == .ok)
            #expect(json["name"] as? String == "labportal-w01")
            #expect(json["capacity"] as? Int == 10)
            #expect((json["sessions"] as? [Any])?.count == 1)
            let (forbidden, body) = try await Self.get(client, "/workshops/environment/labportal-w01/status/", token: "user")
            #expect(forbidden == .forbidden)
            #expect(body["error"] as? String == "Status requests not permitted")
            #expect(try await Self.get(client, "/workshops/environment/nope-w01/status/").0 == .notFound)
            #expect(try await Self.get(client, "/workshops/environment/labportal-w01/status/", token: nil).0 == .unauthorized)
            #expect(try await Self.get(client, "/workshops/catalog/environments/", token: "bogus").0 == .unauthorized)
        }
    }

    @Test("reload is for admins; it applies the file and bumps the generation")
    func reload() async throws {
        try await withCatalog { client, repository in
            let forbidden = try await client.execute(
                uri: "/workshops/catalog/reload/", method: .post, headers: [.authorization: "Bearer robot"]) { $0.status }
            #expect(forbidden == .forbidden)
            let answer = try await client.execute(
                uri: "/workshops/catalog/reload/", method: .post, headers: [.authorization: "Bearer admin"]
            ) { response in
                (response.status, (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]) ?? [:])
            }
            #expect(answer.0 == .ok)
            #expect(answer.1["changed"] as? Bool == true)
            #expect(answer.1["generation"] as? Int == 2)
            #expect(try await repository.snapshot()?.environments[0].settings.capacity == 12)
        }
    }

    @Test("kept answers follow the counts and the portal at once: a session that comes or goes, and a reload")
    func keptAnswersFollowChanges() async throws {
        try await TestDatabase(.sqlite, label: "catalogkept").with { database in
            try await Migrator(CatalogMigrations.all).migrate(database, logger: quietLogger)
            let repository = PortalRepository(database: database)
            _ = try await repository.apply(try PortalDefinition.parse(PortalDefinitionTests.sample), now: Self.started)
            let allocated = Mutex(1)
            let controller = CatalogController(
                snapshots: SnapshotCache(repository: repository),
                sessions: SessionPeer(overview: { _ in
                    let count = allocated.withLock { $0 }
                    return .init(allocated: count, environments: ["labportal-w01": .init(allocated: count, available: 0, active: count)])
                }),
                authenticator: StubAuthenticator(), reload: { _ in ApplyResult(changed: false, generation: 1, created: [], stopping: []) })
            let router = ServiceRouter.make(service: "catalog")
            controller.addRoutes(to: router)
            try await Application(router: router, logger: quietLogger).test(.router) { client in
                func firstAllocated(_ uri: String, _ token: String = "robot") async throws -> Int? {
                    let (_, json) = try await Self.get(client, uri, token: token)
                    if let environments = json["environments"] as? [[String: Any]] { return environments.first?["allocated"] as? Int }
                    let workshops = json["workshops"] as? [[String: Any]]
                    return (workshops?.first?["environment"] as? [String: Any])?["allocated"] as? Int
                }
                for uri in ["/workshops/catalog/environments/", "/workshops/catalog/workshops/"] {
                    allocated.withLock { $0 = 1 }
                    #expect(try await firstAllocated(uri) == 1)
                    #expect(try await firstAllocated(uri) == 1)
                    allocated.withLock { $0 = 2 }
                    #expect(try await firstAllocated(uri) == 2, "\(uri): a new session shows at once")
                    allocated.withLock { $0 = 0 }
                    #expect(try await firstAllocated(uri) == 0, "\(uri): an ended one too")
                }
                // The same path for a user and a robot are different answers (a user sees RUNNING only).
                let (_, asRobot) = try await Self.get(client, "/workshops/catalog/environments/?state=STOPPING")
                let (_, asUser) = try await Self.get(client, "/workshops/catalog/environments/?state=STOPPING", token: "user")
                #expect((asRobot["environments"] as? [Any])?.count == 0)
                #expect((asUser["environments"] as? [Any])?.count == 2)
                // A reload that stops an environment shows in the next answer.
                let fewer = PortalDefinitionTests.sample.components(separatedBy: "  - workshop: shell-basics")[0]
                _ = try await repository.apply(try PortalDefinition.parse(fewer), now: Self.started)
                let (_, after) = try await Self.get(client, "/workshops/catalog/environments/")
                #expect((after["portal"] as? [String: Any])?["generation"] as? Int == 2)
                #expect((after["environments"] as? [Any])?.count == 1)
                let (_, stopping) = try await Self.get(client, "/workshops/catalog/environments/?state=STOPPING")
                #expect((stopping["environments"] as? [[String: Any]])?.first?["name"] as? String == "labportal-w02")
            }
        }
    }

    @Test("a STOPPING environment is deleted once session-service reports no active session, and the generation moves")
    func janitor() async throws {
        try await TestDatabase(.sqlite, label: "janitor").with { database in
            try await Migrator(CatalogMigrations.all).migrate(database, logger: quietLogger)
            let repository = PortalRepository(database: database)
            _ = try await repository.apply(try PortalDefinition.parse(PortalDefinitionTests.sample), now: Self.started)
            let fewer = PortalDefinitionTests.sample.components(separatedBy: "  - workshop: shell-basics")[0]
            _ = try await repository.apply(try PortalDefinition.parse(fewer), now: Self.started)
            let active = Mutex(1)
            let janitor = EnvironmentJanitor(
                repository: repository, snapshots: SnapshotCache(repository: repository),
                sessions: SessionPeer(overview: { _ in
                    .init(allocated: 0, environments: ["labportal-w02": .init(allocated: 0, available: 0, active: active.withLock { $0 })])
                }),
                leases: Leases(database), interval: .seconds(1), now: { Self.started }, logger: quietLogger)
            #expect(try await janitor.pass().isEmpty)
            active.withLock { $0 = 0 }
            #expect(try await janitor.pass() == ["labportal-w02"])
            let snapshot = try #require(try await repository.snapshot())
            #expect(snapshot.environments.map(\.name) == ["labportal-w01"])
            #expect(snapshot.generation == 3)
        }
    }
}
