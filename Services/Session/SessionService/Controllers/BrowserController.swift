import Contracts
import Foundation
import Hummingbird
import Logging
import ServerKit

/// The browser flow: the session page, deleting a session, and the anonymous entry into an environment. Each
/// returns to the index URL with a `notification` exactly when the seed says so.
struct BrowserController: Sendable {
    let dependencies: SessionDependencies

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/workshops/session/:session", use: page)
        router.get("/workshops/session/:session/delete", use: delete)
        router.post("/workshops/session/:session/activity", use: activity)
        router.get("/workshops/environment/:env/create", use: createAnonymous)
        router.get("/workshops/environment/:env", use: enter)
    }

    /// Where to send the browser back to: the request's `index_url`, the browser's, the session's, the portal's.
    func indexURL(_ request: Request, session: SessionRecord?) async -> String {
        if let index = request.query["index_url"], !index.isEmpty { return index }
        if let cookie = request.cookies[BrowserCookies.index]?.value, let index = cookie.removingPercentEncoding,
            !index.isEmpty
        {
            return index
        }
        if let index = session?.indexURL, !index.isEmpty { return index }
        if let portal = try? await dependencies.portal.current().portal, !portal.indexURL.isEmpty {
            return portal.indexURL
        }
        return "/workshops/catalog/"
    }

    @Sendable func page(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("session"), field: "session")
        let browser = try await dependencies.browserUser(request)
        let session = try await dependencies.sessions.session(named: name)
        guard let session, let browser, browser.id == session.ownerID else {
            return Redirects.notify(await indexURL(request, session: nil), "session-invalid")
        }
        if session.state == .stopped || session.state == .stopping {
            return Redirects.notify(await indexURL(request, session: session), "session-deleted")
        }
        let snapshot = try? await dependencies.portal.current()
        let environment = snapshot?.environment(named: session.environment)
        let timing = SessionTiming(session: session, settings: environment?.settings, now: dependencies.now())
        let html = SessionPage.render(
            session: session, title: environment?.workshop.title ?? session.workshop, timing: timing,
            index: await indexURL(request, session: session))
        return Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// The session page's heartbeat: it is open, and (`active=true`) its user works in it. Only the owner's browser.
    @Sendable func activity(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("session"), field: "session")
        guard let browser = try await dependencies.browserUser(request),
            let session = try await dependencies.sessions.session(named: name), browser.id == session.ownerID
        else { throw SessionError.noSuchSession(name, field: false) }
        let active: Bool
        switch request.query["active"]?.lowercased() {
        case nil, "true", "1": active = true
        case "false", "0": active = false
        default: throw ServiceFailure(.badRequest, "active must be true or false", field: "active")
        }
        try await dependencies.sessions.recordActivity(name, active: active, now: dependencies.now())
        return Response(status: .noContent)
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("session"), field: "session")
        let browser = try await dependencies.browserUser(request)
        let session = try await dependencies.sessions.session(named: name)
        guard let session, let browser, browser.id == session.ownerID else {
            return Redirects.notify(await indexURL(request, session: nil), "session-invalid")
        }
        let index = await indexURL(request, session: session)
        if session.state == .stopped || session.state == .stopping {
            return Redirects.notify(index, "session-deleted")
        }
        _ = try await dependencies.sessions.terminate(name, now: dependencies.now())
        dependencies.runtime.wake()
        context.logger.info("session deleted from the browser", metadata: ["session": "\(name)"])
        let notification = request.query["notification"].flatMap { Validation.notification($0) } ?? "session-deleted"
        return Redirects.notify(index, notification)
    }

    /// `environment/<env>/create/?index_url=…`: makes an anonymous user for this browser, then enters.
    @Sendable func createAnonymous(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("env"), field: "env")
        // `made=1` tells `environment/<env>/` that a user was just made: if the browser comes back without its
        // cookie (cookies refused), it must not be sent here again (an endless loop), but back to the index.
        var target = "/workshops/environment/\(name)/?made=1"
        if let index = request.query["index_url"], !index.isEmpty {
            target += "&index_url=\(FormParameters.encode(index))"
        }
        var response = Response.redirect(to: target, type: .found)
        if try await dependencies.browserUser(request) == nil {
            let user = try await dependencies.identity.repository.createUser(
                .init(username: "anon-\(UUID().uuidString.lowercased())", role: .anonymous), now: dependencies.now())
            let token = try await dependencies.identity.repository.issueBrowserToken(
                userID: user.id, now: dependencies.now())
            response.setCookie(
                Cookie(
                    name: BrowserCookies.user, value: token, maxAge: Int(IdentityRepository.browserLifetime),
                    path: "/workshops/", httpOnly: true))
            context.logger.info("anonymous user created", metadata: ["user": "\(user.username)"])
        }
        if let index = request.query["index_url"], !index.isEmpty {
            response.setCookie(
                Cookie(name: BrowserCookies.index, value: FormParameters.encode(index), path: "/workshops/", httpOnly: true))
        }
        return response
    }

    /// `environment/<env>/`: allocates a session for the browser's user and opens it.
    @Sendable func enter(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try Validation.slug(context.parameters.get("env"), field: "env")
        let index = await indexURL(request, session: nil)
        let snapshot = try await dependencies.portal.current()
        guard let environment = snapshot.environment(named: name) else {
            return Redirects.notify(index, "workshop-invalid")
        }
        guard let browser = try await dependencies.browserUser(request) else {
            if request.query["made"] == "1" {
                // A user was made for this browser a moment ago and its cookie did not come back.
                context.logger.notice("browser without cookies: no session", metadata: ["environment": "\(name)"])
                return Redirects.notify(index, "session-unavailable")
            }
            return Response.redirect(
                to: "/workshops/environment/\(name)/create/?index_url=\(FormParameters.encode(index))", type: .found)
        }
        let allocation = AllocationRequest(
            environment: environment, limits: snapshot.portal.sessions, user: .existing(browser), reacquire: nil,
            withToken: false, timeout: 0, indexURL: index, analyticsURL: nil, parameters: [])
        let (outcome, _) = try await dependencies.sessions.allocate(allocation, now: dependencies.now())
        SessionMetrics.requested(environment: environment.name, outcome: outcome)
        switch outcome {
        case .allocated(let session, _, let via):
            if via != .reused {
                dependencies.runtime.wake()
                context.logger.info("session allocated from the browser", metadata: ["session": "\(session.name)"])
            }
            return Response.redirect(to: "/workshops/session/\(session.name)/", type: .found)
        case .unavailable, .cannotReacquire:
            return Redirects.notify(index, "session-unavailable")
        }
    }
}

