import Foundation
import SQLKit
import Storage
import Synchronization
import TestSupport
import Testing

/// Two replicas of every service, started by `deploy/local/up` on the PostgreSQL server it manages, behind nginx, and
/// the faults an operator meets: replicas starting together on an empty database, a rush against capacity, the
/// database restarting under load, SIGTERM under load and idle, SIGKILL of a session replica under load, of the class
/// scheduler's holder before a step comes due, and of a report replica in the middle of an export. Figures are
/// printed for the notes.
@Suite("Replicas under faults", .serialized)
struct ReplicaFaultTests {
    static var enabled: Bool {
        let postgres = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.isEmpty == false
        return postgres && NginxProxy.binary != nil
    }

    @Test("two replicas of every service: start together, hold capacity, survive a PostgreSQL restart, stop on SIGTERM, lose nothing to SIGKILL, move the scheduler and an export")
    func replicas() async throws {
        guard Self.enabled else {
            #expect(!TestBackends.postgresRequired && !NginxProxy.required, "PostgreSQL and nginx are required in this run")
            return
        }
        // Small report pages, so that a 4,000-row export runs long enough to be killed in the middle.
        let stack = try await ReplicaStack(
            replicas: 2, settings: ["LABPORTAL_REPORTS_PAGE_SIZE": "10", "LABPORTAL_REPORTS_ROW_PAGE_SIZE": "10"])
        do {
            try await exercise(stack)
        } catch {
            await stack.tearDown()
            throw error
        }
        await stack.tearDown()
    }

