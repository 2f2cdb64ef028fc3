import Foundation

/// Every service as real replicas, started the way an operator does: `deploy/local/up` with `LABPORTAL_REPLICAS`,
/// on the PostgreSQL server that `up` manages, behind real nginx, with the debug executables of this build.
public final class ReplicaStack: Sendable {
    public let home: String
    public let base: Int
    public let port: Int
    public let replicas: Int
    /// More `LABPORTAL_*` settings, in `up`'s environment and so in every replica's.
    public let settings: [String: String]

    public static let services = ["catalog", "session", "classroom", "report"]

    public init(replicas: Int, settings: [String: String] = [:]) async throws {
        home = FileManager.default.temporaryDirectory
            .appendingPathComponent("labportal-replicas-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        base = try await freePortBase()
        port = try await freeLoopbackPort()
        self.replicas = replicas
        self.settings = settings
    }

    public var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LABPORTAL_") }
        environment["LABPORTAL_HOME"] = home
        environment["LABPORTAL_PORT"] = String(port)
        environment["LABPORTAL_PORT_BASE"] = String(base)
        environment["LABPORTAL_REPLICAS"] = String(replicas)
        environment["LABPORTAL_BIN_DIR"] = LocalStack.binDirectory
        environment["TMPDIR"] = home
        environment.merge(settings) { _, setting in setting }
        return environment
    }

    /// Runs `deploy/local/<script>` and answers its status and output (off the concurrency pool: it takes seconds).
    /// The output goes to a file, not a pipe: the daemons the script starts (nginx, PostgreSQL) keep what they
    /// inherit open, and a pipe would never reach its end.
    public func run(_ script: String) async -> (status: Int32, output: String) {
        let path = repositoryRoot.appendingPathComponent("deploy/local/\(script)").path
        let log = "\(home)/\(script)-\(UUID().uuidString.prefix(6)).out"
        let environment = self.environment
        let status = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let result = runProcess("/bin/bash", ["-c", "exec \"$0\" > \"$1\" 2>&1 < /dev/null", path, log], environment: environment)
                continuation.resume(returning: result.status)
            }
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    public var origin: String { "http://127.0.0.1:\(port)" }

    public func httpPort(_ service: String, replica: Int) -> Int {
        base + (Self.services.firstIndex(of: service)! + 1) + 10 * (replica - 1)
    }

    public func replicaName(_ service: String, _ replica: Int) -> String {
        replica == 1 ? "\(service)-service" : "\(service)-service-\(replica)"
    }

    public func pid(_ service: String, replica: Int) -> Int32? {
        let file = "\(home)/run/\(replicaName(service, replica)).pid"
        return (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    public func credentials() throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try String(contentsOfFile: "\(home)/credentials.env", encoding: .utf8).split(separator: "\n") {
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    public var databaseURL: String? {
        (try? String(contentsOfFile: "\(home)/postgres/url", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Restarts the managed PostgreSQL server the way an operator does (`pg_ctl restart -m fast`).
    public func restartPostgres() async -> (status: Int32, output: String) {
        let location = (try? String(contentsOfFile: "\(home)/postgres/location", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let binaries = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }.last.map { "/usr/lib/postgresql/\($0)/bin" } ?? ""
        var command = ["\(binaries)/pg_ctl", "-D", "\(location)/data", "-m", "fast", "-w", "-l", "\(location)/postgresql.log", "restart"]
        if getuid() == 0 { command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command }
        let fixed = command
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: runProcess(fixed[0], Array(fixed.dropFirst())))
            }
        }
    }

    /// Stops everything `up` started and removes what it wrote, the managed PostgreSQL's data included.
    public func tearDown() async {
        let location = (try? String(contentsOfFile: "\(home)/postgres/location", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        _ = await run("down")
        if let location, location.hasPrefix("/var/lib/labportal/") { try? FileManager.default.removeItem(atPath: location) }
        try? FileManager.default.removeItem(atPath: home)
    }
}
