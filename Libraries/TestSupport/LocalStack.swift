import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Real service processes for integration tests: the debug executables that `swift build` made, each on loopback
/// ports picked for the test, with a fresh LABPORTAL_HOME, development PKI and databases.
public final class LocalStack: @unchecked Sendable {
    // @unchecked: mutated only by the test that owns it, from one task at a time.
    public static let peers: [String: [String]] = [
        "catalog": ["session"], "session": ["catalog", "classroom"], "classroom": ["session", "catalog"],
        "report": ["classroom", "session"],
    ]
    /// Peers a service calls but does not need to be ready (session-service queues audit activities for classroom).
    public static let optionalPeers: [String: Set<String>] = ["session": ["classroom"]]

    public let home: String
    public private(set) var httpPorts: [String: Int] = [:]
    public private(set) var wirePorts: [String: Int] = [:]
    private var processes: [String: Process] = [:]
    private let extraEnvironment: [String: String]

    public static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["LABPORTAL_BIN_DIR"], !dir.isEmpty { return dir }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    }

    public init(environment: [String: String] = [:]) async throws {
        home = FileManager.default.temporaryDirectory
            .appendingPathComponent("labportal-stack-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let result = runProcess(repositoryRoot.appendingPathComponent("deploy/pki/dev-pki").path, ["\(home)/pki"])
        guard result.status == 0 else { throw StackError.setup("dev-pki failed: \(result.output)") }
        extraEnvironment = environment
        for name in ["catalog", "session", "classroom", "report"] {
            httpPorts[name] = try await freeLoopbackPort()
            wirePorts[name] = try await freeLoopbackPort()
        }
    }

    /// Runs `body` with a fresh stack and stops every process it started, whether `body` succeeds or throws.
    public static func with(
        environment: [String: String] = [:], _ body: (LocalStack) async throws -> Void
    ) async throws {
        let stack = try await LocalStack(environment: environment)
        do {
            try await body(stack)
        } catch {
            await stack.stopAll()
            throw error
        }
        await stack.stopAll()
    }

    public func executable(_ name: String) throws -> String {
        let path = "\(Self.binDirectory)/\(name)-service"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw StackError.setup("\(path) is missing: run `swift build` (the test command does) before the tests")
        }
        return path
    }

    public func environment(for name: String, overrides: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LABPORTAL_") }
        environment["LABPORTAL_HOME"] = home
        environment["LABPORTAL_HTTP_PORT"] = String(httpPorts[name]!)
        environment["LABPORTAL_WIRE_PORT"] = String(wirePorts[name]!)
        environment["LABPORTAL_LOG_FORMAT"] = "json"
        environment["LABPORTAL_LOG_LEVEL"] = "info"
        if name == "catalog" {
            environment["LABPORTAL_PORTAL_FILE"] = repositoryRoot.appendingPathComponent("deploy/local/portal.yaml").path
        }
        for peer in Self.peers[name] ?? [] {
            environment["LABPORTAL_PEERS_\(peer.uppercased())"] = "127.0.0.1:\(wirePorts[peer]!)"
        }
        for (key, value) in extraEnvironment { environment[key] = value }
        for (key, value) in overrides { environment[key] = value }
        return environment
    }

    public func logPath(_ name: String) -> String { "\(home)/\(name)-service.log" }

    /// Starts one service; returns at once.
    public func start(_ name: String, environment overrides: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable(name))
        process.environment = environment(for: name, overrides: overrides)
        _ = FileManager.default.createFile(atPath: logPath(name), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(name)))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        processes[name] = process
    }

    public func startAll() throws {
        for name in ["catalog", "session", "classroom", "report"] { try start(name) }
    }

    /// Waits until `/readyz` answers 200.
    public func waitReady(_ name: String, seconds: Int = 60) async throws {
        let ready = await eventually(attempts: seconds * 10, interval: .milliseconds(100)) {
            (try? await self.get(name, "/readyz").status) == 200
        }
        if !ready {
            let status = try? await get(name, "/readyz")
            // Its peers' logs too: a service is often not ready because a peer is not.
            let others = processes.keys.filter { $0 != name }.sorted().map { "--- \($0)-service:\n\(logTail($0, lines: 15))" }
            throw StackError.notReady(
                "\(name)-service not ready: \(status.map { "\($0.status) \($0.text)" } ?? "no answer")\n\(logTail(name))\n"
                    + others.joined(separator: "\n"))
        }
    }

    public func logTail(_ name: String, lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    @discardableResult
    public func stop(_ name: String, seconds: Int = 20) async -> Int32? {
        guard let process = processes.removeValue(forKey: name) else { return nil }
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let exited = await eventually(attempts: seconds * 10, interval: .milliseconds(100)) { !process.isRunning }
        if !exited {
            // Never `waitUntilExit()` here: it blocks a thread of the cooperative pool.
            kill(process.processIdentifier, SIGKILL)
            _ = await eventually(attempts: 50, interval: .milliseconds(100)) { !process.isRunning }
            return nil
        }
        return process.terminationStatus
    }

    public func stopAll() async {
        for name in Array(processes.keys) { await stop(name) }
        killSessionProcesses()
    }

    /// Session labs outlive session-service on purpose (a restart adopts them); a test stack must not leave them
    /// behind. They are found by the `WORKSPACE` under this stack's home in their environment.
    public func killSessionProcesses() {
        let marker = Data("WORKSPACE=\(home)/".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(),
                let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
                environment.range(of: marker) != nil
            else { continue }
            kill(pid, SIGKILL)
        }
    }

    public func isRunning(_ name: String) -> Bool { processes[name]?.isRunning ?? false }

    /// Sends a signal to a running service (SIGHUP to reload, for example).
    public func signal(_ name: String, _ signal: Int32) {
        guard let process = processes[name], process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    public func get(_ name: String, _ path: String) async throws -> HTTPResult {
        try await httpGet("http://127.0.0.1:\(httpPorts[name]!)\(path)")
    }

    deinit {
        for process in processes.values where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

public enum StackError: Error, CustomStringConvertible {
    case setup(String)
    case notReady(String)

    public var description: String {
        switch self {
        case .setup(let message), .notReady(let message): message
        }
    }
}

public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }

    public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
}

public func httpGet(_ url: String, timeout: TimeInterval = 10) async throws -> HTTPResult {
    try await httpRequest("GET", url, timeout: timeout)
}

/// One HTTP/1.1 request over a fresh connection. It never follows redirects and keeps no cookies: tests look at
/// the 302 and carry cookies themselves. (URLSession on Linux can hang when a delegate refuses a redirect.)
public func httpRequest(
    _ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, timeout: TimeInterval = 10
) async throws -> HTTPResult {
    guard let parsed = URLComponents(string: url), let host = parsed.host else { throw StackError.setup("bad URL \(url)") }
    let port = parsed.port ?? 80
    var target = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
    if let query = parsed.percentEncodedQuery { target += "?\(query)" }
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let promise = loop.makePromise(of: HTTPResult.self)
    let channel: any Channel
    do {
        channel = try await connect(loop: loop, host: host, port: port, timeout: timeout, promise: promise)
    } catch {
        promise.fail(error)
        throw error
    }
    var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target)
    head.headers.add(name: "Host", value: "\(host):\(port)")
    head.headers.add(name: "Connection", value: "close")
    for (name, value) in headers { head.headers.add(name: name, value: value) }
    if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
        channel.pipeline.fireErrorCaught(StackError.setup("\(method) \(url): no answer within \(timeout) s"))
    }
    defer { timer.cancel() }
    let result = try await promise.futureResult.get()
    try? await channel.close()
    return result
}

