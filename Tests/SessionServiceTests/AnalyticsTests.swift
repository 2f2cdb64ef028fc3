import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ServerKit
import ServiceLifecycle
@testable import SessionService
import Storage
import Synchronization
import TestSupport
import Testing

/// A real HTTP server on loopback that keeps what is posted to it.
final class HTTPSink: Sendable {
    let port: Int
    let received = Mutex<[(path: String, body: Data)]>([])
    private let task = Mutex<Task<Void, any Error>?>(nil)
    private let group = Mutex<ServiceGroup?>(nil)

    init(port: Int) { self.port = port }

    func start() async throws {
        let router = Router()
        router.post("/**") { [self] request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            self.received.withLock { $0.append((request.uri.path, Data(buffer: body))) }
            return .noContent
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: quietLogger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: quietLogger)
        self.group.withLock { $0 = group }
        task.withLock { $0 = Task { try await group.run() } }
        // Ready once it answers.
        for _ in 0..<200 {
            if (try? await AnalyticsSender.http(timeout: .milliseconds(500)).post("http://127.0.0.1:\(port)/probe", [])) != nil { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    func stop() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
        _ = try? await task.withLock { $0 }?.value
    }

    var events: [[String: Any]] {
        received.withLock { $0 }.filter { $0.path != "/probe" }
            .compactMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any] }
    }
}

