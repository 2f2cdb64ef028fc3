import Foundation
import Logging
import ServerKit
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The default provisioner: a workspace directory per session and, when the workshop has a `command`, that command
/// on its own port, in its own process group, with `PORT`, `SESSION_NAME`, `WORKSPACE`, `SESSION_PASSWORD` and each request parameter
/// as `PARAM_<NAME>` set. The session is ready when its port accepts connections. Stopping sends SIGTERM to the
/// group, then SIGKILL after the grace period. Processes outlive a restart of session-service and are adopted
/// again by pid.
public final class LocalProvisioner: Provisioner {
    public struct Configuration: Sendable {
        public var workspaces: String
        /// The lab's URL; `{port}` and `{session}` are replaced.
        public var urlTemplate: String
        public var readyTimeout: Duration
        public var stopGrace: Duration

        public init(
            workspaces: String, urlTemplate: String = "http://localhost:{port}/", readyTimeout: Duration = .seconds(30),
            stopGrace: Duration = .seconds(5)
        ) {
            self.workspaces = workspaces
            self.urlTemplate = urlTemplate
            self.readyTimeout = readyTimeout
            self.stopGrace = stopGrace
        }
    }

    struct Handle: Codable, Equatable {
        var pid: Int32
        var port: Int
    }

    let configuration: Configuration
    let logger: Logger
    /// Ports handed out and not yet released, so that two sessions starting together never pick the same one.
    private let reservedPorts = Mutex(Set<Int>())
    /// Children this process spawned (and must reap).
    private let children = Mutex(Set<Int32>())

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func workspace(_ session: String) -> String { "\(configuration.workspaces)/\(session)" }

    public func create(_ request: ProvisionRequest) async throws -> ProvisionResult {
        let workspace = workspace(request.session)
        do {
            try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        } catch {
            throw ProvisionError("cannot create the workspace \(workspace): \(error.localizedDescription)")
        }
        guard let command = request.command, !command.isEmpty else {
            // Nothing to run: the workspace is the lab.
            return ProvisionResult(url: "", handle: nil)
        }
        guard request.runs else { return ProvisionResult(url: "", handle: nil) }
        return try await launch(command, request: request, workspace: workspace)
    }

    public func start(_ request: ProvisionRequest) async throws -> ProvisionResult {
        var request = request
        request.start = true
        return try await create(request)
    }

    public func stop(_ request: ProvisionRequest) async throws {
        if let handle = request.handle.flatMap(Self.decodeHandle) { await stop(handle) }
    }

