@testable import ClassroomService
import Contracts
import Foundation
import HummingbirdTesting
import ServerKit
import Storage
import TestSupport
import Testing

@Suite("The class schedule, on a manual clock")
struct ScheduleTests {
    /// 2030/01/01 00:00 UTC plus `hours`.
    static func at(_ hours: Double) -> Date { ClassroomHarness.start.addingTimeInterval(hours * 3600) }

    static func move(_ harness: ClassroomHarness, to hours: Double) {
        harness.clock.advance(seconds: at(hours).timeIntervalSince(harness.clock.now))
    }

    /// A three-day class: 2030/01/03 09:00 to 2030/01/05 17:00 UTC, provisioned a day ahead, run an hour ahead, daily
    /// 08:00–18:00, shut down an hour after the end and deleted two hours after.
    nonisolated(unsafe) static let threeDays: [String: Any] = [
        "start_at": "2030/01/03 09:00:00", "end_at": "2030/01/05 17:00:00", "provision_hours": 24, "run_hours": 1,
        "shutdown_hours": 1, "cleanup_hours": 2, "daily_startup_time": "08:00", "daily_shutdown_time": "18:00",
    ]

    static func state(_ client: some TestClientProtocol, _ id: String) async throws -> [String: Any] {
        try await client.send(.get, "/v2/classes/\(id).json").object
    }

    static func labStates(_ client: some TestClientProtocol, _ id: String) async throws -> [String] {
        try await client.send(.get, "/v2/classes/\(id)/labs.json").array.compactMap { $0["state"] as? String }
    }

    static func activities(_ harness: ClassroomHarness, classID: String) async throws -> [String] {
        try await harness.dependencies.repository.auditEvents(after: nil, limit: 1000, filter: ListFilter()).0
            .filter { $0.targetType == "class" && $0.targetID == classID }.map(\.activity)
    }

    @Test("scheduled → provisioned → started → running → daily stop and start → expired → shutdown → deleted", arguments: TestBackends.all)
    func lifecycle(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let id = try await client.klass(course: course, Self.threeDays)
                #expect(try await Self.state(client, id)["state"] as? String == "incomplete")
                let labs = try await client.labs(id, ["Student 1", "Student 2"])
                let labIDs = labs.compactMap { $0["id"] as? String }
                #expect(labs.first?["state"] as? String == "initialized")
                #expect(labs.first?["desktops_url"] is NSNull)
                #expect(labs.first?["configuration_id"] is NSNull)
                #expect(try await Self.state(client, id)["state"] as? String == "scheduled")
                try await harness.pass()
                #expect(harness.labs.applied.isEmpty)

                // 2030/01/02 09:00: provision.
                Self.move(harness, to: 33)
                try await harness.pass(settle: false)
                var c = try await Self.state(client, id)
                #expect(c["state"] as? String == "provisioning")
                #expect(try await Self.labStates(client, id) == ["provisioning", "provisioning"])
                harness.labs.settle()
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["state"] as? String == "provisioned")
                #expect(c["labs_created_at"] as? String == "2030/01/02 09:00:00 +0000")
                let lab = try await client.send(.get, "/v2/labs/\(labIDs[0]).json").object
                #expect(lab["state"] as? String == "provisioned")
                #expect(lab["configuration_id"] as? String == "lab\(labIDs[0])-s001")
                #expect((lab["desktops_url"] as? String)?.hasPrefix("https://labs.example.com/desktops/") == true)
                #expect(lab["template_id"] as? String == "hello-http")
                #expect(lab["template_name"] as? String == "Title of hello-http")
                #expect(lab["region"] as? String == "local")
                #expect(try await client.send(.get, "/v2/courses/\(course)").object["last_deployed"] as? String == "2030/01/02 09:00:00 +0000")