    func exercise(_ stack: ReplicaStack) async throws {
        // 1. Every replica of every service starts at the same moment on an empty database, and all become ready
        //    (`up` returns once every /readyz answers 200).
        progress("starting two replicas of every service")
        let up = await stack.run("up")
        progress("up returned \(up.status)")
        try #require(up.status == 0, "deploy/local/up failed:\n\(up.output)")
        for service in ReplicaStack.services {
            for replica in 1...2 {
                let ready = try await httpGet("http://127.0.0.1:\(stack.httpPort(service, replica: replica))/readyz")
                #expect(ready.status == 200, "\(service) \(replica): \(ready.text)")
            }
        }
        let metrics = try await httpGet("http://127.0.0.1:\(stack.httpPort("session", replica: 2))/metrics")
        #expect(metrics.text.contains(#"replica="session-service-2""#))
        progress("replicas ready; status")
        let status = await stack.run("status")
        progress("status returned \(status.status)")
        #expect(status.output.contains("session-runtime"), "status names the lease holders:\n\(status.output)")

        let credentials = try stack.credentials()
        let token = try await robotToken(origin: stack.origin, credentials: credentials)

        progress("token")
        // 2. 200 requests by new users at once against capacity 10, spread over both session replicas.
        let answers = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
            for _ in 0..<200 {
                group.addTask { try await request(stack, token: token, environment: "labportal-w01", timeout: 60) }
            }
            var all: [HTTPResult] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        // Spares count against capacity (as in Educates), and a spare still starting is claimed when no ready one is
        // left, so nobody is refused while an unowned spare is live: all ten places go to requests, none twice.
        let granted = answers.filter { $0.status == 200 }
        let refused = answers.filter { $0.status == 503 }
        #expect(granted.count + refused.count == 200, "\(Dictionary(grouping: answers, by: \.status).mapValues(\.count))")
        #expect(refused.allSatisfy { $0.json?["error"] != nil })
        #expect(Set(granted.compactMap { $0.json?["name"] as? String }).count == granted.count)
        #expect(Set(answers.compactMap { $0.header("X-LabPortal-Service") }) == ["session"])
        let live = try psql(stack, "SELECT COUNT(*) FROM session.sessions WHERE environment = 'labportal-w01' AND state IN ('STARTING', 'WAITING', 'RUNNING', 'STOPPING')")
        let owned = try psql(stack, "SELECT COUNT(*) FROM session.sessions WHERE environment = 'labportal-w01' AND owner_id IS NOT NULL AND state IN ('STARTING', 'WAITING', 'RUNNING', 'STOPPING')")
        #expect(live == "10", "capacity 10 is used, and not exceeded")
        #expect(owned == String(granted.count), "every session handed out is owned, and only those")
        #expect(granted.count == 10, "every place goes to a request; none is left as a spare")
        print("replica faults: 200 requests at once against capacity 10: \(granted.count) sessions, \(refused.count) × 503, \(live) live")

        // 3. PostgreSQL restarts under load: every replica serves again without a restart of its own.
        let load = Churn()
        let loadTask = Task { await load.run(stack, token: token, environment: "labportal-w02", workers: 6, seconds: 90) }
        try await Task.sleep(for: .seconds(2))
        progress("restarting PostgreSQL")
        let restarted = await stack.restartPostgres()
        progress("PostgreSQL restarted")
        try #require(restarted.status == 0, "pg_ctl restart failed: \(restarted.output)")
        let afterRestart = ContinuousClock.now
        var recovery: [String: Duration] = [:]
        for service in ReplicaStack.services {
            for replica in 1...2 {
                let port = stack.httpPort(service, replica: replica)
                let answered = await eventually(attempts: 300, interval: .milliseconds(100)) {
                    let path = service == "session"
                        ? "/workshops/environment/labportal-w02/request/?index_url=x" : "/readyz"
                    let answer = try? await httpRequest(
                        "GET", "http://127.0.0.1:\(port)\(path)",
                        headers: service == "session" ? ["Authorization": "Bearer \(token)"] : [:], timeout: 5)
                    return answer.map { $0.status == 200 || ($0.status == 503 && service == "session" && $0.json?["kind"] as? String == "unavailable" && ($0.json?["error"] as? String)?.contains("database") == false) } ?? false
                }
                recovery[stack.replicaName(service, replica)] = ContinuousClock.now - afterRestart
                #expect(answered, "\(stack.replicaName(service, replica)) did not serve again within 30 s of the restart")
            }
        }
        for service in ReplicaStack.services {
            for replica in 1...2 {
                let ready = await eventually(attempts: 100, interval: .milliseconds(100)) {
                    (try? await httpGet("http://127.0.0.1:\(stack.httpPort(service, replica: replica))/readyz").status) == 200
                }
                #expect(ready, "\(stack.replicaName(service, replica)) is not ready after the restart")
            }
        }
        print("replica faults: served again after `pg_ctl restart -m fast` (s): "
            + recovery.sorted { $0.key < $1.key }.map { "\($0.key) \(seconds($0.value))" }.joined(separator: ", "))

        progress("all serve again")
        // 4. SIGTERM under load (a session replica) and idle (a catalog replica): each exits within its drain time
        //    (25 s) plus the 5 s of cancellation.
        for (service, underLoad) in [("session", true), ("catalog", false)] {
            let pid = try #require(stack.pid(service, replica: 2))
            let sent = ContinuousClock.now
            kill(pid, SIGTERM)
            let stopped = await eventually(attempts: 400, interval: .milliseconds(100)) { !stack.isAlive(pid) }
            #expect(stopped, "\(service)-service-2 was still running 40 s after SIGTERM")
            print("replica faults: \(service)-service-2 stopped \(seconds(ContinuousClock.now - sent)) s after SIGTERM (\(underLoad ? "under load" : "idle"))")
        }
        load.stop()
        let restartLoad = await loadTask.value
        print("replica faults: load during the restart and SIGTERM: \(restartLoad.counts.sorted { $0.key < $1.key })")
        #expect(restartLoad.counts["500", default: 0] == 0, "no request failed with an internal error: \(restartLoad.counts)")
        #expect(restartLoad.counts["200", default: 0] > 0)
        progress("restarting the stopped replicas")
        let again = await stack.run("up")
        try #require(again.status == 0, "deploy/local/up failed:\n\(again.output)")

        try await killSessionReplicaUnderLoad(stack, token: token)
        try await moveSchedulerLease(stack)
        try await killReportReplicaMidJob(stack)
    }

