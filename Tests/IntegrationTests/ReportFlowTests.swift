import Contracts
import Foundation
import Logging
import SQLKit
import Storage
import TestSupport
import Testing

/// Exports across real processes: nginx in front of report-service, which pages through classroom-service and
/// session-service over mutual TLS and writes gzip-compressed CSV.
@Suite("Report flow through nginx", .serialized)
struct ReportFlowTests {
    static let portal = """
        portal:
          name: flow
          url: http://portal.test
        workshops:
          - name: hello
            title: Hello reports
            content: {files: "https://example.com/hello"}
            vms:
              - {id: web-1, name: "Web, server"}
            region: local
        environments:
          - workshop: hello
            capacity: 5
            reserved: 0
            expires: 1h
        """

    struct Flow {
        let stack: LocalStack
        let base: String
        let auth: [String: String]

        func json(_ object: Any) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

        func object(_ method: String, _ path: String, _ body: Any? = nil) async throws -> [String: Any] {
            let answer = try await httpRequest(method, "\(base)\(path)", headers: auth, body: try body.map(json))
            #expect((200..<300).contains(Int(answer.status)), "\(method) \(path): \(answer.status) \(answer.text)")
            return answer.json ?? [:]
        }

        func list(_ path: String) async throws -> [[String: Any]] {
            let answer = try await httpRequest("GET", "\(base)\(path)", headers: auth)
            return (try? JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]]) ?? []
        }

        /// Creates a report, waits until it is ready, and answers its CSV (downloaded compressed and inflated here,
        /// and also inflated by the server: both must agree).
        func export(_ path: String, query: String = "", seconds: Int = 60) async throws -> [[String]] {
            let created = try await object("POST", "\(path)\(query)")
            let id = try #require(created["id"] as? String)
            let url = try #require(created["url"] as? String)
            #expect(created["ready"] as? Bool == false)
            let resource = String(url[url.range(of: "://")!.upperBound...].drop { $0 != "/" })
            let ready = await eventually(attempts: seconds * 10, interval: .milliseconds(100)) {
                let poll = try? await httpRequest("GET", "\(base)\(resource).json", headers: auth)
                return poll?.json?["ready"] as? Bool == true
            }
            #expect(ready, "report \(id) ready:\n\(stack.logTail("report"))")
            var headers = auth
            headers["Accept-Encoding"] = "gzip"
            let zipped = try await httpRequest("GET", "\(base)\(resource).csv", headers: headers)
            #expect(zipped.status == 200)
            #expect(zipped.header("Content-Encoding") == "gzip")
            let inflated = try gunzip(zipped.body)
            let plain = try await httpRequest("GET", "\(base)\(resource).csv", headers: auth)
            #expect(plain.header("Content-Encoding") == nil)
            #expect(plain.body == inflated)
            return CSVTable.parse(String(decoding: inflated, as: UTF8.self))
        }
    }

    static func withFlow(
        reportEnvironment: [String: String] = [:], _ body: @Sendable (Flow) async throws -> Void
    ) async throws {
        try await LocalStack.withProxy(
            portal: Self.portal, services: ["session", "classroom", "report"], environment: ["report": reportEnvironment]
        ) { stack, proxy in
            let c = try WorkshopFlowTests.credentials(stack.home)
            let basic = "Basic " + Data("\(c["LABPORTAL_ADMIN_USER"]!):\(c["LABPORTAL_ADMIN_API_TOKEN"]!)".utf8).base64EncodedString()
            try await body(
                Flow(stack: stack, base: proxy.base, auth: ["Authorization": basic, "Content-Type": "application/json"]))
        }
    }

    /// What a CSV cell holds for a JSON value of the API.
    static func cell(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: ""
        case let number as NSNumber:
            String(cString: number.objCType) == "c" ? (number.boolValue ? "true" : "false") : number.stringValue
        case let text as String: text
        case let list as [String]: list.joined(separator: "|")
        default: "\(value!)"
        }
    }

    /// Each CSV row equals the API's object of the same id, column by column.
    static func compare(_ table: [[String]], _ objects: [[String: Any]], columns: [String], key: String = "id",
                        special: [String: ([String: Any]) -> String] = [:]) {
        #expect(table.first == columns)
        let rows = Array(table.dropFirst())
        #expect(rows.count == objects.count, "rows \(rows.count) vs API \(objects.count)")
        let byID = Dictionary(objects.map { (cell($0[key]), $0) }, uniquingKeysWith: { first, _ in first })
        for row in rows {
            guard let object = byID[row[0]] else {
                Issue.record("CSV row \(row[0]) is not in the API list")
                continue
            }
            for (index, column) in columns.enumerated() {
                let expected = special[column].map { $0(object) } ?? cell(object[column])
                #expect(row[index] == expected, "\(row[0]).\(column)")
            }
        }
    }

    @Test("courses, classes, labs, the audit trail and sessions: every cell as the API lists it")
    func everyKind() async throws {
        try await Self.withFlow { flow in
            let course = try await flow.object(
                "POST", "/v2/courses.json",
                [
                    "name": "Intro, \"quoted\" — Grüße", "description": "Line one\nLine two, with \"quotes\" and 東京",
                    "template_ids": ["hello"], "max_labs": 5,
                ])
            let courseID = try #require(course["id"] as? String)
            _ = try await flow.object("POST", "/v2/courses.json", ["name": "Second", "description": "", "template_ids": ["hello"]])
            let klass = try await flow.object(
                "POST", "/courses/\(courseID)/classes.json",
                ["start_at": "2031/01/05 09:00:00", "name": "Class, one", "time_zone": "Europe/Berlin", "daily_startup_time": "08:00", "daily_shutdown_time": "18:00"])
            let classID = try #require(klass["id"] as? String)
            _ = try await httpRequest(
                "POST", "\(flow.base)/v2/classes/\(classID)/labs/create_multiple.json", headers: flow.auth,
                body: try flow.json([["name": "Lab, \"A\""], ["name": "Straße 東京"], ["name": "plain"]]))

            let courses = try await flow.export("/v2/courses/exports.json")
            Self.compare(
                courses, try await flow.list("/v2/courses.json"),
                columns: [
                    "id", "name", "description", "template_ids", "template_missing", "max_labs", "vm_access",
                    "anonymous_smart_rdp", "sso_required", "custom_content_enabled", "custom_title", "custom_content",
                    "custom_content_is_default", "class_count", "created_at", "last_deployed", "owner_id", "owner_name",
                    "owner_url", "last_updated_by_id", "last_updated_by_name", "storage",
                ],
                special: [
                    "vm_access": { object in
                        ((object["vm_access"] as? [[String: Any]]) ?? []).map {
                            "\($0["vm_ref"] as? String ?? "")=\($0["access"] as? String ?? "")"
                        }.joined(separator: "|")
                    },
                    "last_updated_by_id": { Self.cell(($0["last_updated_by"] as? [String: Any])?["id"]) },
                    "last_updated_by_name": { Self.cell(($0["last_updated_by"] as? [String: Any])?["name"]) },
                ])

            let classes = try await flow.export("/v2/classes/exports.json")
            Self.compare(
                classes, try await flow.list("/v2/classes.json"),
                columns: [
                    "id", "name", "description", "course_id", "start_at", "end_at", "time_zone", "provision_hours",
                    "run_hours", "cleanup_hours", "shutdown_hours", "delete_at_end", "daily_startup_time",
                    "daily_shutdown_time", "start_time", "end_time", "runtime_limit", "expiration_date", "access_code",
                    "state", "created_at", "owner_id", "owner_name", "owner_url", "lab_count", "labs_created_at",
                    "labs_run_at", "labs_deleted_at", "labs_shutdown_at", "error_message", "regions",
                ])

            let labs = try await flow.export("/v2/classes/\(classID)/labs/exports.json")
            Self.compare(
                labs, try await flow.list("/v2/classes/\(classID)/labs.json"),
                columns: [
                    "id", "class_id", "name", "template_name", "template_id", "region", "configuration_id",
                    "desktops_url", "state",
                ])
            #expect(labs.dropFirst().map { $0[2] } == ["Lab, \"A\"", "Straße 東京", "plain"])

            // Filters apply: only the first course's name matches.
            let filtered = try await flow.export("/v2/courses/exports.json", query: "?query=name:grüße")
            #expect(filtered.count == 2)
            #expect(filtered.last?[0] == courseID)

            let audit = try await flow.export("/auditing/exports.json")
            #expect(audit.first == ["id", "activity", "created_at", "user_id", "user_name", "target_type", "target_id", "target_name", "details"])
            let activities = audit.dropFirst().map { $0[1] }
            for activity in ["CreateTrainingCourseHistory", "AddTemplateToTrainingCourseHistory", "CreateTrainingClassHistory", "CreateTrainingLabHistory"] {
                #expect(activities.contains(activity), "\(activity)")
            }
            #expect(audit.dropFirst().contains { $0[1] == "CreateTrainingCourseHistory" && $0[7] == "Intro, \"quoted\" — Grüße" })

            // A workshop session, then the sessions report.
            _ = try await flow.object("GET", "/workshops/environment/flow-w01/request/?index_url=http://front.test/")
            let sessions = try await flow.export("/workshops/sessions/exports/")
            #expect(sessions.first?.prefix(4) == ["name", "environment", "workshop", "state"])
            #expect(sessions.count == 2)
            #expect(sessions.last?[0] == "flow-w01-s001")
            #expect(sessions.last?[1] == "flow-w01")
        }
    }

    /// Seeds `count` labs of one class straight into classroom-service's database (the service is stopped).
    static func seedLabs(_ stack: LocalStack, count: Int) async throws -> String {
        let database = try await Database.open(.sqlite(path: "\(stack.home)/data/classroom.sqlite"), logger: quietLogger)
        return try await database.withRunning { database in try await seedLabs(into: database, count: count) }
    }

    /// Seeds `count` labs of one class (900, of course 900) into a classroom-service database; answers the class id.
    static func seedLabs(into database: Database, count: Int) async throws -> String {
        do {
            let now = Date()
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO courses (id, name, description, template_id, max_labs, vm_access, anonymous_smart_rdp,
                        sso_required, support_url, custom_content_enabled, custom_title, custom_content,
                        custom_content_is_default, owner_id, owner_name, updated_by_id, updated_by_name, created_at,
                        updated_at, last_deployed, class_count)
                    VALUES (900, 'Big', '', 'hello', 20, '[]', FALSE, FALSE, NULL, FALSE, NULL, NULL, FALSE, '1', 'Admin',
                        '1', 'Admin', \(bind: now), \(bind: now), NULL, 1)
                    """
                ).run()
                try await db.raw(
                    """
                    INSERT INTO classes (id, course_id, name, description, owner_id, owner_name, start_at, end_at,
                        time_zone, provision_hours, run_hours, cleanup_hours, shutdown_hours, daily_startup_time,
                        daily_shutdown_time, start_time, end_time, runtime_limit, expiration_date, password_hash,
                        access_code, state, error_message, lab_count, labs_created_at, labs_run_at, labs_shutdown_at,
                        labs_deleted_at, created_at, updated_at, progress, lab_target, next_due_at, deleting, region)
                    VALUES (900, 900, 'Big class', '', '1', 'Admin', \(bind: now.addingTimeInterval(90 * 86_400)), NULL,
                        'UTC', 24, 24, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'code', 'scheduled', NULL,
                        \(bind: count), NULL, NULL, NULL, NULL, \(bind: now), \(bind: now), 0, NULL, NULL, FALSE, 'local')
                    """
                ).run()
                var id = 10_000
                while id < 10_000 + count {
                    var rows: SQLQueryString = ""
                    for labID in id..<min(id + 500, 10_000 + count) {
                        rows = rows + (labID == id ? "" : ", ") + """
                            (\(bind: labID), 900, \(bind: "Lab \(labID), \"seeded\""), 'initialized', NULL, NULL, NULL, NULL, TRUE, \
                            FALSE, \(bind: "token\(labID)"), NULL, \(bind: now), \(bind: now))
                            """
                    }
                    try await db.raw(
                        """
                        INSERT INTO labs (id, class_id, name, state, configuration_id, environment_url, error_message,
                            target, pushed, removed, access_token, first_access_at, created_at, updated_at)
                        VALUES 
                        """ + rows
                    ).run()
                    id += 500
                }
            }
            return "900"
        }
    }

    @Test("report-service restarted while a large job runs, and classroom-service stopped during one: both jobs complete")
    func restartsDuringJobs() async throws {
        try await Self.withFlow(reportEnvironment: ["LABPORTAL_REPORTS_PAGE_SIZE": "10", "LABPORTAL_REPORTS_ROW_PAGE_SIZE": "10"]) { flow in
            let stack = flow.stack
            _ = await stack.stop("classroom")
            let classID = try await Self.seedLabs(stack, count: 10_000)
            try stack.start("classroom", environment: ["LABPORTAL_CLASSROOM_INTERVAL_MS": "200"])
            try await stack.waitReady("classroom")

            func startExport() async throws -> String {
                let created = try await flow.object("POST", "/v2/classes/\(classID)/labs/exports.json")
                return try #require(created["id"] as? String)
            }
            func poll(_ id: String) async throws -> [String: Any] {
                try await httpRequest("GET", "\(flow.base)/v2/labs/exports/\(id).json", headers: flow.auth).json ?? [:]
            }
            func waitRunning(_ id: String) async -> Bool {
                await eventually(attempts: 300, interval: .milliseconds(50)) {
                    ((try? await poll(id))?["rows"] as? Int ?? 0) > 0
                }
            }
            func waitReady(_ id: String) async -> Bool {
                await eventually(attempts: 1200, interval: .milliseconds(100)) {
                    (try? await poll(id))?["ready"] as? Bool == true
                }
            }

            // 1. report-service stops (SIGTERM) in the middle; the job is handed back and finishes after the restart.
            let first = try await startExport()
            #expect(await waitRunning(first), "the export started:\n\(stack.logTail("report"))")
            #expect(try await poll(first)["ready"] as? Bool == false, "still running when report-service stops")
            let status = await stack.stop("report")
            #expect(status == 0, "report-service exit \(String(describing: status)):\n\(stack.logTail("report", lines: 20))")
            try stack.start("report", environment: ["LABPORTAL_REPORTS_PAGE_SIZE": "10", "LABPORTAL_REPORTS_ROW_PAGE_SIZE": "10"])
            try await stack.waitReady("report")
            #expect(await waitReady(first), "the export finished after the restart:\n\(stack.logTail("report"))")
            let firstPoll = try await poll(first)
            #expect(firstPoll["rows"] as? Int == 10_000)

            // 2. classroom-service goes away for a moment during a job; the job waits and completes.
            let second = try await startExport()
            #expect(await waitRunning(second))
            _ = await stack.stop("classroom")
            try await Task.sleep(for: .seconds(2))
            try stack.start("classroom", environment: ["LABPORTAL_CLASSROOM_INTERVAL_MS": "200"])
            try await stack.waitReady("classroom")
            #expect(await waitReady(second), "the export finished after the outage:\n\(stack.logTail("report"))")
            let table = try await flow.export("/v2/classes/\(classID)/labs/exports.json", seconds: 120)
            #expect(table.count == 10_001)
            #expect(table[1][2] == "Lab 10000, \"seeded\"")
            #expect(Set(table.dropFirst().map { $0[0] }).count == 10_000)
        }
    }
}

func gunzip(_ data: Data) throws -> Data {
    guard let inflated = try systemGunzip(data) else {
        Issue.record("gzip refused the data")
        return Data()
    }
    return inflated
}