    private func launch(_ command: [String], request: ProvisionRequest, workspace: String) async throws -> ProvisionResult {
        // A lab left over from an earlier attempt goes first.
        if let handle = request.handle.flatMap(Self.decodeHandle) { await stop(handle) }

        let port = try reservePort()
        defer { releasePort(port) }
        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = String(port)
        environment["SESSION_NAME"] = request.session
        environment["WORKSPACE"] = workspace
        if let password = request.password { environment["SESSION_PASSWORD"] = password }
        for parameter in request.parameters where Self.isIdentifier(parameter.name) {
            environment["PARAM_\(parameter.name)"] = parameter.value
        }
        let log = "\(workspace)/.session.log"
        let pid = try spawn(command, environment: environment, directory: workspace, log: log)
        children.withLock { _ = $0.insert(pid) }
        logger.info("session process started", metadata: ["session": "\(request.session)", "pid": "\(pid)", "port": "\(port)"])

        let handle = Handle(pid: pid, port: port)
        let deadline = ContinuousClock.now + configuration.readyTimeout
        while ContinuousClock.now < deadline {
            if !alive(pid) {
                throw ProvisionError("the session command exited before its port opened: \(Self.tail(log))")
            }
            if Self.accepts(port: port) {
                let url = configuration.urlTemplate.replacingOccurrences(of: "{port}", with: String(port))
                    .replacingOccurrences(of: "{session}", with: request.session)
                return ProvisionResult(url: url, handle: Self.encodeHandle(handle))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await stop(handle)
        throw ProvisionError(
            "the session command did not open port \(port) within \(configuration.readyTimeout): \(Self.tail(log))")
    }

    public func delete(_ request: ProvisionRequest) async throws {
        if let handle = request.handle.flatMap(Self.decodeHandle) {
            await stop(handle)
        }
        let workspace = workspace(request.session)
        if FileManager.default.fileExists(atPath: workspace) {
            do {
                try FileManager.default.removeItem(atPath: workspace)
            } catch {
                throw ProvisionError("cannot remove the workspace \(workspace): \(error.localizedDescription)")
            }
        }
    }

    public func isAlive(_ request: ProvisionRequest) async -> Bool {
        guard FileManager.default.fileExists(atPath: workspace(request.session)) else { return false }
        guard request.command?.isEmpty == false else { return true }
        guard let handle = request.handle.flatMap(Self.decodeHandle) else { return false }
        return alive(handle.pid) && Self.accepts(port: handle.port)
    }

    /// SIGTERM to the process group, then SIGKILL after the grace period.
    func stop(_ handle: Handle) async {
        guard handle.pid > 1 else { return }
        if !alive(handle.pid) { return }
        kill(-handle.pid, SIGTERM)
        let deadline = ContinuousClock.now + configuration.stopGrace
        while ContinuousClock.now < deadline {
            if !alive(handle.pid) {
                logger.info("session process stopped", metadata: ["pid": "\(handle.pid)"])
                return
            }
            try? await Task.sleep(for: .milliseconds(25))
        }
        kill(-handle.pid, SIGKILL)
        kill(handle.pid, SIGKILL)
        for _ in 0..<40 where alive(handle.pid) { try? await Task.sleep(for: .milliseconds(25)) }
        logger.warning("session process killed after the grace period", metadata: ["pid": "\(handle.pid)"])
    }

    /// Whether `pid` still runs; reaps it if it is our child and has exited.
    func alive(_ pid: Int32) -> Bool {
        if children.withLock({ $0.contains(pid) }) {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result == -1 && errno == ECHILD) {
                children.withLock { _ = $0.remove(pid) }
                return false
            }
            return true
        }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    private func spawn(_ command: [String], environment: [String: String], directory: String, log: String) throws -> Int32 {
        // Its own process group, so that stopping reaches everything it started; default signal handling.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Start in the workspace (posix_spawn_file_actions_addchdir_np is not in every libc's headers).
        let command = ["/bin/sh", "-c", "cd \"$WORKSPACE\" && exec \"$@\"", "labportal-session"] + command
        let (pid, result) = ChildProcess.posixSpawn("/bin/sh", command, environment: environment, actions: &actions)
        guard result == 0 else {
            throw ProvisionError("cannot start \(command.dropFirst(4).first ?? ""): \(String(cString: strerror(result)))")
        }
        return pid
    }

    private func reservePort() throws -> Int {
        for _ in 0..<20 {
            let port = try Self.ephemeralPort()
            let fresh = reservedPorts.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw ProvisionError("no free port for the session")
    }

    private func releasePort(_ port: Int) {
        reservedPorts.withLock { _ = $0.remove(port) }
    }

    /// Sets close-on-exec on every descriptor above stderr, so that a lab never inherits the service's sockets (it
    /// would keep the service's ports and connections open after the service exits, and outlives it on purpose).
    static func markDescriptorsCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let fd = Int32(entry), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// A port the kernel says is free right now on 127.0.0.1.
    static func ephemeralPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProvisionError("cannot open a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ProvisionError("cannot pick a port: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool { Loopback.accepts(port: port) }

    static func isIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isalnum(Int32($0)) != 0 }
            && !(name.first!.isNumber)
    }

    static func tail(_ path: String, bytes: Int = 600) -> String {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return "(no output)" }
        let text = String(decoding: data.suffix(bytes), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(no output)" : text
    }

    static func encodeHandle(_ handle: Handle) -> String {
        String(decoding: (try? JSONEncoder().encode(handle)) ?? Data(), as: UTF8.self)
    }

    static func decodeHandle(_ text: String) -> Handle? {
        try? JSONDecoder().decode(Handle.self, from: Data(text.utf8))
    }
}
