@testable import ClassroomService
import Foundation
import HummingbirdTesting
import ServerKit
import Storage
import TestSupport
import Testing

@Suite("Classrooms REST: input that would be stored changed is refused, never silently altered")
struct BadInputTests {
    let nul = "before\u{0}after"

    @Test("a NUL in any text field of a course, a class or a lab is refused with 422 naming the field; nothing changes", arguments: TestBackends.all)
    func nulRefused(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let course = try await client.course()
                let klass = try await client.klass(course: course, ["start_at": "2030/01/05 10:00:00", "name": "Kept"])
                let lab = try #require(try await client.labs(klass, ["lab-one"]).first?["id"] as? String)
                let courseBefore = try await client.send(.get, "/v2/courses/\(course).json").text
                let classBefore = try await client.send(.get, "/v2/classes/\(klass).json").text
                let labBefore = try await client.send(.get, "/v2/labs/\(lab).json").text
                let attempts: [(String, String, [String: Any], String)] = [
                    ("POST", "/v2/courses.json", ["name": nul, "template_ids": ["hello-http"]], "name"),
                    ("POST", "/v2/courses.json", ["name": "ok", "description": nul, "template_ids": ["hello-http"]], "description"),
                    ("POST", "/v2/courses.json", ["name": "ok", "template_ids": [nul]], "template_ids[0]"),
                    ("PUT", "/v2/courses/\(course).json", ["name": nul], "name"),
                    ("PUT", "/v2/courses/\(course).json", ["description": nul], "description"),
                    ("PUT", "/v2/courses/\(course).json", ["support_url": "mailto:\(nul)@example.com"], "support_url"),
                    ("POST", "/courses/\(course)/classes.json", ["start_at": "2030/01/05 10:00:00", "name": nul], "name"),
                    ("POST", "/courses/\(course)/classes.json", ["start_at": "2030/01/05 10:00:00", "description": nul], "description"),
                    ("PUT", "/v2/classes/\(klass).json", ["name": nul], "name"),
                    ("PUT", "/v2/classes/\(klass).json", ["description": nul], "description"),
                    ("PUT", "/v2/classes/\(klass).json", ["password": nul], "password"),
                    ("POST", "/v2/classes/\(klass)/labs.json", ["name": nul], "name"),
                    ("POST", "/v2/classes/\(klass)/labs/create_multiple.json", ["labs": [["name": nul]]], "labs[0].name"),
                    ("PUT", "/v2/labs/\(lab).json", ["name": nul], "name"),
                ]
                for (method, uri, json, field) in attempts {
                    let answer = try await client.send(method == "POST" ? .post : .put, uri, json: json)
                    #expect(answer.status == .unprocessableContent, "\(method) \(uri) \(json): \(answer.status) \(answer.text)")
                    #expect(answer.field == field, "\(method) \(uri): \(answer.text)")
                    #expect(answer.error?.contains("U+0000") == true, "\(answer.text)")
                }
                // The same through the query string, as Skytap clients send attributes.
                let query = try await client.send(.put, "/v2/classes/\(klass).json?name=a%00b", body: "")
                #expect(query.status == .unprocessableContent)
                #expect(query.field == "name")
                #expect(try await client.send(.get, "/v2/courses/\(course).json").text == courseBefore)
                #expect(try await client.send(.get, "/v2/classes/\(klass).json").text == classBefore)
                #expect(try await client.send(.get, "/v2/labs/\(lab).json").text == labBefore)
                let courses = try await client.send(.get, "/v2/courses.json")
                #expect(courses.array.count == 1, "no course was made by a refused request")
            }
        }
    }

    @Test("an edit naming another course is refused with 422 on course_id; the same course is accepted", arguments: TestBackends.all)
    func courseCannotMove(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let first = try await client.course("First")
                let second = try await client.course("Second")
                let klass = try await client.klass(course: first, ["start_at": "2030/01/05 10:00:00", "name": "Mine"])
                let moved = try await client.send(.put, "/v2/classes/\(klass).json", json: ["course_id": second, "name": "Renamed"])
                #expect(moved.status == .unprocessableContent)
                #expect(moved.field == "course_id")
                let read = try await client.send(.get, "/v2/classes/\(klass).json")
                #expect(read.object["course_id"] as? String == first)
                #expect(read.object["name"] as? String == "Mine", "nothing of a refused edit is applied")
                let same = try await client.send(.put, "/v2/classes/\(klass).json", json: ["course_id": first, "name": "Renamed"])
                #expect(same.status == .ok)
                #expect(same.object["name"] as? String == "Renamed")
                let numeric = try await client.send(.put, "/v2/classes/\(klass).json", json: ["course_id": Int(first)!])
                #expect(numeric.status == .ok)
            }
        }
    }
}
