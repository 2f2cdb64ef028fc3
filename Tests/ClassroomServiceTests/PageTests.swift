@testable import ClassroomService
import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import ServerKit
import Storage
import TestSupport
import Testing

@Suite("Instructor view, student lab pages and the wire pages")
struct PageTests {
    static func move(_ harness: ClassroomHarness, to hours: Double) {
        harness.clock.advance(
            seconds: ClassroomHarness.start.addingTimeInterval(hours * 3600).timeIntervalSince(harness.clock.now))
    }

    /// A class running from 2030/01/02 09:00 UTC (labs run at 08:00) with one running lab; answers the class id, its
    /// access code and the lab's student page path.
    static func runningClass(
        _ harness: ClassroomHarness, _ client: some TestClientProtocol, _ extra: [String: Any]
    ) async throws -> (String, String, String) {
        let course = try await client.course()
        var fields: [String: Any] = ["start_at": "2030/01/02 09:00:00", "end_at": "2030/01/04 17:00:00", "run_hours": 1]
        for (key, value) in extra { fields[key] = value }
        let created = try await client.send(.post, "/courses/\(course)/classes.json", json: fields)
        let id = try #require(created.object["id"] as? String)
        let code = try #require(created.object["access_code"] as? String)
        let labs = try await client.labs(id, ["Student <1>"])
        move(harness, to: 33)
        try await harness.pass()
        let lab = try await client.send(.get, "/v2/labs/\(labs[0]["id"] as? String ?? "").json").object
        let url = try #require(lab["desktops_url"] as? String)
        return (id, code, String(url.dropFirst("https://labs.example.com".count)))
    }

