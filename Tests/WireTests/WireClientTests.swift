import Foundation
import NIOCore
import TestSupport
import Testing
import Wire

@Suite("Wire client: concurrency, deadlines, failover, reconnection and graceful shutdown")
struct WireClientTests {
    @Test("wire.ping answers with the service, version and time")
    func ping() async throws {
        let server = try await RunningServer.start(name: "session")
        let client = try makeClient(peer: "session", ports: [server.port], as: "catalog")
        struct Ping: Decodable, Sendable { var service: String; var version: String; var time: String }
        let ping: Ping = try await client.call("wire.ping", [String: String](), idempotent: true)
        #expect(ping.service == "session")
        #expect(ping.version == "test")
        #expect(ping.time.hasSuffix("Z"))
        await client.shutdown()
        try await server.stop()
    }

    @Test("a call carries the request id of the work it is made for (meta.request_id); an explicit one wins")
    func requestID() async throws {
        let server = try await RunningServer.start()
        let client = try makeClient(ports: [server.port])
        let none: Echo = try await client.call("test.requestID", Echo(value: 0, text: ""))
        #expect(none.text == "none")
        let carried: Echo = try await WireMeta.$currentRequestID.withValue("req-42") {
            try await client.call("test.requestID", Echo(value: 0, text: ""))
        }
        #expect(carried.text == "req-42")
        let explicit: Echo = try await WireMeta.$currentRequestID.withValue("req-42") {
            try await client.call("test.requestID", Echo(value: 0, text: ""), meta: WireMeta(requestID: "mine"))
        }
        #expect(explicit.text == "mine")
        await client.shutdown()
        try await server.stop()
    }