private func connect(
    loop: any EventLoop, host: String, port: Int, timeout: TimeInterval, promise: EventLoopPromise<HTTPResult>
) async throws -> any Channel {
    try await ClientBootstrap(group: loop)
        .connectTimeout(.seconds(Int64(timeout)))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
            }
        }
        .connect(host: host, port: port).get()
}

private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<HTTPResult>
    var head: HTTPResponseHead?
    var body = Data()
    var done = false

    init(promise: EventLoopPromise<HTTPResult>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body(let buffer): body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            var fields: [String: String] = [:]
            for (name, value) in head.headers {
                fields[name] = fields[name].map { "\($0), \(value)" } ?? value
            }
            if !done { promise.succeed(HTTPResult(status: Int(head.status.code), headers: fields, body: body)) }
            done = true
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done { promise.fail(error) }
        done = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { promise.fail(StackError.setup("the connection closed before the answer was complete")) }
        done = true
    }
}

/// Real nginx from `deploy/nginx`, in front of a stack's services, on a port of its own.
extension LocalStack {
    /// The background loops' interval for end-to-end tests (short, so that labs come up at once).
    static let quickIntervals: [String: [String: String]] = [
        "session": ["LABPORTAL_SESSION_INTERVAL_MS": "200"],
        "classroom": ["LABPORTAL_CLASSROOM_INTERVAL_MS": "200"],
    ]