extension Validation {
    /// The notifications a browser may pass through `delete/?notification=`.
    static func notification(_ value: String) -> String? {
        ["session-deleted", "startup-timeout"].contains(value) ? value : nil
    }
}

/// The session page: the workshop's title, a live countdown, Extend and Terminate, and the lab.
enum SessionPage {
    static func escape(_ text: String) -> String { HTML.escape(text) }

    static func render(session: SessionRecord, title: String, timing: SessionTiming, index: String) -> String {
        let name = escape(session.name)
        let lab: String
        switch session.provision {
        case .ready where !(session.url ?? "").isEmpty:
            let url = escape(session.url!)
            lab = """
                <p class="lab-link">Your lab: <a href="\(url)" target="_blank" rel="noopener">\(url)</a></p>
                <iframe id="lab" src="\(url)" title="\(escape(title))"></iframe>
                """
        case .ready:
            lab = "<p>This workshop has no lab process; your session's workspace is ready.</p>"
        case .failed:
            lab = """
                <p class="error">Your lab could not be started yet; it is being retried.
                <br><code>\(escape(session.errorMessage ?? ""))</code></p>
                <script>setTimeout(() => location.reload(), 5000)</script>
                """
        case .pending, .released:
            lab = "<p>Your lab is starting…</p><script>setTimeout(() => location.reload(), 2000)</script>"
        }
        let countdown = timing.countdown.map(String.init) ?? "null"
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>
            body{font-family:system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh}
            header{display:flex;gap:1rem;align-items:center;padding:.5rem 1rem;background:#1f2937;color:#fff}
            header h1{font-size:1.1rem;margin:0;flex:1}
            #lab{flex:1;border:0;width:100%}
            .error{color:#b91c1c} main{padding:0 1rem;flex:1;display:flex;flex-direction:column}
            button{padding:.3rem .8rem}
            </style></head>
            <body data-session="\(name)">
            <header><h1>\(escape(title))</h1>
            <span>Time left: <strong id="countdown">\(timing.countdown.map { format($0) } ?? "no limit")</strong></span>
            <button id="extend" \(timing.extendable ? "" : "disabled")>Extend</button>
            <button id="terminate">Terminate</button>
            </header>
            <main>\(lab)</main>
            <script>
            const base = "/workshops/session/\(name)/";
            let remaining = \(countdown);
            function show(s) {
              const el = document.getElementById("countdown");
              if (s === null) { el.textContent = "no limit"; return; }
              const m = Math.floor(s / 60), r = s % 60;
              el.textContent = m + ":" + String(r).padStart(2, "0");
            }
            async function refresh() {
              const r = await fetch(base + "schedule/", {credentials: "same-origin"});
              if (!r.ok) { location.href = base; return; }
              const s = await r.json();
              remaining = (s.countdown === undefined) ? null : s.countdown;
              document.getElementById("extend").disabled = !s.extendable;
              show(remaining);
            }
            setInterval(() => {
              if (remaining === null) return;
              remaining = Math.max(0, remaining - 1); show(remaining);
              if (remaining === 0) location.href = base;
            }, 1000);
            setInterval(refresh, 15000);
            // Heartbeat: the page is open; active when its user worked in it (the lab frame has focus, or input).
            let worked = false;
            for (const e of ["keydown", "mousedown", "mousemove", "touchstart"]) addEventListener(e, () => worked = true);
            setInterval(() => {
              if (document.visibilityState !== "visible") return;
              const active = worked || document.hasFocus();
              worked = false;
              fetch(base + "activity/?active=" + active, {method: "POST", credentials: "same-origin"});
            }, 30000);
            document.getElementById("extend").onclick = async () => {
              await fetch(base + "extend/", {method: "POST", credentials: "same-origin"}); refresh();
            };
            document.getElementById("terminate").onclick = () => {
              if (confirm("End this session?")) location.href = base + "delete/";
            };
            </script>
            <noscript><p><a href="\(escape(index))">Back to the workshops</a></p></noscript>
            </body></html>
            """
    }

    static func format(_ seconds: Int) -> String {
        "\(seconds / 60):\(String(format: "%02d", seconds % 60))"
    }
}
