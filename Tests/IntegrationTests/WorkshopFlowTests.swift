import Contracts
import Foundation
import TestSupport
import Testing

/// The on-demand workshop flow across real processes: nginx in front of catalog-service and session-service, which
/// talk over mutual TLS; a real lab process per session.
func percentEncoded(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
}

@Suite("Workshop flow through nginx", .serialized)
struct WorkshopFlowTests {
    static let portal = """
        portal:
          name: flow
          url: http://portal.test
          sessions: {maximum: 5, registered: 0, anonymous: 0}
          index_url: http://portal.test/default/
        workshops:
          - name: hello
            title: Hello flow
            content: {files: "https://example.com/hello"}
            session:
              command: >-
                printf 'lab %s' "$SESSION_NAME" > "$WORKSPACE/index.html" &&
                exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WORKSPACE"
        environments:
          - workshop: hello
            capacity: 3
            reserved: 1
            expires: 2m
            deadline: 10m
        """

    static func credentials(_ home: String) throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try String(contentsOfFile: "\(home)/credentials.env", encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    static func form(_ fields: [(String, String)]) -> Data {
        Data(fields.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&").utf8)
    }

    @Test("robot token → request → activation → session page → extend → terminate → back to the index with session-deleted")
    func endToEnd() async throws {
        try await LocalStack.withProxy(portal: Self.portal, services: ["session"]) { stack, proxy in
            let base = proxy.base
            let c = try Self.credentials(stack.home)

            // 1. A robot token, client credentials by HTTP Basic.
            let basic = "Basic " + Data("\(c["LABPORTAL_ROBOT_CLIENT_ID"]!):\(c["LABPORTAL_ROBOT_CLIENT_SECRET"]!)".utf8).base64EncodedString()
            let tokenAnswer = try await httpRequest(
                "POST", "\(base)/oauth2/token/",
                headers: ["Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"],
                body: Self.form([("grant_type", "password"), ("username", c["LABPORTAL_ROBOT_USER"]!),
                                 ("password", c["LABPORTAL_ROBOT_PASSWORD"]!)]))
            #expect(tokenAnswer.status == 200, "\(tokenAnswer.text)")
            let token = try #require(tokenAnswer.json?["access_token"] as? String)
            let bearer = ["Authorization": "Bearer \(token)"]

            // 2. The catalog (authenticated through identity.authenticate on the wire) shows the ready spare.
            func environment() async throws -> [String: Any] {
                let answer = try await httpRequest("GET", "\(base)/workshops/catalog/environments/", headers: bearer)
                #expect(answer.status == 200, "\(answer.text)")
                return ((answer.json?["environments"] as? [[String: Any]])?.first) ?? [:]
            }
            let spareReady = await eventually(attempts: 150, interval: .milliseconds(200)) {
                (try? await environment()["available"] as? Int) == 1
            }
            #expect(spareReady, "the spare is provisioned:\n\(stack.logTail("session"))")
            #expect(try await environment()["allocated"] as? Int == 0)

            // 3. The request.
            let index = "https://front.test/labs?x=1"
            let request = try await httpRequest(
                "POST", "\(base)/workshops/environment/flow-w01/request/?index_url=\(percentEncoded(index))",
                headers: bearer)
            #expect(request.status == 200, "\(request.text)")
            let name = try #require(request.json?["name"] as? String)
            #expect(name == "flow-w01-s001")
            let activation = try #require(request.json?["url"] as? String)
            #expect(try await environment()["allocated"] as? Int == 1)

            // 4. Activation redirects to the session page and sets the browser's cookie.
            let activated = try await httpRequest("GET", "\(base)\(activation)")
            #expect(activated.status == 302)
            #expect(activated.header("Location") == "/workshops/session/\(name)/")
            let cookie = (activated.header("Set-Cookie") ?? "").split(separator: ",").map {
                $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces)
            }.joined(separator: "; ")
            #expect(cookie.contains("labportal_user="))

            // 5. The session page frames the lab, which really runs.
            let page = try await httpRequest("GET", "\(base)/workshops/session/\(name)/", headers: ["Cookie": cookie])
            #expect(page.status == 200)
            #expect(page.text.contains("Hello flow"))
            let labURL = try #require(page.text.firstMatch(of: /<iframe id="lab" src="([^"]+)"/)?.1)
            let lab = try await httpGet(String(labURL).replacingOccurrences(of: "localhost", with: "127.0.0.1") + "index.html")
            #expect(lab.text == "lab \(name)")

            // 6. Extend (2 min left < the 5 min step, deadline 10 min away).
            let extend = try await httpRequest("GET", "\(base)/workshops/session/\(name)/extend/", headers: bearer)
            #expect(extend.status == 200)
            #expect(extend.json?["extended"] as? Bool == true, "\(extend.text)")
            #expect((extend.json?["countdown"] as? Int ?? 0) > 300)

            // 7. Terminate; the browser is sent back to the index with session-deleted.
            let terminate = try await httpRequest("POST", "\(base)/workshops/session/\(name)/terminate/", headers: bearer)
            #expect(terminate.status == 200)
            let back = try await httpRequest("GET", "\(base)/workshops/session/\(name)/", headers: ["Cookie": cookie])
            #expect(back.status == 302)
            #expect(back.header("Location") == "https://front.test/labs?x=1&notification=session-deleted")

            // The lab stops, and the counts follow.
            let port = try #require(URLComponents(string: String(labURL))?.port)
            let stopped = await eventually(attempts: 150, interval: .milliseconds(200)) {
                (try? await httpGet("http://127.0.0.1:\(port)/", timeout: 1)) == nil
            }
            #expect(stopped, "the lab process is stopped")
            let released = await eventually(attempts: 100, interval: .milliseconds(200)) {
                (try? await environment()["allocated"] as? Int) == 0
            }
            #expect(released)
        }
    }
}