    /// Starts catalog-service on `portal` and then `services` (with quick background loops, plus `environment` for
    /// each), waits until all are ready, and runs `body` with real nginx in front. Without nginx the test does
    /// nothing, unless the run requires nginx (then it throws `NginxProxy.Missing`).
    public static func withProxy(
        portal: String, services: [String], environment: [String: [String: String]] = [:],
        _ body: (LocalStack, NginxProxy) async throws -> Void
    ) async throws {
        guard let nginx = NginxProxy.binary else {
            if NginxProxy.required { throw NginxProxy.Missing() }
            return
        }
        try await with { stack in
            let portalFile = "\(stack.home)/portal.yaml"
            try portal.write(toFile: portalFile, atomically: true, encoding: .utf8)
            try stack.start("catalog", environment: ["LABPORTAL_PORTAL_FILE": portalFile])
            for name in services {
                try stack.start(
                    name, environment: (quickIntervals[name] ?? [:]).merging(environment[name] ?? [:]) { _, given in given })
            }
            for name in ["catalog"] + services { try await stack.waitReady(name) }
            let proxy = try await NginxProxy(stack: stack, binary: nginx)
            defer { proxy.stop() }
            try await body(stack, proxy)
        }
    }
}

public final class NginxProxy: @unchecked Sendable {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "nginx is required in this run (LABPORTAL_REQUIRE_NGINX=1) but is missing" }
    }

    public let port: Int
    let process: Process

    /// The nginx binary (`LABPORTAL_NGINX`), or nil when it is missing (tests then skip, unless
    /// `LABPORTAL_REQUIRE_NGINX=1`).
    public static var binary: String? {
        let path = ProcessInfo.processInfo.environment["LABPORTAL_NGINX"] ?? "/usr/sbin/nginx"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    public static var required: Bool { ProcessInfo.processInfo.environment["LABPORTAL_REQUIRE_NGINX"] == "1" }

    /// Renders the configuration for the stack's ports and starts nginx in the foreground, as a child of the test.
    public init(stack: LocalStack, binary: String) async throws {
        let prefix = "\(stack.home)/nginx"
        port = try await freeLoopbackPort()
        var environment = ProcessInfo.processInfo.environment
        environment["LABPORTAL_PORT"] = "127.0.0.1:\(port)"
        for name in ["catalog", "session", "classroom", "report"] {
            environment["LABPORTAL_\(name.uppercased())_UPSTREAMS"] = "127.0.0.1:\(stack.httpPorts[name]!)"
        }
        let render = runProcess(
            repositoryRoot.appendingPathComponent("deploy/nginx/render").path,
            ["\(prefix)/nginx.conf", "--main", prefix], environment: environment)
        guard render.status == 0 else { throw StackError.setup("render failed: \(render.output)") }
        let checked = runProcess(binary, ["-t", "-p", prefix, "-c", "\(prefix)/nginx.conf"])
        guard checked.status == 0 else { throw StackError.setup("nginx rejects the rendered config: \(checked.output)") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-p", prefix, "-c", "\(prefix)/nginx.conf", "-g", "daemon off;"]
        try process.run()
        let up = await eventually { [port] in (try? await httpGet("http://127.0.0.1:\(port)/healthz").status) == 200 }
        guard up else {
            stop()
            throw StackError.setup("nginx does not answer on port \(port)")
        }
    }

    public var base: String { "http://127.0.0.1:\(port)" }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
    }
}

/// A robot's access token from `origin`'s `/oauth2/token/` (the password grant, the client by HTTP Basic), with the
/// credentials of a `credentials.env`.
public func robotToken(origin: String, credentials: [String: String]) async throws -> String {
    let client = "\(credentials["LABPORTAL_ROBOT_CLIENT_ID"] ?? ""):\(credentials["LABPORTAL_ROBOT_CLIENT_SECRET"] ?? "")"
    let form = "grant_type=password&username=\(credentials["LABPORTAL_ROBOT_USER"] ?? "")&password=\(credentials["LABPORTAL_ROBOT_PASSWORD"] ?? "")"
    let answer = try await httpRequest(
        "POST", "\(origin)/oauth2/token/",
        headers: [
            "Authorization": "Basic \(Data(client.utf8).base64EncodedString())",
            "Content-Type": "application/x-www-form-urlencoded",
        ],
        body: Data(form.utf8))
    guard let token = answer.json?["access_token"] as? String else {
        throw StackError.setup("no token from \(origin): \(answer.status) \(answer.text)")
    }
    return token
}
