import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import ServerKit

/// The browser pages: the class management view for instructors (`/instructor/<class-id>?access_code=…`) and each
/// lab's student page (`desktops_url`, `/desktops/<token>`), which enforces the class's password, daily access
/// window, runtime limit and expiration date before it leads to the lab environment.
struct ClassPagesController: Sendable {
    let dependencies: ClassroomDependencies
    var representations: Representations { Representations(dependencies.settings) }

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/instructor/:id", use: instructor)
        router.get("/desktops/:token", use: desktop)
        router.post("/desktops/:token", use: unlock)
    }

    // MARK: Instructor view

    @Sendable func instructor(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text), let record = try await dependencies.repository.klass(id) else {
            return HTML.page(title: "No such class", body: "<h1>No such class</h1>", status: .notFound)
        }
        let code = request.query["access_code"] ?? ""
        guard !code.isEmpty, Secrets.constantTimeEquals(code, record.accessCode) else {
            try await dependencies.repository.audit(
                .failedTrainingClassInstructorLogin, actor: Actor(id: "", name: "anonymous"),
                target: (type: "class", id: record.id, name: record.name),
                details: code.isEmpty ? "no access code" : "wrong access code", now: dependencies.now())
            context.logger.warning("instructor view refused: wrong access code", metadata: ["class": "\(record.id)"])
            return HTML.page(
                title: "Access code required",
                body: "<h1>Access code required</h1><p>Open the class management link with its access code.</p>",
                status: .forbidden)
        }
        let labs = try await dependencies.repository.labs(classID: record.id)
        let zone = record.zone
        let rows = labs.map { lab -> String in
            let link = representations.desktopsURL(lab).map { "<a href=\"\(HTML.escape($0))\">student page</a>" } ?? "—"
            return "<tr><td>\(HTML.escape(lab.name))</td><td>\(lab.state.rawValue)</td><td>\(HTML.escape(lab.configurationID ?? "—"))</td><td>\(link)</td><td class=\"error\">\(HTML.escape(lab.errorMessage ?? ""))</td></tr>"
        }.joined(separator: "\n")
        let body = """
            <h1>\(HTML.escape(record.name))</h1>
            <p>State: <strong>\(record.state.rawValue)</strong>. Starts \(HTML.escape(SkytapTime.string(record.startAt, in: zone)))\
            \(record.endAt.map { ", ends \(HTML.escape(SkytapTime.string($0, in: zone)))" } ?? "") (\(HTML.escape(record.timeZone))).</p>
            \(record.errorMessage.map { "<p class=\"error\">\(HTML.escape($0))</p>" } ?? "")
            <table><thead><tr><th>Lab</th><th>State</th><th>Environment</th><th>Link</th><th>Error</th></tr></thead>
            <tbody>
            \(rows.isEmpty ? "<tr><td colspan=\"5\">No labs yet.</td></tr>" : rows)
            </tbody></table>
            """
        return HTML.page(title: record.name, body: body)
    }

    // MARK: Student page

    static func cookieName(_ lab: LabRecord) -> String { "labportal_lab_\(lab.id)" }

    /// What the password cookie holds: it changes when the password does.
    static func cookieValue(_ lab: LabRecord, passwordHash: String) -> String {
        Secrets.hex(SHA256.hash(data: Data("\(passwordHash):\(lab.accessToken)".utf8)))
    }

    func labAndClass(_ context: BasicRequestContext) async throws -> (LabRecord, ClassRecord)? {
        let token = context.parameters.get("token") ?? ""
        guard token.count <= 64, let lab = try await dependencies.repository.lab(token: token),
            let record = try await dependencies.repository.klass(lab.classID), !record.deleting
        else { return nil }
        return (lab, record)
    }

    static let missing = HTML.page(
        title: "No such lab", body: "<h1>No such lab</h1><p>This lab link is not valid.</p>", status: .notFound)

    @Sendable func desktop(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let (lab, record) = try await labAndClass(context) else { return Self.missing }
        return try await gate(request, lab: lab, record: record, passwordError: nil)
    }

    @Sendable func unlock(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        guard let (lab, record) = try await labAndClass(context) else { return Self.missing }
        let form = FormParameters(String(decoding: try await request.bodyData(limit: 16 << 10), as: UTF8.self))
        guard let hash = record.passwordHash else { return redirect(lab) }
        guard let password = form["password"], Secrets.verifyPassword(password, against: hash) else {
            context.logger.info("student page: wrong password", metadata: ["lab": "\(lab.id)"])
            return try await gate(request, lab: lab, record: record, passwordError: "That password is not right.")
        }
        var headers = HTTPFields()
        headers[.setCookie] =
            "\(Self.cookieName(lab))=\(Self.cookieValue(lab, passwordHash: hash)); Path=/desktops/; HttpOnly; SameSite=Lax"
        headers[.location] = "/desktops/\(lab.accessToken)"
        return Response(status: .seeOther, headers: headers)
    }

    func redirect(_ lab: LabRecord) -> Response {
        Response(status: .seeOther, headers: [.location: "/desktops/\(lab.accessToken)"])
    }

    /// The gates in order: expiration, daily window, password, runtime limit. Then the lab.
    func gate(_ request: Request, lab: LabRecord, record: ClassRecord, passwordError: String?) async throws -> Response {
        let now = dependencies.now()
        let zone = record.zone
        let title = "\(record.name) — \(lab.name)"
        if let expiration = record.expirationDate, now >= expiration {
            return HTML.page(
                title: title,
                body: "<h1>\(HTML.escape(lab.name))</h1><p>Access to this lab expired on \(HTML.escape(SkytapTime.string(expiration, in: zone))).</p>",
                status: .forbidden)
        }
        if let start = ClassSchedule.minutes(record.startTime), let end = ClassSchedule.minutes(record.endTime) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let parts = calendar.dateComponents([.hour, .minute], from: now)
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            let open = start < end ? (minute >= start && minute < end) : (minute >= start || minute < end)
            if !open {
                return HTML.page(
                    title: title,
                    body: "<h1>\(HTML.escape(lab.name))</h1><p>This lab can be used between \(record.startTime!) and \(record.endTime!) (\(HTML.escape(record.timeZone))).</p>",
                    status: .forbidden)
            }
        }
        if let hash = record.passwordHash {
            let expected = "\(Self.cookieName(lab))=\(Self.cookieValue(lab, passwordHash: hash))"
            let cookies = (request.headers[.cookie] ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            if !cookies.contains(where: { Secrets.constantTimeEquals($0, expected) }) {
                let body = """
                    <h1>\(HTML.escape(lab.name))</h1>
                    \(passwordError.map { "<p class=\"error\">\(HTML.escape($0))</p>" } ?? "")
                    <form method="post"><label>Password <input type="password" name="password" autofocus></label>
                    <button type="submit">Open the lab</button></form>
                    """
                return HTML.page(title: title, body: body, status: .unauthorized)
            }
        }
        if let limit = record.runtimeLimit, let first = lab.firstAccessAt,
            now >= first.addingTimeInterval(TimeInterval(limit * 60))
        {
            return HTML.page(
                title: title,
                body: "<h1>\(HTML.escape(lab.name))</h1><p>The runtime limit of \(limit) minutes for this lab is used up.</p>",
                status: .forbidden)
        }
        guard lab.state == .started, let url = lab.environmentURL, !url.isEmpty else {
            let when = record.labsRunAt == nil
                ? "It will be ready by \(HTML.escape(SkytapTime.string(record.startAt, in: zone)))."
                : "Please check again shortly."
            return HTML.page(
                title: title,
                body: "<h1>\(HTML.escape(lab.name))</h1><p>Your lab is not running right now (\(lab.state.rawValue)). \(when)</p>",
                headers: [.retryAfter: "30"])
        }
        try await dependencies.repository.markAccessed(lab.id, now: now)
        let escaped = HTML.escape(url)
        return HTML.page(
            title: title,
            body: "<h1>\(HTML.escape(lab.name))</h1><p><a href=\"\(escaped)\" target=\"_blank\">Open the lab in a new tab</a></p><iframe src=\"\(escaped)\"></iframe>")
    }
}