    @Test("the instructor view lists the labs with the access code, and refuses (and audits) a wrong one")
    func instructor() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let (id, code, desktop) = try await Self.runningClass(harness, client, [:])
                let page = try await client.send(.get, "/instructor/\(id)?access_code=\(code)", as: nil)
                #expect(page.status == .ok)
                #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
                #expect(page.text.contains("Student &lt;1&gt;"))
                #expect(page.text.contains("started"))
                #expect(page.text.contains(desktop))
                let wrong = try await client.send(.get, "/instructor/\(id)?access_code=nope", as: nil)
                #expect(wrong.status == .forbidden)
                #expect(try await client.send(.get, "/instructor/\(id)", as: nil).status == .forbidden)
                let audit = try await harness.dependencies.repository.auditEvents(after: nil, limit: 100, filter: ListFilter()).0
                #expect(audit.filter { $0.activity == "FailedTrainingClassInstructorLoginHistory" }.count == 2)
                #expect(try await client.send(.get, "/instructor/999?access_code=x", as: nil).status == .notFound)
            }
        }
    }

    @Test("the student page leads to the running lab")
    func open() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let (_, _, desktop) = try await Self.runningClass(harness, client, [:])
                let page = try await client.send(.get, desktop, as: nil)
                #expect(page.status == .ok)
                #expect(page.text.contains("http://lab.test/lab"))
                #expect(try await client.send(.get, "/desktops/not-a-token", as: nil).status == .notFound)
            }
        }
    }

    @Test("password gate: a form, a wrong password refused, the right one sets a cookie")
    func password() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let (_, _, desktop) = try await Self.runningClass(harness, client, ["password": "open sesame"])
                let form = try await client.send(.get, desktop, as: nil)
                #expect(form.status == .unauthorized)
                #expect(form.text.contains("type=\"password\""))
                #expect(!form.text.contains("http://lab.test/"))
                let formType: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
                let wrong = try await client.send(.post, desktop, as: nil, body: "password=guess", headers: formType)
                #expect(wrong.status == .unauthorized)
                #expect(wrong.text.contains("not right"))
                let right = try await client.send(.post, desktop, as: nil, body: "password=open+sesame", headers: formType)
                #expect(right.status == .seeOther)
                let cookie = try #require(right.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
                let page = try await client.send(.get, desktop, as: nil, headers: [.cookie: cookie])
                #expect(page.status == .ok)
                #expect(page.text.contains("http://lab.test/"))
                let forged = try await client.send(.get, desktop, as: nil, headers: [.cookie: cookie + "x"])
                #expect(forged.status == .unauthorized)
            }
        }
    }

    @Test("daily access window in the class's time zone")
    func window() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                // 09:00–17:00 in New York (UTC-5 in January); the labs run from 2030/01/02 08:00 New York time.
                let (_, _, desktop) = try await Self.runningClass(
                    harness, client, ["time_zone": "America/New_York", "start_time": "09:00", "end_time": "17:00"])
                Self.move(harness, to: 24 + 13)  // 2030/01/02 13:00 UTC = 08:00 New York
                let early = try await client.send(.get, desktop, as: nil)
                #expect(early.status == .forbidden)
                #expect(early.text.contains("between 09:00 and 17:00"))
                Self.move(harness, to: 24 + 15)  // 10:00 New York
                #expect(try await client.send(.get, desktop, as: nil).status == .ok)
                Self.move(harness, to: 24 + 22)  // 17:00 New York
                #expect(try await client.send(.get, desktop, as: nil).status == .forbidden)
            }
        }
    }

    @Test("runtime limit and expiration date")
    func limits() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let (_, _, desktop) = try await Self.runningClass(
                    harness, client, ["runtime_limit": 30, "expiration_date": "2030/01/03 12:00:00"])
                #expect(try await client.send(.get, desktop, as: nil).status == .ok)
                harness.clock.advance(seconds: 29 * 60)
                #expect(try await client.send(.get, desktop, as: nil).status == .ok)
                harness.clock.advance(seconds: 60)
                let used = try await client.send(.get, desktop, as: nil)
                #expect(used.status == .forbidden)
                #expect(used.text.contains("runtime limit of 30 minutes"))
            }
        }
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                let (_, _, desktop) = try await Self.runningClass(harness, client, ["expiration_date": "2030/01/02 12:00:00"])
                #expect(try await client.send(.get, desktop, as: nil).status == .ok)
                Self.move(harness, to: 36)
                let expired = try await client.send(.get, desktop, as: nil)
                #expect(expired.status == .forbidden)
                #expect(expired.text.contains("expired"))
            }
        }
    }

    @Test("courses.page, classes.page, labs.page and audit.page page by keyset with the list filters")
    func wirePages() async throws {
        try await ClassroomHarness.with { harness in
            try await harness.application().test(.router) { client in
                var classIDs: [String] = []
                for index in 0..<5 {
                    let course = try await client.course("Course \(index)", as: index == 4 ? "bob" : "alice")
                    let id = try await client.klass(course: course, ["start_at": "2030/01/05 10:00:00", "name": "Class, \"\(index)\""], as: index == 4 ? "bob" : "alice")
                    classIDs.append(id)
                    _ = try await client.labs(id, ["a", "b"], as: index == 4 ? "bob" : "alice")
                }
                let d = harness.dependencies
                var cursor: String?
                var names: [String] = []
                repeat {
                    let page = try await ClassroomPagesWire.coursesPage(PageRequest(cursor: cursor, limit: 2, filters: ListFilters()), d)
                    names += page.items.map(\.name)
                    cursor = page.nextCursor
                } while cursor != nil
                #expect(names == (0..<5).map { "Course \($0)" })
                let bobs = try await ClassroomPagesWire.classesPage(
                    PageRequest(limit: 100, filters: ListFilters(query: "user_id:3")), d)
                #expect(bobs.items.map(\.name) == ["Class, \"4\""])
                #expect(bobs.items.first?.labCount == 2)
                #expect(bobs.nextCursor == nil)
                let labs = try await ClassroomPagesWire.labsPage(
                    PageRequest(limit: 100, filters: ListFilters(classID: classIDs[1])), d)
                #expect(labs.items.map(\.name) == ["a", "b"])
                #expect(labs.items.first?.templateID == "hello-http")
                let allLabs = try await ClassroomPagesWire.labsPage(PageRequest(limit: 1000, filters: ListFilters()), d)
                #expect(allLabs.items.count == 10)
                let audit = try await ClassroomPagesWire.auditPage(PageRequest(limit: 1000, filters: ListFilters()), d)
                #expect(audit.items.filter { $0.activity == "CreateTrainingCourseHistory" }.count == 5)
                #expect(audit.items.first?.userName == "Alice Instructor")
                await #expect(throws: ServiceFailure.self) {
                    try await ClassroomPagesWire.coursesPage(PageRequest(limit: 5000, filters: ListFilters()), d)
                }
                await #expect(throws: ClassroomError.noSuchClass("999")) {
                    try await ClassroomPagesWire.labsPage(PageRequest(limit: 10, filters: ListFilters(classID: "999")), d)
                }
            }
        }
    }
}