    @Test("a method that writes its own result: the caller gets exactly those bytes, and its errors as errors")
    func rawResult() async throws {
        let server = try await RunningServer.start()
        let client = try makeClient(ports: [server.port])
        let raw = try await client.callRaw("test.raw", Echo(value: 7, text: "a \"quoted\" } text ]"))
        #expect(String(buffer: raw) == #"[7,"a \"quoted\" } text ]",{"nested":["}",{"a":"]"}]}]"#)
        // The same answer through the typed call decodes as usual.
        let typed = try await client.call("test.raw", Echo(value: 8, text: "x"), returning: [AnyDecodable].self)
        #expect(typed.count == 3)
        await #expect(throws: WireError.self) { try await client.callRaw("test.raw", Echo(value: -1)) }
        do {
            _ = try await client.callRaw("test.raw", Echo(value: -1))
        } catch let error as WireError {
            #expect(error.code == WireError.Code.invalidParams.rawValue && error.message.contains("negative"))
        }
        // A raw answer to a string id carries the id as sent.
        let line = try await rawClient(port: server.port)
        try await line.send(#"{"jsonrpc":"2.0","id":"k\"1","method":"test.raw","params":{"value":1}}"# + "\n")
        let answer = try await line.readJSON()
        #expect(answer?["id"] as? String == "k\"1")
        #expect((answer?["result"] as? [Any])?.first as? Int == 1)
        await line.close()
        await client.shutdown()
        try await server.stop()
    }

    @Test("1,000 concurrent calls on one connection, answered out of order, each reach their caller")
    func thousandConcurrentCalls() async throws {
        let probe = Probe()
        let server = try await RunningServer.start(probe: probe)
        let client = try makeClient(ports: [server.port])
        let results = try await withThrowingTaskGroup(of: (Int, Echo).self) { group in
            for value in 0..<1000 {
                group.addTask {
                    let echoed: Echo = try await client.call(
                        "test.reversed", Echo(value: value, text: "call \(value)"), deadline: .seconds(60))
                    return (value, echoed)
                }
            }
            var results: [(Int, Echo)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(results.count == 1000)
        for (sent, echoed) in results {
            #expect(echoed == Echo(value: sent, text: "call \(sent)"))
        }
        let completions = probe.completions.withLockedValue { $0 }
        #expect(completions.count == 1000)
        #expect(completions != completions.sorted(), "the server finished them out of order")
        #expect(server.server.acceptedConnections == 1, "all on one connection")
        await client.shutdown()
        try await server.stop()
    }

    @Test("a call that outlives its deadline fails with deadline_exceeded")
    func clientDeadline() async throws {
        let server = try await RunningServer.start()
        let client = try makeClient(ports: [server.port])
        let error = await #expect(throws: WireError.self) {
            let _: Echo = try await client.call("test.sleep", SleepParams(ms: 30_000), deadline: .milliseconds(200))
        }
        #expect(error?.code == -32005)
        // The connection is still good.
        let echoed: Echo = try await client.call("test.echo", Echo(value: 1))
        #expect(echoed.value == 1)
        await client.shutdown()
        try await server.stop()
    }

    @Test("a connection attempt that the call's own deadline cuts short is deadline_exceeded, and starts no backoff")
    func connectCutByDeadline() async throws {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect neither succeeds nor
        // is refused (what a peer under heavy load looks like), all on loopback.
        let listener = try FullListener()
        defer { listener.close() }
        let client = try makeClient(ports: [listener.port])
        for _ in 0..<2 {
            let started = ContinuousClock.now
            let error = await #expect(throws: WireError.self) {
                let _: Echo = try await client.call("test.echo", Echo(value: 1), deadline: .milliseconds(300))
            }
            #expect(error?.code == -32005, "\(error?.message ?? "")")
            #expect(error?.message.contains("next connection attempt") == false, "the peer is not put in backoff")
            // At the deadline, not after the kernel's SYN retries (a minute and more); loose, for a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(15))
        }
        await client.shutdown()
    }

    @Test("a peer that is down fails fast with unavailable, well inside the deadline")
    func peerDownFailsFast() async throws {
        let port = try await freeLoopbackPort()
        let client = try makeClient(ports: [port])
        let started = ContinuousClock.now
        let error = await #expect(throws: WireError.self) {
            let _: Echo = try await client.call("test.echo", Echo(value: 1), deadline: .seconds(20))
        }
        #expect(error?.code == -32004)
        #expect(error?.kind == "unavailable")
        #expect(ContinuousClock.now - started < .seconds(10), "failed fast, not at the 20 s deadline")
        // While it backs off, calls fail at once too.
        let again = await #expect(throws: WireError.self) {
            let _: Echo = try await client.call("test.echo", Echo(value: 1), deadline: .seconds(20))
        }
        #expect(again?.code == -32004)
        await client.shutdown()
    }

    @Test("idempotent reads fail over to another endpoint; the down one is skipped")
    func failover() async throws {
        let server = try await RunningServer.start()
        let down = try await freeLoopbackPort()
        let client = try makeClient(ports: [down, server.port])
        for value in 0..<10 {
            let echoed: Echo = try await client.call("test.echo", Echo(value: value), idempotent: true)
            #expect(echoed.value == value)
        }
        await client.shutdown()
        try await server.stop()
    }

    @Test("after the peer restarts, the client reconnects")
    func reconnectAfterRestart() async throws {
        let first = try await RunningServer.start()
        let port = first.port
        let client = try makeClient(ports: [port]) {
            $0.backoffInitial = .milliseconds(20)
            $0.backoffMax = .milliseconds(200)
        }
        let before: Echo = try await client.call("test.echo", Echo(value: 1))
        #expect(before.value == 1)
        try await first.stop()

        let whileDown = await #expect(throws: WireError.self) {
            let _: Echo = try await client.call("test.echo", Echo(value: 2))
        }
        #expect(whileDown?.code == -32004)

        let second = try await RunningServer.start(port: port)
        let reconnected = await eventually(attempts: 100, interval: .milliseconds(50)) {
            let echoed: Echo? = try? await client.call("test.echo", Echo(value: 3))
            return echoed?.value == 3
        }
        #expect(reconnected)
        await client.shutdown()
        try await second.stop()
    }

    @Test("graceful shutdown finishes the calls in flight before closing")
    func gracefulShutdownDrains() async throws {
        let gate = Gate()
        let server = try await RunningServer.start(gate: gate)
        let client = try makeClient(ports: [server.port])
        let calls = Task {
            try await withThrowingTaskGroup(of: Echo.self) { group in
                for value in 0..<10 {
                    group.addTask { try await client.call("test.gated", Echo(value: value), deadline: .seconds(30)) }
                }
                var values: [Int] = []
                for try await echoed in group { values.append(echoed.value) }
                return values.sorted()
            }
        }
        #expect(await eventually { gate.arrived == 10 })
        let stopping = Task { try await server.stop() }
        // The server stops accepting connections at once...
        #expect(
            await eventually {
                let probe = try? makeClient(ports: [server.port])
                defer { Task { await probe?.shutdown() } }
                let answered: Echo? = try? await probe?.call("test.echo", Echo(value: 0), deadline: .seconds(1))
                return answered == nil
            })
        // ...and answers the calls in flight once they finish.
        gate.open()
        #expect(try await calls.value == Array(0..<10))
        try await stopping.value
        await client.shutdown()
    }
}

/// Any JSON value, for checking a shape without a type.
struct AnyDecodable: Decodable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { return }
        if (try? container.decode(Double.self)) != nil { return }
        if (try? container.decode(String.self)) != nil { return }
        if (try? container.decode(Bool.self)) != nil { return }
        if (try? container.decode([AnyDecodable].self)) != nil { return }
        _ = try container.decode([String: AnyDecodable].self)
    }
}
