import Foundation
import TestSupport
import Testing
import Wire

@Suite("Idle connections: closed when nothing happens, never while a call is in flight")
struct IdleTests {
    @Test("the server closes a connection that is idle with nothing in flight")
    func serverClosesIdle() async throws {
        // 2 s: the handshake and the first line must come before the server thinks the connection idle, also on a
        // loaded CI machine.
        let server = try await RunningServer.start { $0.idleTimeout = .seconds(2) }
        let client = try await rawClient(port: server.port)
        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wire.ping\"}\n")
        #expect(try await client.readJSON()?["id"] as? Int == 1)
        #expect(try await client.readLine() == nil, "closed after the idle timeout")
        try await server.stop()
    }

    @Test("a call longer than the idle timeout still gets its answer")
    func longCallSurvivesIdle() async throws {
        // 2 s: the next call follows the first answer at once, but a test task on a loaded CI machine can stall for
        // a second, and a call sent as the server closes an idle connection is lost (in production the client idles
        // out first: 5 minutes against the server's 10).
        let server = try await RunningServer.start { $0.idleTimeout = .seconds(2) }
        let client = try makeClient(ports: [server.port])
        // Connect first (a TLS handshake on a loaded machine can take longer than a short idle timeout, and a
        // connection with nothing sent yet is idle), then make a call three times longer than the timeout.
        let first: Echo = try await client.call("test.echo", Echo(value: 1))
        #expect(first.value == 1)
        let answer: Echo = try await client.call("test.sleep", SleepParams(ms: 6000), deadline: .seconds(20))
        #expect(answer.value == 6000)
        #expect(server.server.acceptedConnections == 1, "the answer came on the same connection")
        await client.shutdown()
        try await server.stop()
    }

    @Test("the client closes its idle connection and the next call opens a new one")
    func clientClosesIdle() async throws {
        let server = try await RunningServer.start()
        let client = try makeClient(ports: [server.port]) { $0.idleTimeout = .milliseconds(100) }
        let first: Echo = try await client.call("test.echo", Echo(value: 1))
        #expect(first.value == 1)
        #expect(server.server.acceptedConnections == 1)
        // Wait for the client to drop the idle connection, then call again: a second connection, no error.
        let reconnected = await eventually(attempts: 50, interval: .milliseconds(100)) {
            let echoed: Echo? = try? await client.call("test.echo", Echo(value: 2))
            return echoed?.value == 2 && server.server.acceptedConnections >= 2
        }
        #expect(reconnected)
        await client.shutdown()
        try await server.stop()
    }

    @Test("calls that race the client's idle close never fail: an unsent call moves to a new connection")
    func idleRace() async throws {
        let server = try await RunningServer.start()
        let client = try makeClient(ports: [server.port]) { $0.idleTimeout = .milliseconds(30) }
        for value in 0..<40 {
            // Spaced around the idle timeout, so that some calls meet a connection that is closing.
            try await Task.sleep(for: .milliseconds(20 + (value % 3) * 10))
            // A generous deadline: on a loaded machine a new connection's handshake can take seconds; a call lost
            // to the race would never be answered, and would still fail here.
            let echoed: Echo = try await client.call("test.echo", Echo(value: value), deadline: .seconds(30))
            #expect(echoed.value == value)
        }
        #expect(server.server.acceptedConnections > 1, "the client did close idle connections")
        await client.shutdown()
        try await server.stop()
    }
}