@Suite("audit.record from session-service")
struct AuditRecordTests {
    @Test("grant and revoke are recorded once per id; other activities are refused")
    func record() async throws {
        try await ClassroomHarness.with { harness in
            let params = AuditRecord.Params(
                id: "a1", activity: "GrantUserClassroomAccessHistory", actorID: "1", actorName: "Ada Admin",
                targetType: "user", targetID: "7", targetName: "jo", details: "classrooms_access true",
                at: harness.clock.now)
            try await ClassroomApplication.recordAudit(params, harness.dependencies)
            try await ClassroomApplication.recordAudit(params, harness.dependencies)
            let page = try await ClassroomPagesWire.auditPage(PageRequest(limit: 100, filters: ListFilters()), harness.dependencies)
            #expect(page.items.map(\.activity) == ["GrantUserClassroomAccessHistory"])
            #expect(page.items.first?.targetName == "jo")
            var forged = params
            forged.id = "a2"
            forged.activity = "DeleteTrainingCourseHistory"
            await #expect(throws: ServiceFailure.self) {
                try await ClassroomApplication.recordAudit(forged, harness.dependencies)
            }
        }
    }
}

@Suite("Wire pages in the list's sort order")
struct SortedPagesTests {
    @Test("keyset pages follow sort (names with accents and ties included) exactly as the REST list does", arguments: TestBackends.all)
    func sorted(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let names = ["beta", "Alpha", "Émile", "alpha", "zulu", "Zulu", "mike", "Beta", "éclair", "delta", "Delta"]
                for name in names {
                    _ = try await client.course(name)
                    harness.clock.advance(seconds: 3600)
                }
                let d = harness.dependencies
                for sort in ["name", "name_desc", "created_at", "created_at_desc", "last_deployed", "last_deployed_desc"] {
                    let rest = try await client.send(.get, "/v2/courses.json?count=100&sort=\(sort)").array
                        .compactMap { $0["id"] as? String }
                    var cursor: String?
                    var paged: [String] = []
                    repeat {
                        let page = try await ClassroomPagesWire.coursesPage(
                            PageRequest(cursor: cursor, limit: 3, filters: ListFilters(sort: sort)), d)
                        paged += page.items.map(\.id)
                        cursor = page.nextCursor
                    } while cursor != nil
                    #expect(paged.count == names.count, "\(sort)")
                    #expect(Set(paged).count == names.count, "\(sort): no row twice")
                    if !sort.hasPrefix("last_deployed") || backend == .sqlite {
                        #expect(paged == rest, "\(sort)")
                    }
                }
                // A cursor of another sort is the caller's error (400 / invalid params), naming the cursor.
                await #expect {
                    try await ClassroomPagesWire.coursesPage(
                        PageRequest(cursor: "t.bm9wZQ==.1", limit: 3, filters: ListFilters(sort: "created_at")), d)
                } throws: { error in
                    (error as? any KindedError).map { $0.kind == .badRequest && $0.field == "cursor" } ?? false
                }
                // Labs are read by position (the bulk path of exports). Named and made in the courses' order, they
                // sort as the courses do; their cells are the REST list's.
                let course = try await client.course("Labs", extra: ["max_labs": 20])
                let classID = try await client.klass(course: course, ["start_at": "2030/01/05 10:00:00"])
                for name in names {
                    _ = try await client.labs(classID, [name])
                    harness.clock.advance(seconds: 3600)
                }
                let listed = try await client.send(.get, "/v2/classes/\(classID)/labs.json?count=100").array
                let restLabs = Dictionary(uniqueKeysWithValues: listed.map { ($0["id"] as? String ?? "", $0) })
                for sort in ["name", "name_desc", "created_at", "created_at_desc"] {
                    let courseOrder = try await client.send(.get, "/v2/courses.json?count=100&sort=\(sort)").array
                        .compactMap { $0["name"] as? String }.filter { $0 != "Labs" }
                    var cursor: String?
                    var paged: [LabItem] = []
                    repeat {
                        let page = try await ClassroomPagesWire.labsPage(
                            PageRequest(cursor: cursor, limit: 3, filters: ListFilters(sort: sort, classID: classID)), d)
                        paged += page.items
                        cursor = page.nextCursor
                    } while cursor != nil
                    #expect(paged.map(\.name) == courseOrder, "\(sort)")
                    for lab in paged {
                        let rest = try #require(restLabs[lab.id])
                        #expect(lab.name == rest["name"] as? String)
                        #expect(lab.state == rest["state"] as? String)
                        #expect(lab.classID == classID)
                        #expect(lab.desktopsURL == rest["desktops_url"] as? String)
                    }
                }
                await #expect(throws: ServiceFailure.self) {
                    try await ClassroomPagesWire.coursesPage(PageRequest(limit: 3, filters: ListFilters(sort: "size")), d)
                }
            }
        }
    }
}

