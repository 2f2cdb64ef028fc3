import Contracts
import Foundation
import TestSupport
import Testing

/// The instructor-led flow across real processes: nginx in front of classroom-service, which reads templates from
/// catalog-service and has session-service make, run and delete real lab environments over mutual TLS.
@Suite("Classroom flow through nginx", .serialized)
struct ClassroomFlowTests {
    static let portal = """
        portal:
          name: flow
          url: http://portal.test
          sessions: {maximum: 5, registered: 0, anonymous: 0}
        workshops:
          - name: hello
            title: Hello class
            content: {files: "https://example.com/hello"}
            vms:
              - {id: web-1, name: Web server}
            region: local
            session:
              command: >-
                printf 'lab %s' "$SESSION_NAME" > "$WORKSPACE/index.html" &&
                exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORKSPACE"
        environments:
          - workshop: hello
            capacity: 3
            reserved: 0
        """

    static func skytapTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d/%02d/%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    @Test("course → class → labs → provisioned and run by session-service → student page → lab → class deleted")
    func endToEnd() async throws {
        try await LocalStack.withProxy(portal: Self.portal, services: ["session", "classroom"]) { stack, proxy in
            let base = proxy.base
            let c = try WorkshopFlowTests.credentials(stack.home)
            let basic = "Basic " + Data("\(c["LABPORTAL_ADMIN_USER"]!):\(c["LABPORTAL_ADMIN_API_TOKEN"]!)".utf8).base64EncodedString()
            let auth = ["Authorization": basic, "Accept": "application/json", "Content-Type": "application/json"]

            func json(_ object: Any) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

            // Templates come from the catalog.
            let templates = try await httpRequest("GET", "\(base)/v2/templates.json", headers: auth)
            #expect(templates.status == 200, "\(templates.text)")
            #expect(templates.text.contains("\"hello\""))

            // A course, as a real client sends it: attributes in the query string, an empty JSON body.
            let course = try await httpRequest(
                "POST", "\(base)/courses.json?name=Flow%20course&description=e2e&template_ids=hello&max_labs=3",
                headers: auth, body: Data())
            #expect(course.status == 200, "\(course.text)")
            let courseID = try #require(course.json?["id"] as? String)

            // A class starting in two minutes: both its provision and its run time have come.
            let start = Self.skytapTime(Date().addingTimeInterval(120))
            let klass = try await httpRequest(
                "POST", "\(base)/courses/\(courseID)/classes.json", headers: auth,
                body: try json(["start_at": start, "provision_hours": 1, "run_hours": 1, "password": ""]))
            #expect(klass.status == 200, "\(klass.text)")
            let classID = try #require(klass.json?["id"] as? String)
            let labs = try await httpRequest(
                "POST", "\(base)/v2/classes/\(classID)/labs/create_multiple.json", headers: auth,
                body: try json([["name": "Student 1"], ["name": "Student 2"]]))
            #expect(labs.status == 200, "\(labs.text)")

            // The scheduler provisions and runs them through session-service.
            func labStates() async throws -> [String] {
                let answer = try await httpRequest("GET", "\(base)/v2/classes/\(classID)/labs.json", headers: auth)
                return ((try? JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]]) ?? []).compactMap { $0["state"] as? String }
            }
            let started = await eventually(attempts: 200, interval: .milliseconds(200)) {
                (try? await labStates()) == ["started", "started"]
            }
            #expect(started, "labs started:\n\(stack.logTail("classroom"))\n\(stack.logTail("session"))")
            let state = try await httpRequest("GET", "\(base)/v2/classes/\(classID).json", headers: auth)
            #expect(state.json?["state"] as? String == "started")
            #expect(state.json?["labs_run_at"] is String)

            // The student page leads to the lab, which really runs.
            let list = try await httpRequest("GET", "\(base)/v2/classes/\(classID)/labs.json", headers: auth)
            let first = try #require((try JSONSerialization.jsonObject(with: list.body) as? [[String: Any]])?.first)
            let desktops = try #require(first["desktops_url"] as? String)
            let configuration = try #require(first["configuration_id"] as? String)
            let path = String(desktops[desktops.range(of: "/desktops/")!.lowerBound...])
            let page = try await httpRequest("GET", "\(base)\(path)")
            #expect(page.status == 200, "\(page.text)")
            let labURL = try #require(page.text.firstMatch(of: /<iframe src="([^"]+)"/)?.1)
            let lab = try await httpGet(String(labURL).replacingOccurrences(of: "localhost", with: "127.0.0.1") + "index.html")
            #expect(lab.text == "lab \(configuration)")

            // The class environments.
            let environments = try await httpRequest("GET", "\(base)/v2/classes/\(classID)/configurations.json", headers: auth)
            #expect(environments.text.contains(configuration))

            // Deleting the class deletes the lab environments; the processes end.
            let deleted = try await httpRequest("DELETE", "\(base)/v2/classes/\(classID)", headers: auth)
            #expect(deleted.status == 200)
            let port = try #require(URLComponents(string: String(labURL))?.port)
            let gone = await eventually(attempts: 200, interval: .milliseconds(200)) {
                (try? await httpRequest("GET", "\(base)/v2/classes/\(classID).json", headers: auth))?.status == 404
            }
            #expect(gone, "class deleted:\n\(stack.logTail("classroom"))")
            #expect((try? await httpGet("http://127.0.0.1:\(port)/", timeout: 1)) == nil, "the lab process is stopped")
            let courseAfter = try await httpRequest("GET", "\(base)/v2/courses/\(courseID).json", headers: auth)
            #expect(courseAfter.json?["class_count"] as? Int == 0)
        }
    }
}
