@testable import ClassroomService
import Foundation
import HummingbirdTesting
import ServerKit
import Storage
import TestSupport
import Testing

@Suite("Classrooms REST: templates and courses")
struct CourseTests {
    @Test("templates are the catalog's workshops, by name")
    func templates() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let list = try await client.send(.get, "/v2/templates.json")
                #expect(list.status == .ok)
                #expect(list.array.map { $0["id"] as? String } == ["hello-http", "shell"])
                #expect(list.header("Content-Range") == "items 0-1/2")
                let one = try await client.send(.get, "/v2/templates/hello-http")
                #expect(one.object["region"] as? String == "local")
                #expect((one.object["vms"] as? [[String: Any]])?.map { $0["id"] as? String } == ["web-1", "db-1"])
                #expect(try await client.send(.get, "/v2/templates/nope.json").status == .notFound)
            }
        }
    }

    @Test("create by both paths, read back every field, vm_access ids in and URIs out", arguments: TestBackends.all)
    func create(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let answer = try await client.send(
                    .post, "/courses.json",
                    json: [
                        "name": "New course", "description": "API test", "max_labs": "15", "template_ids": ["hello-http"],
                        "vm_access": [["vm_ref": "web-1", "access": "view_only"]],
                        "support_url": "mailto:support@example.com",
                    ])
                #expect(answer.status == .ok)
                let course = answer.object
                #expect(course["name"] as? String == "New course")
                #expect(course["max_labs"] as? Int == 15)
                #expect(course["template_ids"] as? [String] == ["hello-http"])
                #expect(course["template_missing"] as? Bool == false)
                let access = course["vm_access"] as? [[String: Any]] ?? []
                #expect(access.map { $0["vm_ref"] as? String } == ["https://labs.example.com/vms/web-1", "https://labs.example.com/vms/db-1"])
                #expect(access.map { $0["access"] as? String } == ["view_only", "run_and_use"])
                #expect(access.map { $0["name"] as? String } == ["Web server", "Database"])
                #expect(course["support_url"] == nil, "support_url is write-only")
                #expect(course["class_count"] as? Int == 0)
                #expect(course["can_edit"] as? Bool == true)
                #expect(course["owner_id"] as? String == "2")
                #expect(course["owner_name"] as? String == "Alice Instructor")
                #expect(course["owner_url"] as? String == "https://labs.example.com/users/2")
                #expect((course["last_updated_by"] as? [String: Any])?["id"] as? String == "2")
                #expect(course["created_at"] as? String == "2030/01/01 00:00:00 +0000")
                #expect(course["last_deployed"] is NSNull)
                #expect((course["templates"] as? [[String: Any]])?.first?["id"] as? String == "hello-http")
                let id = try #require(course["id"] as? String)
                let read = try await client.send(.get, "/v2/courses/\(id).json")
                #expect(read.object["name"] as? String == "New course")
                // Another classrooms user reads it but cannot edit it.
                let other = try await client.send(.get, "/v2/courses/\(id)", as: "bob")
                #expect(other.object["can_edit"] as? Bool == false)
                #expect(try await client.send(.put, "/v2/courses/\(id).json", as: "bob", json: ["name": "x"]).status == .forbidden)
                // Defaults on the v2 path: every VM full control, 20 labs.
                let second = try await client.send(
                    .post, "/v2/courses.json", json: ["name": "Second", "description": "", "template_ids": ["hello-http"]])
                #expect(second.object["max_labs"] as? Int == 20)
                #expect((second.object["vm_access"] as? [[String: Any]])?.map { $0["access"] as? String } == ["run_and_use", "run_and_use"])
            }
        }
    }

    @Test("parameters in the query string with an empty JSON body, booleans as True/False")
    func queryParameters() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let answer = try await client.send(
                    .post,
                    "/v2/courses.json?name=From%20query&description=d&template_ids=shell&anonymous_smart_rdp=True&custom_content_enabled=False",
                    body: "", headers: [.contentType: "application/json"])
                #expect(answer.status == .ok, "\(answer.text)")
                #expect(answer.object["name"] as? String == "From query")
                #expect(answer.object["anonymous_smart_rdp"] as? Bool == true)
                #expect(answer.object["template_ids"] as? [String] == ["shell"])
            }
        }
    }

    @Test("every course rule is refused with 422 naming the field")
    func validation() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let base: [String: Any] = ["name": "C", "description": "d", "template_ids": ["hello-http"]]
                let cases: [([String: Any], String)] = [
                    (["name": String(repeating: "n", count: 65)], "name"),
                    (["name": ""], "name"),
                    (["description": String(repeating: "d", count: 1001)], "description"),
                    (["template_ids": []], "template_ids"),
                    (["template_ids": ["hello-http", "shell"]], "template_ids"),
                    (["template_ids": ["missing"]], "template_ids"),
                    (["max_labs": 0], "max_labs"),
                    (["max_labs": 21], "max_labs"),
                    (["vm_access": [["vm_ref": "shell-1", "access": "use"]]], "vm_access"),
                    (["vm_access": [["vm_ref": "web-1", "access": "admin"]]], "vm_access"),
                    (["sso_required": true], "sso_required"),
                    (["support_url": "ftp://example.com"], "support_url"),
                    (["custom_title": String(repeating: "t", count: 33)], "custom_title"),
                    (["custom_content": String(repeating: "c", count: 32 * 1024 + 1)], "custom_content"),
                    (["custom_content_enabled": true, "custom_content": "x"], "custom_title"),
                    (["custom_content_enabled": true, "custom_title": "x"], "custom_content"),
                ]
                for (change, field) in cases {
                    var json = base
                    for (key, value) in change { json[key] = value }
                    let answer = try await client.send(.post, "/v2/courses.json", json: json)
                    #expect(answer.status == .unprocessableContent, "\(change): \(answer.status)")
                    #expect(answer.field == field, "\(change): \(answer.text)")
                    #expect(answer.error?.contains(field) == true)
                }
                var missing = base
                missing["name"] = nil
                #expect(try await client.send(.post, "/v2/courses.json", json: missing).field == "name")
                missing = base
                missing["template_ids"] = nil
                #expect(try await client.send(.post, "/v2/courses.json", json: missing).field == "template_ids")
                // A VM URI is accepted as vm_ref too.
                var uri = base
                uri["vm_access"] = [["vm_ref": "https://labs.example.com/vms/db-1", "access": "do_not_publish"]]
                #expect(try await client.send(.post, "/v2/courses.json", json: uri).status == .ok)
            }
        }
    }

    @Test("sso_required where SSO is enabled")
    func sso() async throws {
        try await ClassroomHarness.with(ssoEnabled: true) { harness in
            try await harness.application().test(.router) { client in
                let id = try await client.course(extra: ["sso_required": true])
                let read = try await client.send(.get, "/v2/courses/\(id)")
                #expect(read.object["sso_required"] as? Bool == true)
                // Then a class of it may not have a password.
                let refused = try await client.send(
                    .post, "/courses/\(id)/classes.json", json: ["start_at": "2030/01/05 09:00:00", "password": "secret"])
                #expect(refused.status == .unprocessableContent)
                #expect(refused.field == "password")
            }
        }
    }

    @Test("edit; a template change resets vm_access; delete is refused while classes exist")
    func editAndDelete() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let id = try await client.course(extra: ["vm_access": [["vm_ref": "web-1", "access": "use"]]])
                harness.clock.advance(seconds: 60)
                let renamed = try await client.send(.put, "/v2/courses/\(id).json", json: ["name": "Change course name"])
                #expect(renamed.object["name"] as? String == "Change course name")
                #expect((renamed.object["vm_access"] as? [[String: Any]])?.first?["access"] as? String == "use")
                let moved = try await client.send(.put, "/v2/courses/\(id).json", json: ["template_ids": ["shell"]])
                #expect((moved.object["vm_access"] as? [[String: Any]])?.map { $0["vm_ref"] as? String } == ["https://labs.example.com/vms/shell-1"])
                #expect((moved.object["vm_access"] as? [[String: Any]])?.first?["access"] as? String == "run_and_use")
                let admin = try await client.send(.put, "/v2/courses/\(id).json", as: "admin", json: ["description": "by admin"])
                #expect(admin.status == .ok)
                #expect((admin.object["last_updated_by"] as? [String: Any])?["name"] as? String == "Ada Admin")

                let classID = try await client.klass(course: id, ["start_at": "2030/01/05 09:00:00"])
                let refused = try await client.send(.delete, "/v2/courses/\(id).json")
                #expect(refused.status == .conflict)
                #expect(refused.error?.contains("class_count") == true)
                #expect(try await client.send(.get, "/v2/courses/\(id)").object["class_count"] as? Int == 1)
                #expect(try await client.send(.delete, "/v2/classes/\(classID)").status == .ok)
                #expect(try await client.send(.get, "/v2/courses/\(id)").object["class_count"] as? Int == 0)
                #expect(try await client.send(.delete, "/v2/courses/\(id).json").status == .ok)
                #expect(try await client.send(.get, "/v2/courses/\(id)").status == .notFound)
            }
        }
    }

    @Test("a course whose template leaves the catalog says template_missing")
    func templateMissing() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let id = try await client.course()
                harness.catalog.update { $0.environments.removeFirst() }
                #expect(try await client.send(.get, "/v2/courses/\(id)").object["template_missing"] as? Bool == true)
            }
        }
    }

    @Test("only users with classrooms access; 401 without credentials")
    func access() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let refused = try await client.send(.get, "/v2/courses.json", as: "carol")
                #expect(refused.status == .forbidden)
                #expect(refused.error?.contains("Classrooms") == true)
                let anonymous = try await client.send(.get, "/v2/courses.json", as: nil)
                #expect(anonymous.status == .unauthorized)
                #expect(anonymous.header("WWW-Authenticate") != nil)
            }
        }
    }

    @Test("list: count/offset with Content-Range and Link, query, date ranges and sort")
    func list() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                for name in ["Zeta", "alpha", "Beta centOS", "gamma"] {
                    _ = try await client.course(name)
                    harness.clock.advance(seconds: 86_400)
                }
                _ = try await client.course("Bob's", as: "bob")
                let first = try await client.send(.get, "/v2/courses.json?count=2&offset=0")
                #expect(first.array.map { $0["name"] as? String } == ["Zeta", "alpha"])
                #expect(first.header("Content-Range") == "items 0-1/5")
                #expect(first.header("Link") == "</v2/courses.json?offset=2&count=2>; rel=\"next\"")
                let last = try await client.send(.get, "/v2/courses.json?count=2&offset=4")
                #expect(last.header("Content-Range") == "items 4-4/5")
                #expect(last.header("Link") == nil)
                let empty = try await client.send(.get, "/v2/courses.json?count=2&offset=9")
                #expect(empty.header("Content-Range") == "items */5")

                let keyword = try await client.send(.get, "/v2/courses?query=name:centos")
                #expect(keyword.array.map { $0["name"] as? String } == ["Beta centOS"])
                let owner = try await client.send(.get, "/v2/courses?query=user_id:3")
                #expect(owner.array.map { $0["name"] as? String } == ["Bob's"])
                let both = try await client.send(.get, "/v2/courses?query=user_id:2,name:a")
                #expect(both.array.count == 4)
                let byName = try await client.send(.get, "/v2/courses?sort=name_desc")
                #expect(byName.array.first?["name"] as? String == "Zeta")
                let newest = try await client.send(.get, "/v2/courses?sort=created_at_desc&count=1")
                #expect(newest.array.first?["name"] as? String == "Bob's")
                // Created in the past 2 days (now is 4 days after the first; the bounds are inclusive).
                let recent = try await client.send(.get, "/v2/courses?created_at=now-2d+to+now")
                #expect(recent.array.map { $0["name"] as? String } == ["Beta centOS", "gamma", "Bob's"])
                let old = try await client.send(.get, "/v2/courses?created_at=to+now-3d")
                #expect(old.array.map { $0["name"] as? String } == ["Zeta", "alpha"])
                let custom = try await client.send(
                    .get, "/v2/courses?created_at=2030/01/02%2000:00:00+to+2030/01/03%2000:00:00")
                #expect(custom.array.map { $0["name"] as? String } == ["alpha", "Beta centOS"])
                let hours = try await client.send(.get, "/v2/courses?created_at=now-1h+to+now")
                #expect(hours.array.map { $0["name"] as? String } == ["Bob's"])
                let months = try await client.send(.get, "/v2/courses?created_at=now-1m+to+now")
                #expect(months.array.count == 5)

                for bad in ["query=owner:1", "created_at=yesterday", "sort=size", "count=0", "offset=-1", "last_deployed=now-1x+to+now"] {
                    let answer = try await client.send(.get, "/v2/courses?\(bad)")
                    #expect(answer.status == .badRequest, "\(bad)")
                    #expect(answer.field != nil, "\(bad): \(answer.text)")
                }
            }
        }
    }
}
