import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("Allocation under concurrency, on both backends; the local provisioner; users")
struct ConcurrencyAndRuntimeTests {
    @Test("200 concurrent requests for capacity 10 give exactly 10 sessions and 190 answers of 503", arguments: TestBackends.all)
    func concurrentRequests(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 10)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                    for _ in 0..<200 {
                        group.addTask {
                            let answer = try await client.call(
                                .get, "/workshops/environment/lab-w01/request/?index_url=x", headers: bearer(token))
                            return (Int(answer.status.code), answer.json["name"] as? String)
                        }
                    }
                    var all: [(Int, String?)] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                #expect(statuses.filter { $0.0 == 200 }.count == 10)
                #expect(statuses.filter { $0.0 == 503 }.count == 190)
                let names = Set(statuses.compactMap(\.1))
                #expect(names.count == 10)
                let live = try await harness.dependencies.sessions.sessions(in: [.starting, .waiting, .running, .stopping])
                #expect(live.count == 10)
            }
        }
    }

    @Test("concurrent requests (written together) take the ready spares first, then make sessions on demand, within capacity", arguments: TestBackends.all)
    func concurrentSparesThenOnDemand(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([
            StubCatalog.environment("lab-w01", workshop: "ws", capacity: 30, reserved: 10),
            StubCatalog.environment("lab-w02", workshop: "ws2", capacity: 5),
        ])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.pass()  // ten spares, provisioned
            let spares = Set(try await harness.dependencies.sessions.sessions(in: [.waiting]).map(\.name))
            #expect(spares.count == 10)
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let answers = try await withThrowingTaskGroup(of: (String, Int, String?).self) { group in
                    for index in 0..<60 {
                        let environment = index % 3 == 0 ? "lab-w02" : "lab-w01"
                        group.addTask {
                            let answer = try await client.call(
                                .post, "/workshops/environment/\(environment)/request/?index_url=x", headers: bearer(token))
                            return (environment, Int(answer.status.code), answer.json["name"] as? String)
                        }
                    }
                    var all: [(String, Int, String?)] = []
                    for try await answer in group { all.append(answer) }
                    return all
                }
                let first = answers.filter { $0.0 == "lab-w01" }
                let second = answers.filter { $0.0 == "lab-w02" }
                #expect(first.filter { $0.1 == 200 }.count == 30 && first.filter { $0.1 == 503 }.count == 10, "\(first.map(\.1))")
                #expect(second.filter { $0.1 == 200 }.count == 5 && second.filter { $0.1 == 503 }.count == 15)
                let names = answers.compactMap(\.2)
                #expect(Set(names).count == 35, "no session was handed out twice")
                #expect(spares.isSubset(of: Set(names)), "every ready spare was taken")
                let live = try await harness.dependencies.sessions.sessions(in: [.starting, .waiting, .running, .stopping])
                #expect(live.count == 35 && live.allSatisfy { $0.ownerID != nil })
                #expect(Set(live.compactMap(\.ownerID)).count == 35, "each request made its own user")
                // Every session's activation URL works for it alone.
                let urls = try await withThrowingTaskGroup(of: Int.self) { group in
                    for answer in answers where answer.1 == 200 {
                        let name = try #require(answer.2)
                        group.addTask {
                            let session = try #require(try await harness.session(name))
                            return session.tokenDigest == nil ? 0 : 1
                        }
                    }
                    var total = 0
                    for try await one in group { total += one }
                    return total
                }
                #expect(urls == 35)
            }
        }
    }

    @Test("concurrent requests of one user give that user one session", arguments: TestBackends.all)
    func concurrentRequestsOfOneUser(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 10, reserved: 2)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.pass()
            _ = try await harness.dependencies.identity.repository.createUser(
                .init(username: "pat", role: .user), now: harness.clock.now)
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let names = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            let answer = try await client.call(
                                .get, "/workshops/environment/lab-w01/request/?index_url=x&user=pat", headers: bearer(token))
                            return answer.json["name"] as? String
                        }
                    }
                    var names: [String?] = []
                    for try await name in group { names.append(name) }
                    return names
                }
                #expect(names.count == 20 && Set(names).count == 1 && names[0] != nil)
                let owned = try await harness.dependencies.sessions.sessions(in: [.starting, .waiting, .running])
                    .filter { $0.ownerName == "pat" }
                #expect(owned.count == 1)
            }
        }
    }

    @Test("users made at once with one name: one is made, the others are told the name is taken (409, not 500)", arguments: TestBackends.all)
    func concurrentUsersOfOneName(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 10, reserved: 0)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            let repository = harness.dependencies.identity.repository
            let now = harness.clock.now
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do {
                            _ = try await repository.createUser(.init(username: "sam", role: .user), now: now)
                            return "made"
                        } catch let failure as ServiceFailure {
                            return failure.kind.rawValue
                        }
                    }
                }
                var outcomes: [String] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes.sorted()
            }
            #expect(outcomes == Array(repeating: "conflict", count: 7) + ["made"])
        }
    }

    @Test("a reload that lowers reserved or capacity stops the spares above them, newest first; initial's spares stay", arguments: TestBackends.all)
    func lowerReservedStopsSpares(backend: DatabaseBackend) async throws {
        let portal = StubCatalog.portal([
            StubCatalog.environment("lab-w01", workshop: "ws", capacity: 10, reserved: 5),
            StubCatalog.environment("lab-w02", workshop: "ws2", capacity: 10, reserved: 1, initial: 4),
        ])
        try await SessionHarness.with(backend, portal: portal) { harness in
            try await harness.pass()
            func spares(_ environment: String) async throws -> [String] {
                try await harness.dependencies.sessions.sessions(in: [.starting, .waiting])
                    .filter { $0.environment == environment && $0.ownerID == nil }.map(\.name).sorted()
            }
            #expect(try await spares("lab-w01").count == 5)
            try await harness.pass()
            #expect(try await spares("lab-w02").count == 4, "the spares made for initial outlive the first passes")

            // One spare is taken by a user; then reserved drops to 2: two of the four others stop, the newest first.
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let answer = try await client.call(.get, "/workshops/environment/lab-w01/request/?index_url=x", headers: bearer(token))
                #expect(answer.status == .ok)
            }
            try await harness.pass()  // the taken spare is replaced: five spares again
            let before = try await spares("lab-w01")
            #expect(before.count == 5)
            harness.catalog.update { $0.environments[0].settings.reserved = 2; $0.environments[0].settings.initial = 2 }
            try await harness.pass()
            let left = try await spares("lab-w01")
            #expect(left == Array(before.prefix(2)), "the newest spares went first: \(left) of \(before)")
            let owned = try await harness.dependencies.sessions.sessions(in: [.starting, .waiting, .running])
                .filter { $0.ownerID != nil }
            #expect(owned.count == 1, "a session with an owner is never stopped for this")

            // Capacity below what is live: spares go until it fits; the owned session stays.
            harness.catalog.update { $0.environments[1].settings.capacity = 2 }
            try await harness.pass()
            #expect(try await spares("lab-w02").count == 2)
            try await harness.pass()
            #expect(try await spares("lab-w02").count == 2, "stable: nothing more stops, nothing is made")
        }
    }

    @Test("a background pass that changes nothing keeps the cached counts; one that does drops them")
    func quietPassKeepsCounts() async throws {
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 3, reserved: 1)])
        try await SessionHarness.with(portal: portal) { harness in
            try await harness.pass()
            let sessions = harness.dependencies.sessions
            let before = sessions.changeCount
            try await harness.pass()
            try await harness.pass()
            #expect(sessions.changeCount == before, "nothing to expire, top up or stop")
            let counts = try await harness.dependencies.counts.get()
            #expect(counts.environments["lab-w01"]?.available == 1)
            _ = try await sessions.terminate("lab-w01-s001", now: harness.clock.now)
            #expect(sessions.changeCount > before)
            #expect(try await harness.dependencies.counts.get().environments["lab-w01"]?.available == 0)
            try await harness.pass()  // the teardown, and a new spare
            #expect(try await harness.dependencies.counts.get().environments["lab-w01"]?.available == 1)
        }
    }

    @Test("two replicas on one PostgreSQL database never over-allocate")
    func replicasOnPostgres() async throws {
        guard TestBackends.postgresURL != nil else {
            #expect(!TestBackends.postgresRequired, "PostgreSQL is required in this run")
            return
        }
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 7)], maximum: 7)
        let database = TestDatabase(.postgres, label: "replicas")
        try await database.with { first in
            try await Migrator(SessionApplication.spec.migrations).migrate(first, logger: quietLogger)
            try await database.with { second in
                let clock = ManualClock()
                var replicas: [SessionDependencies] = []
                for db in [first, second] {
                    let dependencies = try await SessionApplication.makeDependencies(
                        database: db, catalog: StubCatalog(portal).peer, provisioner: StubProvisioner(),
                        now: clock.source, logger: quietLogger)
                    try await dependencies.prepare()
                    replicas.append(dependencies)
                }
                let environment = portal.environments[0]
                let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<60 {
                        let replica = replicas[index % 2]
                        group.addTask {
                            let (outcome, _) = try await replica.sessions.allocate(
                                AllocationRequest(
                                    environment: environment, limits: portal.portal.sessions,
                                    user: .new(.init(username: "u\(index)", role: .anonymous)), reacquire: nil,
                                    withToken: true, timeout: 60, indexURL: "x", analyticsURL: nil, parameters: []),
                                now: clock.now)
                            if case .allocated = outcome { return true }
                            return false
                        }
                    }
                    var results: [Bool] = []
                    for try await result in group { results.append(result) }
                    return results
                }
                #expect(outcomes.filter { $0 }.count == 7)
            }
        }
    }

    @Test("the local provisioner starts the workshop's command on its port and stops it with SIGTERM")
    func localProvisioner() async throws {
        let workspaces = FileManager.default.temporaryDirectory.appendingPathComponent("labportal-ws-\(UUID().uuidString.prefix(8))").path
        let provisioner = LocalProvisioner(
            configuration: .init(workspaces: workspaces, readyTimeout: .seconds(20), stopGrace: .seconds(5)),
            logger: quietLogger)
        let command = [
            "/bin/sh", "-c",
            #"printf 'hello from %s' "$SESSION_NAME" > index.html && exec python3 -m http.server "$PORT" --bind 127.0.0.1"#,
        ]
        let request = ProvisionRequest(
            action: "create", session: "lab-w01-s001", environment: "lab-w01", workshop: "ws", owner: "u",
            parameters: [.init(name: "GREETING", value: "hi")], command: command, handle: nil)
        let result = try await provisioner.create(request)
        #expect(result.url.hasPrefix("http://localhost:"))
        let handle = try #require(result.handle.flatMap(LocalProvisioner.decodeHandle))
        let port = handle.port
        let page = try await httpGet("http://127.0.0.1:\(port)/index.html")
        #expect(page.text == "hello from lab-w01-s001")
        var withHandle = request
        withHandle.handle = result.handle
        #expect(await provisioner.isAlive(withHandle))

        try await provisioner.delete(withHandle)
        #expect(!provisioner.alive(handle.pid))
        #expect(!LocalProvisioner.accepts(port: port))
        #expect(!FileManager.default.fileExists(atPath: "\(workspaces)/lab-w01-s001"))
        #expect(await !provisioner.isAlive(withHandle))
    }

    @Test("a command that never opens its port fails with its output; a command that ignores SIGTERM is killed")
    func localProvisionerFailures() async throws {
        let workspaces = FileManager.default.temporaryDirectory.appendingPathComponent("labportal-ws-\(UUID().uuidString.prefix(8))").path
        let provisioner = LocalProvisioner(
            configuration: .init(workspaces: workspaces, readyTimeout: .seconds(10), stopGrace: .milliseconds(300)),
            logger: quietLogger)
        let broken = ProvisionRequest(
            action: "create", session: "s-broken", environment: "e", workshop: "w", owner: nil, parameters: [],
            command: ["/bin/sh", "-c", "echo no such lab >&2; exit 3"], handle: nil)
        await #expect {
            _ = try await provisioner.create(broken)
        } throws: { error in
            (error as? ProvisionError)?.message.contains("no such lab") == true
        }
        let stubborn = ProvisionRequest(
            action: "create", session: "s-stubborn", environment: "e", workshop: "w", owner: nil, parameters: [],
            command: ["/bin/sh", "-c", #"trap '' TERM; exec python3 -c "import signal,socket,os,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); s=socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(); time.sleep(600)""#],
            handle: nil)
        let result = try await provisioner.create(stubborn)
        let handle = try #require(result.handle.flatMap(LocalProvisioner.decodeHandle))
        var request = stubborn
        request.handle = result.handle
        try await provisioner.delete(request)
        #expect(!provisioner.alive(handle.pid))
    }

    @Test("the exec provisioner passes the session JSON on stdin, reads the URL, and turns stderr into the error")
    func execProvisioner() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("labportal-exec-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("provision").path
        try writeExecutable(script, """
            #!/bin/sh
            input=$(cat)
            case "$1" in
              create) session=$(printf '%s' "$input" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"])')
                      [ "$session" = "bad" ] && { echo "quota exceeded for $session" >&2; exit 1; }
                      printf '{"url": "https://labs.test/%s", "handle": "vm-1"}' "$session" ;;
              delete) exit 0 ;;
              status) exit 0 ;;
            esac
            """)
        let provisioner = ExecProvisioner(executable: script, timeout: .seconds(20), logger: quietLogger)
        let request = ProvisionRequest(
            action: "create", session: "lab-w01-s001", environment: "lab-w01", workshop: "ws", owner: nil,
            parameters: [], command: nil, handle: nil)
        let result = try await provisioner.create(request)
        #expect(result == ProvisionResult(url: "https://labs.test/lab-w01-s001", handle: "vm-1"))
        try await provisioner.delete(request)
        var bad = request
        bad.session = "bad"
        await #expect {
            _ = try await provisioner.create(bad)
        } throws: { error in
            (error as? ProvisionError)?.message == "quota exceeded for bad"
        }
    }

    @Test("the exec provisioner: a command that never reads its input, one that exits at once, and one past its limit")
    func execProvisionerEdges() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("labportal-exec-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let request = ProvisionRequest(
            action: "create", session: "lab-w01-s002", environment: "lab-w01", workshop: "ws", owner: nil,
            parameters: [RequestParameter(name: "BIG", value: String(repeating: "x", count: 1_000_000))],
            command: nil, handle: nil)
        // Exits before reading a megabyte of input: a clean failure, and this process is not ended by SIGPIPE.
        let early = directory.appendingPathComponent("early").path
        try writeExecutable(early, "#!/bin/sh\necho 'no quota' >&2\nexit 3\n")
        let started = ContinuousClock.now
        await #expect {
            _ = try await ExecProvisioner(executable: early, timeout: .seconds(20), logger: quietLogger).create(request)
        } throws: { error in
            (error as? ProvisionError)?.message == "no quota"
        }
        // Its exit is noticed at once, not at the time limit.
        #expect(ContinuousClock.now - started < .seconds(10))
        // Reads all of it and answers.
        let reader = directory.appendingPathComponent("reader").path
        try writeExecutable(reader, """
            #!/bin/sh
            n=$(wc -c)
            printf '{"url": "https://labs.test/%s"}' "$n"
            """)
        let answered = try await ExecProvisioner(executable: reader, timeout: .seconds(20), logger: quietLogger).create(request)
        #expect((Int(answered.url.dropFirst("https://labs.test/".count)) ?? 0) > 1_000_000, "\(answered.url)")
        // Past its limit (and never reading its input): stopped, and the error says so.
        let slow = directory.appendingPathComponent("slow").path
        try writeExecutable(slow, "#!/bin/sh\nsleep 30\n")
        let slowStarted = ContinuousClock.now
        await #expect {
            _ = try await ExecProvisioner(executable: slow, timeout: .milliseconds(500), logger: quietLogger).create(request)
        } throws: { error in
            (error as? ProvisionError)?.message.contains("did not finish within") == true
        }
        // What it started (the sleep) went with it, instead of holding its output open for 30 s.
        #expect(ContinuousClock.now - slowStarted < .seconds(20))
    }
}