                // 2030/01/03 08:00: run; 09:00: the class is in progress.
                Self.move(harness, to: 56)
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["state"] as? String == "started")
                #expect(c["labs_run_at"] as? String == "2030/01/03 08:00:00 +0000")
                #expect(try await Self.labStates(client, id) == ["started", "started"])
                Self.move(harness, to: 57)
                try await harness.pass()
                #expect(try await Self.state(client, id)["state"] as? String == "running")
                let environments = try await client.send(.get, "/v2/classes/\(id)/configurations.json").array
                #expect(environments.map { $0["runstate"] as? String } == ["running", "running"])
                #expect(environments.first?["id"] as? String == "lab\(labIDs[0])-s001")

                // Daily: stop at 18:00, start at 08:00 the next day.
                Self.move(harness, to: 66)
                try await harness.pass()
                #expect(try await Self.state(client, id)["state"] as? String == "shutdown")
                #expect(try await Self.labStates(client, id) == ["shut_down", "shut_down"])
                Self.move(harness, to: 80)
                try await harness.pass()
                #expect(try await Self.state(client, id)["state"] as? String == "running")
                #expect(try await Self.labStates(client, id) == ["started", "started"])
                Self.move(harness, to: 90)
                try await harness.pass()
                Self.move(harness, to: 104)
                try await harness.pass()
                #expect(try await Self.labStates(client, id) == ["started", "started"])

                // 2030/01/05 17:00: the end; 18:00 shut down; 19:00 deleted.
                Self.move(harness, to: 113)
                try await harness.pass()
                #expect(try await Self.state(client, id)["state"] as? String == "expired")
                Self.move(harness, to: 114)
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["state"] as? String == "shutdown")
                #expect(c["labs_shutdown_at"] as? String == "2030/01/05 18:00:00 +0000")
                Self.move(harness, to: 115)
                try await harness.pass(settle: false)
                #expect(try await Self.state(client, id)["state"] as? String == "pending_cleanup")
                #expect(try await Self.labStates(client, id) == ["deleting", "deleting"])
                harness.labs.settle()
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["state"] as? String == "expired")
                #expect(c["labs_deleted_at"] as? String == "2030/01/05 19:00:00 +0000")
                #expect(try await Self.labStates(client, id) == ["deleted", "deleted"])

                let expected = ["provisioned", "running", "stopped", "running", "stopped", "running", "stopped", "deleted"]
                for labID in labIDs {
                    #expect(harness.labs.applied.filter { $0.hasPrefix("\(labID):") } == expected.map { "\(labID):\($0)" })
                }
                #expect(
                    try await Self.activities(harness, classID: id) == [
                        "CreateTrainingClassHistory", "ProvisionTrainingClassHistory", "RunTrainingClassHistory",
                        "ShutdownTrainingClassHistory", "CleanUpTrainingClassHistory",
                    ])
                // Nothing more is ever due.
                Self.move(harness, to: 400)
                let idle = try await harness.pass()
                #expect(idle.advanced == 0)
            }
        }
    }

    @Test("a restart after everything came due catches up in one pass and never applies a step twice")
    func catchUp() async throws {
        let clock = ManualClock(ClassroomHarness.start)
        try await ClassroomHarness.with(clock: clock) { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let id = try await client.klass(course: course, Self.threeDays)
                let labs = try await client.labs(id, ["Student 1"])
                let labID = try #require(labs.first?["id"] as? String)
                // Down from before provisioning until 2030/01/04 12:00 (after a daily stop and start).
                Self.move(harness, to: 84)
                try await harness.pass()
                #expect(try await Self.state(client, id)["state"] as? String == "running")
                #expect(harness.labs.applied == ["\(labID):running"])
                // A second scheduler on the same database (the restarted process) finds nothing left to do.
                let restarted = ClassroomApplication.makeDependencies(
                    database: harness.database, catalog: harness.catalog.peer, labs: harness.labs.peer,
                    authenticator: StubUsers.authenticator, settings: harness.dependencies.settings, portalMaxAge: .zero,
                    now: clock.source, logger: quietLogger)
                let report = try await restarted.scheduler.pass()
                #expect(report.advanced == 0)
                #expect(harness.labs.applied == ["\(labID):running"])
                #expect(
                    try await Self.activities(harness, classID: id) == [
                        "CreateTrainingClassHistory", "ProvisionTrainingClassHistory", "RunTrainingClassHistory",
                    ])
            }
        }
    }

    @Test("two schedulers racing on one database apply each step once", arguments: TestBackends.all)
    func racingSchedulers(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                var ids: [String] = []
                for index in 0..<20 {
                    let id = try await client.klass(course: course, ["start_at": "2030/01/02 09:00:00", "name": "C\(index)"])
                    _ = try await client.labs(id, ["L"])
                    ids.append(id)
                }
                Self.move(harness, to: 33)
                let other = ClassroomApplication.makeDependencies(
                    database: harness.database, catalog: harness.catalog.peer, labs: harness.labs.peer,
                    authenticator: StubUsers.authenticator, settings: harness.dependencies.settings, portalMaxAge: .zero,
                    now: harness.clock.source, logger: quietLogger)
                async let first = harness.dependencies.scheduler.pass()
                async let second = other.scheduler.pass()
                let reports = try await [first, second]
                #expect(reports.map(\.advanced).reduce(0, +) == 20)
                for id in ids {
                    #expect(try await Self.activities(harness, classID: id).filter { $0 == "RunTrainingClassHistory" }.count == 1)
                }
            }
        }
    }

    @Test("a class whose template left the catalog is not provisioned, and says why")
    func templateMissing() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let id = try await client.klass(course: course, ["start_at": "2030/01/03 09:00:00", "run_hours": 1])
                _ = try await client.labs(id, ["Student 1"])
                let catalog = harness.catalog.snapshot.withLock { $0 }
                harness.catalog.update { $0.environments.removeFirst() }
                Self.move(harness, to: 33)
                try await harness.pass()
                let c = try await Self.state(client, id)
                #expect(c["state"] as? String == "provisioning")
                #expect((c["error_message"] as? String)?.contains("template") == true)
                #expect(harness.labs.applied.isEmpty)
                // Back in the catalog: provisioned on the next try.
                harness.catalog.update { $0.environments = catalog.environments }
                harness.clock.advance(seconds: 61)
                try await harness.pass()
                let again = try await Self.state(client, id)
                #expect(again["state"] as? String == "provisioned")
                #expect(again["error_message"] is NSNull)
            }
        }
    }

    @Test("failures show on the lab and the class and are retried; session-service down is said and retried")
    func failures() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let id = try await client.klass(course: course, ["start_at": "2030/01/03 09:00:00", "run_hours": 1])
                _ = try await client.labs(id, ["Student 1"])
                harness.labs.state.withLock { $0.down = true }
                Self.move(harness, to: 33)
                try await harness.pass(settle: false)
                var c = try await Self.state(client, id)
                #expect((c["error_message"] as? String)?.hasPrefix("session-service could not be reached") == true)
                harness.labs.state.withLock {
                    $0.down = false
                    $0.failing = "disk full on the lab host"
                }
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["error_message"] as? String == "lab Student 1: disk full on the lab host")
                #expect(try await Self.labStates(client, id) == ["provisioning_error"])
                harness.labs.state.withLock { $0.failing = nil }
                try await harness.pass()
                c = try await Self.state(client, id)
                #expect(c["error_message"] is NSNull)
                #expect(c["state"] as? String == "provisioned")
            }
        }
    }

    @Test("labs: cap, added after provisioning made at once, rename and delete rules, class delete")
    func labs() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()  // max_labs 5
                let id = try await client.klass(course: course, ["start_at": "2030/01/03 09:00:00", "run_hours": 1])
                let one = try await client.send(.post, "/v2/classes/\(id)/labs.json", json: ["name": "Lab name 1"])
                #expect(one.status == .ok)
                #expect(one.object["name"] as? String == "Lab name 1")
                #expect(one.object["class_id"] as? String == id)
                let labID = try #require(one.object["id"] as? String)
                let tooMany = try await client.send(
                    .post, "/v2/classes/\(id)/labs/create_multiple.json", json: (0..<5).map { ["name": "L\($0)"] })
                #expect(tooMany.status == .unprocessableContent)
                #expect(tooMany.field == "max_labs")
                #expect(try await client.send(.post, "/v2/classes/\(id)/labs.json", json: ["name": ""]).field == "name")
                #expect(try await client.send(.post, "/v2/classes/\(id)/labs.json", as: "bob", json: ["name": "x"]).status == .forbidden)
                let renamed = try await client.send(.put, "/v2/lab/\(labID).json", json: ["name": "New lab name"])
                #expect(renamed.object["name"] as? String == "New lab name")
                #expect(try await client.send(.get, "/v2/classes/\(id)").object["lab_count"] as? Int == 1)

                Self.move(harness, to: 33)
                try await harness.pass(settle: false)
                // Provisioning: no rename (423), no delete (423, with Retry-After).
                let busy = try await client.send(.delete, "/v2/lab/\(labID).json")
                #expect(busy.status.code == 423)
                #expect(busy.header("Retry-After") == "10")
                #expect(try await client.send(.put, "/v2/lab/\(labID).json", json: ["name": "x"]).status.code == 423)
                harness.labs.settle()
                try await harness.pass()
                // Provisioned: rename refused for good.
                let locked = try await client.send(.put, "/v2/lab/\(labID).json", json: ["name": "x"])
                #expect(locked.status == .unprocessableContent)
                // A lab added now is provisioned at once.
                let late = try await client.send(.post, "/v2/classes/\(id)/labs.json", json: ["name": "Late"])
                let lateID = try #require(late.object["id"] as? String)
                try await harness.pass()
                #expect(try await client.send(.get, "/v2/labs/\(lateID)").object["state"] as? String == "provisioned")
                // Removing a provisioned lab deletes its environment.
                #expect(try await client.send(.delete, "/v2/lab/\(lateID).json").status == .ok)
                #expect(try await client.send(.get, "/v2/labs/\(lateID)").status == .notFound)
                try await harness.pass()
                #expect(harness.labs.applied.contains("\(lateID):deleted"))
                #expect(try await client.send(.get, "/v2/classes/\(id)").object["lab_count"] as? Int == 1)

                // Deleting the class deletes its labs' environments, then the class.
                let deleting = try await client.send(.delete, "/v2/classes/\(id)")
                #expect(deleting.object["state"] as? String == "pending_deletion")
                try await harness.pass()
                #expect(harness.labs.applied.contains("\(labID):deleted"))
                #expect(try await client.send(.get, "/v2/classes/\(id)").status == .notFound)
                #expect(try await client.send(.get, "/v2/courses/\(course)").object["class_count"] as? Int == 0)
                let audit = try await harness.dependencies.repository.auditEvents(after: nil, limit: 100, filter: ListFilter()).0
                    .map(\.activity)
                for activity in ["CreateTrainingLabHistory", "UpdateTrainingLabHistory", "DeleteTrainingLabHistory", "DeleteTrainingClassHistory"] {
                    #expect(audit.contains(activity))
                }
            }
        }
    }
}