    /// A session-service replica killed with SIGKILL under churn, then restarted: every session handed out exists,
    /// none twice, capacity is never exceeded, and the labs it started still answer.
    func killSessionReplicaUnderLoad(_ stack: ReplicaStack, token: String) async throws {
        progress("SIGKILL of session-service-2 under load")
        let labsBefore = try liveLabs(stack, environment: "labportal-w01")
        let load = Churn()
        let loadTask = Task { await load.run(stack, token: token, environment: "labportal-w02", workers: 6, seconds: 60) }
        let sampling = Task { () -> Int in
            var most = 0
            while !Task.isCancelled {
                if let live = Int((try? psql(stack, "SELECT COUNT(*) FROM session.sessions WHERE environment = 'labportal-w02' AND state IN ('STARTING', 'WAITING', 'RUNNING', 'STOPPING')")) ?? "") {
                    most = max(most, live)
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return most
        }
        try await Task.sleep(for: .seconds(3))
        let pid = try #require(stack.pid("session", replica: 2))
        let killed = ContinuousClock.now
        kill(pid, SIGKILL)
        try await Task.sleep(for: .seconds(3))
        let up = await stack.run("up")
        try #require(up.status == 0, "deploy/local/up did not restart the killed replica:\n\(up.output)")
        let restarted = ContinuousClock.now
        let newPID = try #require(stack.pid("session", replica: 2))
        #expect(newPID != pid && stack.isAlive(newPID))
        try await Task.sleep(for: .seconds(3))
        load.stop()
        let outcome = await loadTask.value
        sampling.cancel()
        let most = await sampling.value

        let names = outcome.sessions.map(\.name)
        #expect(Set(names).count == names.count, "no two answers share a session")
        #expect(!names.isEmpty)
        let list = names.map { "'\($0)'" }.joined(separator: ",")
        let known = try psql(stack, "SELECT COUNT(*) FROM session.sessions WHERE owner_id IS NOT NULL AND name IN (\(list.isEmpty ? "''" : list))")
        #expect(known == String(names.count), "every session answered 200 exists afterwards, owned")
        #expect(most <= 5, "capacity 5 was never exceeded (most live seen: \(most))")
        #expect(outcome.counts["500", default: 0] == 0, "\(outcome.counts)")
        let gap = outcome.longestGap(from: killed, to: restarted)
        print("replica faults: SIGKILL of session-service-2 under load: \(names.count) sessions handed out, "
            + "answers \(outcome.counts.sorted { $0.key < $1.key }), most live \(most) of 5, "
            + "longest gap without a session between the kill and the restart \(seconds(gap)) s")

        // The labs the replicas started before (the rush's sessions, half of them by the killed replica) still
        // answer, or have ended with a reason; none is left counted but unusable.
        print("replica faults: \(labsBefore.count) labs started before the kill checked")
        #expect(!labsBefore.isEmpty)
        for (name, url) in labsBefore {
            let state = try psql(stack, "SELECT state FROM session.sessions WHERE name = '\(name)'")
            if ["STOPPING", "STOPPED"].contains(state) {
                let reason = try psql(stack, "SELECT COALESCE(error_message, '') FROM session.sessions WHERE name = '\(name)'")
                print("replica faults: \(name) ended (\(reason))")
                continue
            }
            let answered = await eventually(attempts: 50, interval: .milliseconds(200)) {
                (try? await httpGet(url, timeout: 5).status) == 200
            }
            #expect(answered, "the lab of \(name) (\(state)) at \(url) does not answer after its replica was killed")
        }
    }

    /// The replica holding the class scheduler's lease is killed just before a class's provisioning comes due: the
    /// other takes the lease within its lifetime and provisions the class.
    func moveSchedulerLease(_ stack: ReplicaStack) async throws {
        let auth = try adminAuth(stack)
        let course = try await httpRequest(
            "POST", "\(stack.origin)/courses.json?name=Lease%20course&template_ids=hello-http&max_labs=3", headers: auth,
            body: Data())
        let courseID = try #require(course.json?["id"] as? String, "\(course.status) \(course.text)")
        // Provisioning is due 20 s from now: after the kill, and after the lease (15 s) has expired.
        let due = Date().addingTimeInterval(20)
        let klass = try await httpRequest(
            "POST", "\(stack.origin)/courses/\(courseID)/classes.json", headers: auth,
            body: try JSONSerialization.data(withJSONObject: [
                "start_at": ClassroomFlowTests.skytapTime(due.addingTimeInterval(3600)), "provision_hours": 1, "run_hours": 1,
                "password": "",
            ]))
        let classID = try #require(klass.json?["id"] as? String, "\(klass.status) \(klass.text)")
        let labs = try await httpRequest(
            "POST", "\(stack.origin)/v2/classes/\(classID)/labs/create_multiple.json", headers: auth,
            body: try JSONSerialization.data(withJSONObject: [["name": "Student 1"]]))
        #expect(labs.status == 200, "\(labs.text)")
        func state() async -> String? {
            (try? await httpRequest("GET", "\(stack.origin)/v2/classes/\(classID).json", headers: auth))?.json?["state"] as? String
        }
        #expect(await state() == "scheduled")

        progress("SIGKILL of the class scheduler's holder")
        let holder = try psql(stack, "SELECT holder FROM classroom.leases WHERE name = 'classroom-scheduler'")
        let pids = [1, 2].compactMap { stack.pid("classroom", replica: $0) }
        let holding = try #require(pids.first { holder.contains(":\($0):") }, "lease holder \(holder) is no replica of \(pids)")
        let other = try #require(pids.first { $0 != holding })
        let killed = ContinuousClock.now
        let killedAt = Date()
        kill(holding, SIGKILL)
        let moved = await eventually(attempts: 300, interval: .milliseconds(100)) {
            ((try? psql(stack, "SELECT holder FROM classroom.leases WHERE name = 'classroom-scheduler'")) ?? "")
                .contains(":\(other):")
        }
        #expect(moved, "the other classroom replica did not take the scheduler lease within 30 s")
        print("replica faults: class scheduler lease moved \(seconds(ContinuousClock.now - killed)) s after its holder was killed (lease 15 s)")
        #expect(ContinuousClock.now - killed < .seconds(25), "within the lease's 15 s plus a renewal interval")

        // The step that came due is applied by the new holder, on time (the scheduler's interval is 2 s).
        let applied = await eventually(attempts: 400, interval: .milliseconds(100)) {
            let current = await state()
            return current != nil && current != "scheduled"
        }
        let late = Date().timeIntervalSince(due)
        #expect(applied, "the class was not provisioned within 40 s of the kill")
        print("replica faults: the class's provisioning, due \(String(format: "%.1f", due.timeIntervalSince(killedAt))) s after the kill, was applied \(String(format: "%.1f", late)) s after it came due, by the new holder")
        #expect(late < 10, "the provisioning came due \(late) s ago and is not applied")
        let provisioned = await eventually(attempts: 300, interval: .milliseconds(200)) {
            (try? await httpRequest("GET", "\(stack.origin)/v2/classes/\(classID).json", headers: auth))?.json?["labs_created_at"] is String
        }
        let final = await state() ?? "?"
        #expect(provisioned, "the class's labs were not made: \(final)")
        progress("restarting the killed classroom replica")
        let again = await stack.run("up")
        try #require(again.status == 0, "deploy/local/up failed:\n\(again.output)")
    }

    /// The report-service replica running a long export is killed: the job's lease runs out, the other replica takes
    /// it, and the report becomes ready with every row.
    func killReportReplicaMidJob(_ stack: ReplicaStack) async throws {
        progress("seeding 4,000 labs for a long export")
        let url = try #require(stack.databaseURL)
        let database = try await Database.open(.postgres(url: url, schema: "classroom"), logger: quietLogger)
        let classID = try await database.withRunning { try await ReportFlowTests.seedLabs(into: $0, count: 4_000) }
        let auth = try adminAuth(stack)
        let created = try await httpRequest(
            "POST", "\(stack.origin)/v2/classes/\(classID)/labs/exports.json", headers: auth, body: Data())
        let id = try #require(created.json?["id"] as? String, "\(created.status) \(created.text)")
        try #require(id.allSatisfy { $0.isNumber }, "export id \(id)")
        func poll() async -> [String: Any] {
            (try? await httpRequest("GET", "\(stack.origin)/v2/labs/exports/\(id).json", headers: auth))?.json ?? [:]
        }
        let running = await eventually(attempts: 600, interval: .milliseconds(50)) { (await poll()["rows"] as? Int ?? 0) > 0 }
        try #require(running, "the export did not start")
        let holder = try psql(stack, "SELECT holder FROM report.exports WHERE id = \(id)")
        let pids = [1, 2].compactMap { stack.pid("report", replica: $0) }
        let holding = try #require(pids.first { holder.contains(":\($0):") }, "export holder \(holder) is no replica of \(pids)")
        let rowsAtKill = await poll()["rows"] as? Int ?? 0
        #expect(await poll()["ready"] as? Bool == false, "still running when its replica is killed")
        progress("SIGKILL of the report replica running export \(id) at \(rowsAtKill) rows")
        let killed = ContinuousClock.now
        kill(holding, SIGKILL)
        let ready = await eventually(attempts: 1800, interval: .milliseconds(100)) { await poll()["ready"] as? Bool == true }
        #expect(ready, "the export did not become ready within 180 s of the kill")
        print("replica faults: export \(id) killed at \(rowsAtKill) of 4,000 rows, ready on the other replica \(seconds(ContinuousClock.now - killed)) s later (job lease 30 s)")
        let done = await poll()
        #expect(done["rows"] as? Int == 4_000)
        let finisher = try psql(stack, "SELECT COALESCE(holder, '') FROM report.exports WHERE id = \(id)")
        #expect(!finisher.contains(":\(holding):"), "finished by the killed replica?")
        let csv = try await httpRequest("GET", "\(stack.origin)/v2/labs/exports/\(id).csv", headers: auth)
        #expect(csv.status == 200)
        let table = CSVTable.parse(String(decoding: csv.body, as: UTF8.self))
        #expect(table.count == 4_001, "a header and every row, once")
        #expect(Set(table.dropFirst().map { $0.first ?? "" }).count == 4_000)
        #expect(table.dropFirst().contains { $0.count > 2 && $0[2] == "Lab 10000, \"seeded\"" })
        progress("restarting the killed report replica")
        let again = await stack.run("up")
        try #require(again.status == 0, "deploy/local/up failed:\n\(again.output)")
    }

    func adminAuth(_ stack: ReplicaStack) throws -> [String: String] {
        let c = try stack.credentials()
        let basic = "Basic " + Data("\(c["LABPORTAL_ADMIN_USER"] ?? ""):\(c["LABPORTAL_ADMIN_API_TOKEN"] ?? "")".utf8).base64EncodedString()
        return ["Authorization": basic, "Accept": "application/json", "Content-Type": "application/json"]
    }

    /// The live sessions of an environment that are owned, with their lab's URL.
    func liveLabs(_ stack: ReplicaStack, environment: String) throws -> [(String, String)] {
        try psql(stack, "SELECT name || ' ' || url FROM session.sessions WHERE environment = '\(environment)' AND owner_id IS NOT NULL AND url IS NOT NULL AND state IN ('WAITING', 'RUNNING')")
            .split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            }
    }

    func progress(_ text: String) {
        print("replica faults [\(Date())]: \(text)")
    }

    func seconds(_ duration: Duration) -> String {
        String(format: "%.2f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    func psql(_ stack: ReplicaStack, _ query: String) throws -> String {
        let url = try #require(stack.databaseURL)
        let result = runProcess("/usr/bin/psql", [url, "-Atc", query])
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

func request(_ stack: ReplicaStack, token: String, environment: String, timeout: TimeInterval) async throws -> HTTPResult {
    try await httpRequest(
        "GET", "\(stack.origin)/workshops/environment/\(environment)/request/?index_url=x",
        headers: ["Authorization": "Bearer \(token)"], timeout: timeout)
}

/// Session churn by a few workers until stopped (or `seconds` pass): each requests a session for a new user and,
/// when it gets one, terminates it, so that capacity keeps freeing. Counts answers by status and keeps every session
/// handed out with the moment it was.
final class Churn: Sendable {
    struct Outcome: Sendable {
        var counts: [String: Int] = [:]
        var sessions: [(name: String, at: ContinuousClock.Instant)] = []

        /// The longest stretch with no session handed out, between `from` and `to`.
        func longestGap(from: ContinuousClock.Instant, to: ContinuousClock.Instant) -> Duration {
            let moments = [from] + sessions.map(\.at).filter { $0 > from && $0 < to }.sorted() + [to]
            return zip(moments, moments.dropFirst()).map { $1 - $0 }.max() ?? .zero
        }
    }

    private let stopped = Mutex(false)

    func stop() { stopped.withLock { $0 = true } }

    func run(_ stack: ReplicaStack, token: String, environment: String, workers: Int, seconds: Int) async -> Outcome {
        let end = ContinuousClock.now + .seconds(seconds)
        return await withTaskGroup(of: Outcome.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var outcome = Outcome()
                    while ContinuousClock.now < end && !self.stopped.withLock({ $0 }) {
                        let key: String
                        do {
                            let answer = try await request(stack, token: token, environment: environment, timeout: 30)
                            key = String(answer.status)
                            if answer.status == 200, let name = answer.json?["name"] as? String {
                                outcome.sessions.append((name, ContinuousClock.now))
                                _ = try? await httpRequest(
                                    "GET", "\(stack.origin)/workshops/session/\(name)/terminate/",
                                    headers: ["Authorization": "Bearer \(token)"], timeout: 30)
                            } else {
                                try? await Task.sleep(for: .milliseconds(50))
                            }
                        } catch {
                            key = "no answer"
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                        outcome.counts[key, default: 0] += 1
                    }
                    return outcome
                }
            }
            var total = Outcome()
            for await outcome in group {
                total.counts.merge(outcome.counts, uniquingKeysWith: +)
                total.sessions += outcome.sessions
            }
            return total
        }
    }
}
