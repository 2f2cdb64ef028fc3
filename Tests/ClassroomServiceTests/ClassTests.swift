@testable import ClassroomService
import Foundation
import HummingbirdTesting
import ServerKit
import Storage
import TestSupport
import Testing

@Suite("Classrooms REST: classes")
struct ClassTests {
    @Test("schedule a class: defaults from the course, times in the class's time zone, every field")
    func schedule() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course("Kubernetes 101")
                let answer = try await client.send(
                    .post, "/courses/\(course)/classes.json",
                    json: [
                        "start_at": "2030/01/10 09:00:00", "end_at": "2030/01/12 17:00:00",
                        "time_zone": "America/Los_Angeles", "provision_hours": 48, "run_hours": 2,
                        "shutdown_hours": 1, "cleanup_hours": 24, "daily_startup_time": "08:00",
                        "daily_shutdown_time": "18:00", "start_time": "07:30", "end_time": "19:00", "runtime_limit": 240,
                        "expiration_date": "2030/01/13 00:00:00", "password": "open sesame",
                    ])
                #expect(answer.status == .ok, "\(answer.text)")
                let c = answer.object
                #expect(c["name"] as? String == "Kubernetes 101")
                #expect(c["description"] as? String == "About Kubernetes 101")
                #expect(c["course_id"] as? String == course)
                #expect(c["start_at"] as? String == "2030/01/10 09:00:00 -0800")
                #expect(c["end_at"] as? String == "2030/01/12 17:00:00 -0800")
                #expect(c["expiration_date"] as? String == "2030/01/13 00:00:00 -0800")
                #expect(c["time_zone"] as? String == "America/Los_Angeles")
                #expect(c["provision_hours"] as? Int == 48)
                #expect(c["run_hours"] as? Int == 2)
                #expect(c["delete_at_end"] as? Bool == true)
                #expect(c["daily_startup_time"] as? String == "08:00")
                #expect(c["start_time"] as? String == "07:30")
                #expect(c["runtime_limit"] as? Int == 240)
                #expect(c["password"] == nil, "password is write-only")
                #expect((c["access_code"] as? String)?.count == 12)
                #expect(c["state"] as? String == "incomplete")
                #expect(c["lab_count"] as? Int == 0)
                #expect(c["labs_created_at"] is NSNull)
                #expect(c["regions"] as? [String] == ["local"])
                #expect(c["can_edit"] as? Bool == true)
                // Defaults: 24 and 24 hours, no end, UTC.
                let plain = try await client.send(.post, "/v2/courses/\(course)/classes", json: ["start_at": "2030-01-05T10:00:00Z"])
                #expect(plain.object["provision_hours"] as? Int == 24)
                #expect(plain.object["run_hours"] as? Int == 24)
                #expect(plain.object["start_at"] as? String == "2030/01/05 10:00:00 +0000")
                #expect(plain.object["delete_at_end"] as? Bool == false)
                #expect(try await client.send(.post, "/courses/999/classes.json", json: ["start_at": "2030/01/05 10:00:00"]).status == .notFound)
            }
        }
    }

    @Test("every class rule is refused with 422 naming the field")
    func validation() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let cases: [([String: Any], String)] = [
                    ([:], "start_at"),
                    (["start_at": "2029/12/31 00:00:00"], "start_at"),
                    (["start_at": "next tuesday"], "start_at"),
                    (["start_at": "2030/01/05 10:00:00", "end_at": "2030/01/05 09:00:00"], "end_at"),
                    (["start_at": "2030/01/05 10:00:00", "provision_hours": 0], "provision_hours"),
                    (["start_at": "2030/01/05 10:00:00", "provision_hours": 337], "provision_hours"),
                    (["start_at": "2030/01/05 10:00:00", "run_hours": 337], "run_hours"),
                    (["start_at": "2030/01/05 10:00:00", "provision_hours": 4, "run_hours": 5], "run_hours"),
                    (["start_at": "2030/01/05 10:00:00", "shutdown_hours": 5, "cleanup_hours": 2], "shutdown_hours"),
                    (["start_at": "2030/01/05 10:00:00", "daily_startup_time": "08:00"], "daily_startup_time"),
                    (["start_at": "2030/01/05 10:00:00", "daily_shutdown_time": "18:00"], "daily_shutdown_time"),
                    (["start_at": "2030/01/05 10:00:00", "daily_startup_time": "8am", "daily_shutdown_time": "18:00"], "daily_startup_time"),
                    (["start_at": "2030/01/05 10:00:00", "start_time": "09:00"], "start_time"),
                    (["start_at": "2030/01/05 10:00:00", "start_time": "09:00", "end_time": "25:00"], "end_time"),
                    (["start_at": "2030/01/05 10:00:00", "runtime_limit": 0], "runtime_limit"),
                    (["start_at": "2030/01/05 10:00:00", "time_zone": "Mars/Olympus"], "time_zone"),
                    (["start_at": "2030/01/05 10:00:00", "expiration_date": "soon"], "expiration_date"),
                    (["start_at": "2030/01/05 10:00:00", "name": String(repeating: "n", count: 65)], "name"),
                    (["start_at": "2030/01/05 10:00:00", "description": String(repeating: "d", count: 1001)], "description"),
                ]
                for (json, field) in cases {
                    let answer = try await client.send(.post, "/courses/\(course)/classes.json", json: json)
                    #expect(answer.status == .unprocessableContent, "\(json): \(answer.status)")
                    #expect(answer.field == field, "\(json): \(answer.text)")
                }
            }
        }
    }

    @Test("edit: pairs edited separately once set, null removes the window; end only while running")
    func edit() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let id = try await client.klass(
                    course: course,
                    ["start_at": "2030/01/02 09:00:00", "end_at": "2030/01/02 17:00:00", "start_time": "08:00", "end_time": "18:00"])
                let one = try await client.send(.put, "/v2/classes/\(id).json", json: ["end_time": "20:00"])
                #expect(one.status == .ok)
                #expect(one.object["start_time"] as? String == "08:00")
                #expect(one.object["end_time"] as? String == "20:00")
                let half = try await client.send(.put, "/v2/classes/\(id).json", json: ["end_time": NSNull()])
                #expect(half.status == .unprocessableContent)
                #expect(half.field == "end_time")
                let removed = try await client.send(.put, "/v2/classes/\(id).json", json: ["start_time": NSNull(), "end_time": NSNull()])
                #expect(removed.object["start_time"] is NSNull)
                #expect(removed.object["end_time"] is NSNull)
                let renamed = try await client.send(.put, "/v2/classes/\(id).json?name=Change%20class%20name", body: "", headers: [.contentType: "application/json"])
                #expect(renamed.object["name"] as? String == "Change class name")
                #expect(try await client.send(.put, "/v2/classes/\(id).json", as: "bob", json: ["name": "x"]).status == .forbidden)

                // Once it is running, end_at ends it.
                _ = try await client.labs(id, ["Student 1"])
                harness.clock.advance(seconds: 86_400 + 10 * 3600)  // 2030/01/02 10:00
                try await harness.pass()
                let running = try await client.send(.get, "/v2/classes/\(id)")
                #expect(running.object["state"] as? String == "running")
                let ended = try await client.send(.put, "/v2/classes/\(id).json", json: ["end_at": "2030/01/02 12:00:00"])
                #expect(ended.status == .ok, "\(ended.text)")
                #expect(ended.object["end_at"] as? String == "2030/01/02 12:00:00 +0000")
                let early = try await client.send(.put, "/v2/classes/\(id).json", json: ["end_at": "2030/01/01 12:00:00"])
                #expect(early.status == .unprocessableContent)
                harness.clock.advance(seconds: 3 * 3600)
                try await harness.pass()
                #expect(try await client.send(.get, "/v2/classes/\(id)").object["state"] as? String == "expired")
                let late = try await client.send(.put, "/v2/classes/\(id).json", json: ["end_at": "2030/01/03 12:00:00"])
                #expect(late.status == .unprocessableContent)
                #expect(late.error?.contains("running") == true)
            }
        }
    }

    @Test("list: query by name, user, course, state (error too) and region; sort; paging headers", arguments: TestBackends.all)
    func list(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let web = try await client.course("Web")
                let shell = try await client.course("Shell", extra: ["template_ids": ["shell"]])
                let a = try await client.klass(course: web, ["start_at": "2030/01/05 10:00:00", "name": "Alpha"])
                _ = try await client.klass(course: shell, ["start_at": "2030/01/05 10:00:00", "name": "beta"])
                let bobCourse = try await client.course("Bob's", as: "bob")
                _ = try await client.klass(course: bobCourse, ["start_at": "2030/01/05 10:00:00", "name": "Gamma"], as: "bob")
                _ = try await client.labs(a, ["L1"])

                let all = try await client.send(.get, "/v2/classes.json?count=2")
                #expect(all.array.count == 2)
                #expect(all.header("Content-Range") == "items 0-1/3")
                #expect(all.header("Link")?.contains("offset=2") == true)
                #expect(try await client.send(.get, "/v2/classes?query=name:alp").array.count == 1)
                #expect(try await client.send(.get, "/v2/classes?query=user_id:3").array.map { $0["name"] as? String } == ["Gamma"])
                #expect(try await client.send(.get, "/v2/classes?query=course_id:\(shell)").array.map { $0["name"] as? String } == ["beta"])
                #expect(try await client.send(.get, "/v2/classes?query=state:scheduled").array.map { $0["name"] as? String } == ["Alpha"])
                #expect(try await client.send(.get, "/v2/classes?query=state:incomplete").array.count == 2)
                #expect(try await client.send(.get, "/v2/classes?query=region:eu").array.map { $0["name"] as? String } == ["beta"])
                #expect(try await client.send(.get, "/v2/classes?sort=name").array.map { $0["name"] as? String } == ["Alpha", "beta", "Gamma"])
                #expect(try await client.send(.get, "/v2/classes?sort=owner_name_desc").array.first?["name"] as? String == "Gamma")
                #expect(try await client.send(.get, "/v2/courses/\(web)/classes.json").array.map { $0["name"] as? String } == ["Alpha"])
                #expect(try await client.send(.get, "/v2/classes?query=state:error").array.isEmpty)
                #expect(try await client.send(.get, "/v2/classes?query=state:sleeping").status == .badRequest)

                // A lab that fails makes its class show up under state:error.
                harness.labs.state.withLock { $0.failing = "no capacity on the hypervisor" }
                harness.clock.advance(seconds: 4 * 86_400)  // past provision time
                try await harness.pass()
                let failed = try await client.send(.get, "/v2/classes?query=state:error")
                #expect(failed.array.map { $0["name"] as? String } == ["Alpha"])
                #expect(failed.array.first?["error_message"] as? String == "lab L1: no capacity on the hypervisor")
            }
        }
    }
}