@Suite("Analytics: session events are kept, then forwarded to the session's analytics_url over HTTP")
struct AnalyticsTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws", capacity: 5)])

    func request(_ client: any TestClientProtocol, token: String, analytics: String?) async throws -> String {
        var path = "/workshops/environment/lab-w01/request/?index_url=x"
        if let analytics { path += "&analytics_url=\(FormParameters.encode(analytics))" }
        let answer = try await client.call(.get, path, headers: bearer(token))
        return try #require(answer.json["name"] as? String)
    }

    func post(_ client: any TestClientProtocol, _ session: String, token: String, _ body: String) async throws -> HTTPAnswer {
        try await client.call(.post, "/workshops/session/\(session)/event/", headers: bearer(token), body: body)
    }

    @Test("an event is answered {} and reaches the endpoint with the portal, the session and its data", arguments: TestBackends.all)
    func delivered(backend: DatabaseBackend) async throws {
        let sink = HTTPSink(port: try await freeLoopbackPort())
        try await sink.start()
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let session = try await request(client, token: token, analytics: "http://127.0.0.1:\(sink.port)/hook")
                let answer = try await post(
                    client, session, token: token, #"{"event": {"name": "Workshop/Step", "data": {"step": 2, "title": "Ünïcode, \"quoted\""}}}"#)
                #expect(answer.status == .ok)
                #expect(answer.json.isEmpty)
                #expect(try await harness.dependencies.analytics.pending() == 1)
                #expect(try await harness.dependencies.analytics.pass() == 1)
                #expect(try await harness.dependencies.analytics.pending() == 0)
            }
        }
        let events = sink.events
        #expect(events.count == 1)
        let event = try #require(events.first?["event"] as? [String: Any])
        #expect(event["name"] as? String == "Workshop/Step")
        #expect(event["session"] as? String == "lab-w01-s001")
        #expect(event["environment"] as? String == "lab-w01")
        #expect(event["workshop"] as? String == "ws")
        #expect((event["data"] as? [String: Any])?["title"] as? String == "Ünïcode, \"quoted\"")
        #expect((events.first?["portal"] as? [String: Any])?["name"] as? String != nil)
        #expect(sink.received.withLock { $0 }.contains { $0.path == "/hook" })
        await sink.stop()
    }

    @Test("bad bodies are 400 naming the field; an unknown session 404; a session without analytics_url keeps nothing")
    func errors() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let session = try await request(client, token: token, analytics: nil)
                for (body, field) in [
                    ("not json", "event"), (#"{"other": 1}"#, "event"), (#"{"event": {"data": {}}}"#, "event.name"),
                    (#"{"event": {"name": ""}}"#, "event.name"), (#"{"event": {"name": "x", "data": [1]}}"#, "event.data"),
                ] {
                    let answer = try await post(client, session, token: token, body)
                    #expect(answer.status == .badRequest, "\(body)")
                    #expect(answer.json["field"] as? String == field, "\(body): \(answer.json)")
                }
                #expect(try await post(client, "lab-w01-s999", token: token, #"{"event": {"name": "x"}}"#).status == .notFound)
                let unauthenticated = try await client.call(.post, "/workshops/session/\(session)/event/", body: #"{"event": {"name": "x"}}"#)
                #expect(unauthenticated.status == .unauthorized)
                let ok = try await post(client, session, token: token, #"{"event": {"name": "x"}}"#)
                #expect(ok.status == .ok)
                #expect(try await harness.dependencies.analytics.pending() == 0, "no analytics_url: nothing to forward")
            }
        }
    }

    @Test("an endpoint that is down: its events wait and back off, others' go on; once it is back they arrive")
    func endpointDown() async throws {
        let down = try await freeLoopbackPort()
        let sink = HTTPSink(port: try await freeLoopbackPort())
        try await sink.start()
        try await SessionHarness.with(portal: Self.portal) { harness in
            try await harness.application().test(.router) { client in
                let token = try await client.robotToken(harness.credentials)
                let first = try await request(client, token: token, analytics: "http://127.0.0.1:\(down)/hook")
                let second = try await request(client, token: token, analytics: "http://127.0.0.1:\(sink.port)/hook")
                for index in 0..<3 {
                    #expect(try await post(client, first, token: token, #"{"event": {"name": "down-\#(index)"}}"#).status == .ok)
                }
                #expect(try await post(client, second, token: token, #"{"event": {"name": "up"}}"#).status == .ok)
                let analytics = harness.dependencies.analytics
                #expect(try await analytics.pass() == 1, "the reachable endpoint's event goes")
                #expect(try await analytics.pending() == 3)
                #expect(try await analytics.pass() == 0, "the others wait out their back-off")
                let waiting = HTTPSink(port: down)
                try await waiting.start()
                harness.clock.advance(seconds: 6)
                #expect(try await analytics.pass() == 3)
                #expect(waiting.events.compactMap { ($0["event"] as? [String: Any])?["name"] as? String } == ["down-0", "down-1", "down-2"])
                await waiting.stop()
            }
        }
        #expect(sink.events.count == 1)
        await sink.stop()
    }

    @Test("an event that keeps failing is dropped after 12 attempts; no more than maximumPending wait")
    func limits() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let attempts = Mutex(0)
            let outbox = AnalyticsOutbox.make(
                database: harness.database,
                sender: AnalyticsSender { _, _ in
                    attempts.withLock { $0 += 1 }
                    throw CancellationError()
                },
                leases: Leases(harness.database), maximumPending: 2, now: harness.clock.source, logger: quietLogger)
            let first = try await outbox.enqueue(session: "s1", url: "http://127.0.0.1:1/a", payload: Array("{}".utf8))
            let second = try await outbox.enqueue(session: "s1", url: "http://127.0.0.1:1/b", payload: Array("{}".utf8))
            let third = try await outbox.enqueue(session: "s1", url: "http://127.0.0.1:1/c", payload: Array("{}".utf8))
            #expect(first && second && !third, "the third is refused: two already wait")
            #expect(try await outbox.pending() == 2)
            for round in 1...AnalyticsOutbox.maximumAttempts {
                let delivered = try await outbox.pass()
                let pending = try await outbox.pending()
                #expect(delivered == 0)
                #expect(pending == (round < AnalyticsOutbox.maximumAttempts ? 2 : 0), "round \(round)")
                harness.clock.advance(seconds: 601)
            }
            #expect(attempts.withLock { $0 } == 2 * AnalyticsOutbox.maximumAttempts)
        }
    }
}
