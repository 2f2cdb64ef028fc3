import Contracts
import Foundation
import Logging
import TestSupport
import Testing
import Wire

/// The four real executables, started as processes on loopback with real TLS between them.
@Suite("Service processes", .serialized)
struct ServiceProcessTests {
    @Test("a service whose HTTP port is taken exits at once, non-zero, saying why (its background loops do not hold it)")
    func portTakenExits() async throws {
        let stack = try await LocalStack()
        // Something else listens on session-service's HTTP port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        // As the services do: a port that an earlier test's connection left in TIME_WAIT can still be bound.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(stack.httpPorts["session"]!).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 4) == 0, "errno \(errno)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try stack.executable("session"))
        process.environment = stack.environment(for: "session")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("port-taken-\(UUID().uuidString).out")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Bounded: a process that hangs is killed and the test fails instead of the run.
        for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        let exited = !process.isRunning
        if !exited {
            process.terminate()
            process.waitUntilExit()
        }
        try? handle.close()
        let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(exited, "session-service was still running 30 s after failing to bind: \(log.suffix(2000))")
        #expect(process.terminationStatus != 0)
        #expect(log.contains("Address already in use"), "\(log.suffix(2000))")
    }

    @Test("the four services start, migrate, ping their peers, turn ready, name themselves, and stop on SIGTERM")
    func fourServicesRun() async throws {
        try await LocalStack.with { stack in
            try stack.startAll()
            for name in ["catalog", "session", "classroom", "report"] {
                try await stack.waitReady(name)
            }
            // An operator tool (the admin identity) pings each service over mutual TLS.
            let pki = "\(stack.home)/pki"
            let files = WireTLSFiles(certificate: "\(pki)/admin.pem", privateKey: "\(pki)/admin.key", trustRoots: "\(pki)/ca.pem")
            for name in ["catalog", "session", "classroom", "report"] {
                let client = WireClient(
                    configuration: WireClientConfiguration(
                        peerName: name, endpoints: [WireEndpoint(host: "127.0.0.1", port: stack.wirePorts[name]!)],
                        tls: try WireTLS.clientContext(files)),
                    logger: quietLogger)
                let ping: WirePing.Result = try await client.call(WirePing.name, Empty(), idempotent: true)
                #expect(ping.service == name)
                await client.shutdown()
            }

            for name in ["catalog", "session", "classroom", "report"] {
                let health = try await stack.get(name, "/healthz")
                #expect(health.status == 200)
                #expect(health.header(ServiceHeader.name) == name)
                #expect(health.header("X-Request-Id")?.isEmpty == false)

                let ready = try await stack.get(name, "/readyz")
                let checks = ready.json?["checks"] as? [String: String]
                #expect(checks?["database"] == "ok")
                for peer in LocalStack.peers[name]! where !(LocalStack.optionalPeers[name] ?? []).contains(peer) {
                    #expect(checks?[peer] == "ok", "\(name) sees \(peer)")
                }

                let missing = try await stack.get(name, "/no/such/route")
                #expect(missing.status == 404)
                #expect(missing.header(ServiceHeader.name) == name)
                #expect(missing.json?["error"] as? String != nil, "errors are JSON: \(missing.text)")

                let metrics = try await stack.get(name, "/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.text.contains("labportal_wire_server_requests_total"), "wire call counts")
                #expect(metrics.text.contains("method=\"wire.ping\""))
                #expect(metrics.text.contains("labportal_wire_server_request_duration_seconds"), "wire latencies")
                #expect(metrics.text.contains("hb_requests"), "HTTP request counts per route and status")
            }

            for name in ["report", "classroom", "session", "catalog"] {
                let status = await stack.stop(name)
                #expect(status == 0, "\(name)-service exits cleanly on SIGTERM:\n\(stack.logTail(name))")
            }
            let log = stack.logTail("catalog", lines: 200)
            #expect(log.contains("\"msg\":\"stopped\""), "structured logs say what happened")
        }
    }

    @Test("/readyz stays 503, naming the peer, until the peer answers")
    func readinessFollowsPeers() async throws {
        try await LocalStack.with { stack in
            try stack.start("catalog")
            let healthy = await eventually { (try? await stack.get("catalog", "/healthz").status) == 200 }
            #expect(healthy, "catalog-service serves HTTP:\n\(stack.logTail("catalog"))")
            let notReady = try await stack.get("catalog", "/readyz")
            #expect(notReady.status == 503)
            #expect((notReady.json?["error"] as? String)?.contains("session") == true, "\(notReady.text)")
            try stack.start("session")
            try await stack.waitReady("session")
            try await stack.waitReady("catalog")
        }
    }

    @Test("a bad configuration value stops the process at once with a message naming the key")
    func configurationFailsFast() async throws {
        let stack = try await LocalStack()
        let result = runProcess(
            try stack.executable("catalog"), [],
            environment: stack.environment(for: "catalog", overrides: ["LABPORTAL_HTTP_PORT": "eighty"]))
        #expect(result.status == 78)
        #expect(result.output.contains("http.port"))
        #expect(result.output.contains("LABPORTAL_HTTP_PORT"))
        let postgres = runProcess(
            try stack.executable("catalog"), ["--db-backend", "postgres"],
            environment: stack.environment(for: "catalog"))
        #expect(postgres.status == 78)
        let noCertificate = runProcess(
            try stack.executable("report"), [],
            environment: stack.environment(for: "report", overrides: ["LABPORTAL_WIRE_TLS_CERT": "/nonexistent/report.pem"]))
        #expect(noCertificate.status == 1)
        #expect(noCertificate.output.contains("/nonexistent/report.pem"), "\(noCertificate.output)")
        #expect(!noCertificate.output.contains("Program crashed"))
        #expect(postgres.output.contains("db.url"), "\(postgres.output)")
    }

    @Test("on PostgreSQL, the services migrate their own schemas and turn ready")
    func postgresBackend() async throws {
        guard let url = TestBackends.postgresURL else {
            #expect(!TestBackends.postgresRequired, "POSTGRES_URL is required in this run")
            return
        }
        let suffix = UUID().uuidString.prefix(6).lowercased()
        try await LocalStack.with(environment: ["LABPORTAL_DB_BACKEND": "postgres", "LABPORTAL_DB_URL": url]) { stack in
            try stack.start("catalog", environment: ["LABPORTAL_DB_SCHEMA": "catalog_\(suffix)"])
            try stack.start("session", environment: ["LABPORTAL_DB_SCHEMA": "session_\(suffix)"])
            try await stack.waitReady("catalog")
            try await stack.waitReady("session")
            // A second replica of catalog on the same schema: migrations are not applied twice.
            #expect(await stack.stop("catalog") == 0)
            try stack.start("catalog", environment: ["LABPORTAL_DB_SCHEMA": "catalog_\(suffix)"])
            try await stack.waitReady("catalog")
            #expect(stack.logTail("catalog", lines: 400).contains("database schema is current"))
        }
    }
}