@Suite("labs.rows: the export's rows, cells written by the database")
struct LabRowsTests {
    @Test("labs.rows answers exactly the RowPage of labs.page: awkward names, desktops URLs, missing templates, every sort", arguments: TestBackends.all)
    func sameAsLabsPage(backend: DatabaseBackend) async throws {
        try await ClassroomHarness.with(backend) { harness in
            try await harness.application().test(.router) { client in
                let names = [
                    "plain", "comma, \"quoted\"", "back\\slash", "Étudiant 😀 日本", "a/b", "tab\there", "zz", "Alpha",
                ]
                var classIDs: [String] = []
                for index in 0..<2 {
                    let course = try await client.course("Course \(index)", extra: ["max_labs": 20])
                    let id = try await client.klass(course: course, ["start_at": "2030/01/05 10:00:00"])
                    for name in names {
                        _ = try await client.labs(id, [name])
                        harness.clock.advance(seconds: 60)
                    }
                    classIDs.append(id)
                }
                // Odd names the API trims or refuses, a configuration on some labs, a course whose template is gone.
                try await harness.database.sql.raw("UPDATE labs SET name = 'line\nbreak \u{01} end ' WHERE id = 1").run()
                try await harness.database.sql.raw("UPDATE labs SET configuration_id = 'cfg-' || CAST(id AS TEXT) WHERE id % 3 = 0").run()
                try await harness.database.sql.raw("UPDATE courses SET template_id = 'gone \"one\"' WHERE name = 'Course 1'").run()
                let d = harness.dependencies
                var compared = 0
                for classID in [nil] + classIDs {
                    for sort in [nil, "name", "name_desc", "created_at", "created_at_desc"] {
                        var cursor: String?
                        repeat {
                            let request = PageRequest(cursor: cursor, limit: 3, filters: ListFilters(sort: sort, classID: classID))
                            let expected = RowPage(try await ClassroomPagesWire.labsPage(request, d))
                            let (rows, next, templates) = try await ClassroomPagesWire.labJSONRows(request, d)
                            let bytes = ClassroomPagesWire.labRowPage(rows, next: next, templates: templates)
                            let answered = try RowPage(json: bytes)
                            #expect(answered == expected, "class \(classID ?? "all"), sort \(sort ?? "id"), after \(cursor ?? "-")")
                            compared += answered.rows.count
                            cursor = answered.nextCursor
                        } while cursor != nil
                    }
                }
                #expect(compared == 5 * names.count * 4)  // all labs, then each of the two classes
                // Compact rows may come in larger pages than objects.
                let big = try await ClassroomPagesWire.labJSONRows(PageRequest(limit: ClassroomPages.labRowsMaximumLimit, filters: ListFilters()), d)
                #expect(big.rows.count == names.count * 2)
                await #expect(throws: ServiceFailure.self) {
                    try await ClassroomPagesWire.labJSONRows(PageRequest(limit: ClassroomPages.labRowsMaximumLimit + 1, filters: ListFilters()), d)
                }
                await #expect(throws: ServiceFailure.self) {
                    try await ClassroomPagesWire.labsPage(PageRequest(limit: PageRequest<ListFilters>.maximumLimit + 1, filters: ListFilters()), d)
                }
                let all = try await ClassroomPagesWire.labsPage(PageRequest(limit: 100, filters: ListFilters()), d).items
                #expect(all.first?.name == "line\nbreak \u{01} end ")
                #expect(all.contains { $0.desktopsURL?.hasSuffix("/desktops/") == false && $0.configurationID == "cfg-3" })
                #expect(all.contains { $0.templateID == "gone \"one\"" && $0.templateName == "gone \"one\"" && $0.region == "" })
            }
        }
    }
}
