import Foundation
import NIOCore
import TestSupport
import Testing
import Wire

@Suite("Wire server: framing, limits and protocol errors over real TLS")
struct WireServerTests {
    @Test("a request fed byte by byte, with CRLF and blank lines around it, is answered once")
    func framingByteByByte() async throws {
        let server = try await RunningServer.start()
        let client = try await rawClient(port: server.port)
        let request = "\n\r\n  \n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"test.echo\",\"params\":{\"value\":42}}\r\n\n"
        for byte in Array(request.utf8) {
            try await client.send([byte])
        }
        let answer = try await client.readJSON()
        #expect(answer?["id"] as? Int == 7)
        #expect((answer?["result"] as? [String: Any])?["value"] as? Int == 42)
        // Two requests in one write are two answers.
        try await client.send(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wire.ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"wire.ping\"}\n")
        let ids = Set([try await client.readJSON()?["id"] as? Int, try await client.readJSON()?["id"] as? Int])
        #expect(ids == [1, 2])
        await client.close()
        try await server.stop()
    }

    @Test("an oversized line gets an error with id null and the connection closes; others keep being served")
    func oversizedLine() async throws {
        let server = try await RunningServer.start { $0.maxLineBytes = 64 * 1024 }
        let bystander = try await rawClient(port: server.port)
        let offender = try await rawClient(port: server.port)
        try await offender.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.echo\",\"params\":{\"text\":\"")
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024)
        // The server may close while later chunks are still on their way: those sends may fail, that is the point.
        for _ in 0..<8 { try? await offender.send(chunk) }
        let error = try await offender.readJSON()
        #expect(errorCode(error) == -32600)
        #expect(error?["id"] is NSNull)
        #expect(try await offender.readLine() == nil, "the connection is closed after the error")

        try await bystander.send("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"wire.ping\"}\n")
        let ping = try await bystander.readJSON()
        #expect((ping?["result"] as? [String: Any])?["service"] as? String == "catalog")
        await bystander.close()
        try await server.stop()
    }

    @Test("invalid JSON is -32700, an unknown method -32601, bad params -32602, a non-request -32600")
    func protocolErrors() async throws {
        let server = try await RunningServer.start()
        let client = try await rawClient(port: server.port)

        try await client.send("{not json\n")
        let parse = try await client.readJSON()
        #expect(errorCode(parse) == -32700)
        #expect(parse?["id"] is NSNull)

        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no.such\"}\n")
        let unknown = try await client.readJSON()
        #expect(errorCode(unknown) == -32601)
        #expect(unknown?["id"] as? Int == 2)

        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"test.echo\",\"params\":{\"value\":\"nope\"}}\n")
        let badParams = try await client.readJSON()
        #expect(errorCode(badParams) == -32602)
        let message = (badParams?["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("params.value"), "the message names the field: \(message)")
        #expect(((badParams?["error"] as? [String: Any])?["data"] as? [String: Any])?["kind"] as? String == "invalid_params")

        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"test.echo\"}\n")
        #expect(errorCode(try await client.readJSON()) == -32602, "missing required params")

        try await client.send("[1,2,3]\n")
        #expect(errorCode(try await client.readJSON()) == -32600)
        try await client.send("{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"wire.ping\"}\n")
        let wrongVersion = try await client.readJSON()
        #expect(errorCode(wrongVersion) == -32600)
        #expect(wrongVersion?["id"] as? Int == 5)

        // The connection survives all of that.
        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"method\":\"wire.ping\"}\n")
        #expect(try await client.readJSON()?["id"] as? String == "s-1")
        await client.close()
        try await server.stop()
    }

    @Test("envelopes in any member order, with extension members, escapes or odd values read as JSON says")
    func envelopes() async throws {
        let server = try await RunningServer.start()
        let client = try await rawClient(port: server.port)
        func send(_ line: String) async throws -> [String: Any]? {
            try await client.send(line + "\n")
            return try await client.readJSON()
        }
        func value(_ answer: [String: Any]?) -> Int? { (answer?["result"] as? [String: Any])?["value"] as? Int }

        // An escaped method name (read by the general reader).
        let escaped = try await send(#"{"jsonrpc":"2.0","id":21,"method":"test.\u0065cho","params":{"value":1}}"#)
        #expect(escaped?["id"] as? Int == 21 && value(escaped) == 1)
        // Members in any order, unknown members and meta keys, brackets and quotes inside strings.
        let shuffled = try await send(
            #"{ "params" : {"value":2,"text":"}{\"]"}, "meta":{"deadline_ms":5000,"x":[1,{"y":"}"}]}, "method":"test.echo", "id":22, "jsonrpc":"2.0", "ext":true }"#)
        #expect(shuffled?["id"] as? Int == 22 && value(shuffled) == 2)
        #expect((shuffled?["result"] as? [String: Any])?["text"] as? String == #"}{"]"#)
        // String, negative and null ids; params null reads as absent (required params missing: -32602).
        #expect(try await send(#"{"jsonrpc":"2.0","id":"a\"b","method":"wire.ping"}"#)?["id"] as? String == #"a"b"#)
        #expect(try await send(#"{"jsonrpc":"2.0","id":-7,"method":"wire.ping"}"#)?["id"] as? Int == -7)
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":23,"method":"test.echo","params":null}"#)) == -32602)
        // Broken JSON inside params or after the object is a parse error; a fractional id is not a request.
        let broken = try await send(#"{"jsonrpc":"2.0","id":24,"method":"test.echo","params":{"value":tru}}"#)
        #expect(errorCode(broken) == -32700 && broken?["id"] as? Int == 24)
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":25,"method":"test.echo","params":{"value":3}} x"#)) == -32700)
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":1.5,"method":"wire.ping"}"#)) == -32600)
        #expect(errorCode(try await send(#"{"jsonrpc":2,"id":26,"method":"wire.ping"}"#)) == -32600)
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":nope,"method":"wire.ping"}"#)) == -32700)
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":28,"method":"test.echo","params":nil}"#)) == -32700)
        // A bad meta deadline type is not a request either.
        #expect(errorCode(try await send(#"{"jsonrpc":"2.0","id":27,"method":"wire.ping","meta":{"deadline_ms":"soon"}}"#)) == -32600)
        await client.close()
        try await server.stop()
    }

    @Test("a notification gets no answer but runs")
    func notifications() async throws {
        let probe = Probe()
        let server = try await RunningServer.start(probe: probe)
        let client = try await rawClient(port: server.port)
        try await client.send("{\"jsonrpc\":\"2.0\",\"method\":\"test.notify\",\"params\":{\"value\":5}}\n")
        try await client.send("{\"jsonrpc\":\"2.0\",\"method\":\"no.such.method\"}\n")
        try await client.send("{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"wire.ping\"}\n")
        #expect(try await client.readJSON()?["id"] as? Int == 11, "the first answer is the ping's")
        #expect(probe.notifications.withLockedValue { $0 } == [5])
        await client.close()
        try await server.stop()
    }

    @Test("a client without a certificate is refused at the handshake")
    func noClientCertificate() async throws {
        let server = try await RunningServer.start()
        let anonymous = try await RawLineClient.connect(
            port: server.port, tls: try WireTLS.anonymousClientContext(trustRoots: TestPKI.shared.caPath),
            serverName: "catalog")
        try? await anonymous.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wire.ping\"}\n")
        await #expect(throws: (any Error).self) {
            if try await anonymous.readLine() == nil { throw RawLineClientError.timeout }
        }
        try await expectServing(server)
        try await server.stop()
    }

    @Test("a client whose certificate another CA signed is refused at the handshake")
    func foreignClientCertificate() async throws {
        let server = try await RunningServer.start()
        let foreign = try await RawLineClient.connect(
            port: server.port, tls: try TestPKI.foreign.clientContext("session", trusting: TestPKI.shared),
            serverName: "catalog")
        try? await foreign.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wire.ping\"}\n")
        await #expect(throws: (any Error).self) {
            if try await foreign.readLine() == nil { throw RawLineClientError.timeout }
        }
        // And WireClient sees it as the peer being unavailable.
        var configuration = WireClientConfiguration(
            peerName: "catalog", endpoints: [WireEndpoint(host: "127.0.0.1", port: server.port)],
            tls: try TestPKI.foreign.clientContext("session", trusting: TestPKI.shared))
        configuration.defaultDeadline = .seconds(5)
        let client = WireClient(configuration: configuration, logger: testLogger)
        await #expect(throws: WireError.self) {
            let _: Echo = try await client.call("test.echo", Echo(value: 1))
        }
        await client.shutdown()
        try await expectServing(server)
        try await server.stop()
    }

    @Test("a caller not allowed on a method gets -32001")
    func forbiddenCaller() async throws {
        let server = try await RunningServer.start()
        let session = try makeClient(ports: [server.port], as: "session")
        let error = await #expect(throws: WireError.self) {
            let _: Echo = try await session.call("test.reportOnly", Echo(value: 1))
        }
        #expect(error?.code == -32001)
        #expect(error?.kind == "forbidden")
        let report = try makeClient(ports: [server.port], as: "report")
        let echoed: Echo = try await report.call("test.reportOnly", Echo(value: 3))
        #expect(echoed.value == 3)
        await session.shutdown()
        await report.shutdown()
        try await server.stop()
    }

    @Test("the server answers -32005 when a call outlives meta.deadline_ms")
    func serverDeadline() async throws {
        let server = try await RunningServer.start()
        let client = try await rawClient(port: server.port)
        try await client.send(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test.sleep\",\"params\":{\"ms\":30000},\"meta\":{\"deadline_ms\":100}}\n")
        let answer = try await client.readJSON()
        #expect(errorCode(answer) == -32005)
        #expect(answer?["id"] as? Int == 1)
        await client.close()
        try await server.stop()
    }

    func expectServing(_ server: RunningServer) async throws {
        let client = try makeClient(ports: [server.port])
        let echoed: Echo = try await client.call("test.echo", Echo(value: 99, text: "still here"))
        #expect(echoed == Echo(value: 99, text: "still here"))
        await client.shutdown()
    }
}
