import Configuration
import Contracts
import Foundation
import Logging
import Storage
import SystemPackage
import Wire

/// A configuration problem, found at start, with the key and what is wrong. The process exits with it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String {
        let env = "LABPORTAL_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
        return "configuration: \(key) (\(env)): \(problem)"
    }
}

/// Builds the reader every service uses. Precedence, highest first:
/// 1. command-line flags: `--http-port 8101` (`.` and `_` both become `-`);
/// 2. environment variables: `LABPORTAL_HTTP_PORT=8101`;
/// 3. a YAML file named by `--config FILE` or `LABPORTAL_CONFIG` (`http: {port: 8101}`);
/// 4. the defaults given here.
public enum ConfigurationSource {
    public static func reader(
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        defaults: [String: ConfigValue]
    ) async throws -> ConfigReader {
        var stripped: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("LABPORTAL_") {
            stripped[String(name.dropFirst("LABPORTAL_".count))] = value
        }
        let cli = CommandLineArgumentsProvider(arguments: arguments).mapKeys { key in
            // `wire.max_line_bytes` is spelled `--wire-max-line-bytes` on the command line.
            AbsoluteConfigKey(key.components.map(camelCased), context: key.context)
        }
        let env = EnvironmentVariablesProvider(environmentVariables: stripped)
        var providers: [any ConfigProvider] = [cli, env]

        let early = ConfigReader(providers: [cli, env])
        if let path = early.string(forKey: "config"), !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationError(key: "config", problem: "the file \(path) does not exist")
            }
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(path)))
            } catch {
                throw ConfigurationError(key: "config", problem: "cannot read \(path) as YAML: \(error)")
            }
        }
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in defaults { values[AbsoluteConfigKey(ConfigKey(key))] = value }
        providers.append(InMemoryProvider(name: "defaults", values: values))
        return ConfigReader(providers: providers)
    }

    static func camelCased(_ component: String) -> String {
        let parts = component.split(separator: "_")
        guard parts.count > 1 else { return component }
        return String(parts[0]) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}

/// Typed reads that fail with a message naming the key and the rule.
extension ConfigReader {
    public func requireString(_ key: String) throws -> String {
        guard let value = string(forKey: ConfigKey(key)) else {
            throw ConfigurationError(key: key, problem: "is required")
        }
        return value
    }

    public func optionalString(_ key: String) -> String? {
        string(forKey: ConfigKey(key)).flatMap { $0.isEmpty ? nil : $0 }
    }

    public func requireInt(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        let raw = try requireString(key)
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigurationError(key: key, problem: "must be an integer, got '\(raw)'")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: key, problem: "must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return value
    }

    public func requireBool(_ key: String) throws -> Bool {
        let raw = try requireString(key)
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(key: key, problem: "must be true or false, got '\(raw)'")
        }
    }

    public func requireEnum<T: RawRepresentable>(_ key: String, as type: T.Type, allowed: [T]) throws -> T
    where T.RawValue == String {
        let raw = try requireString(key)
        guard let value = T(rawValue: raw) else {
            throw ConfigurationError(
                key: key, problem: "must be one of \(allowed.map(\.rawValue).joined(separator: ", ")), got '\(raw)'")
        }
        return value
    }

    public func requireEndpoints(_ key: String) throws -> [WireEndpoint] {
        let raw = try requireString(key)
        let parts = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var endpoints: [WireEndpoint] = []
        for part in parts {
            guard let endpoint = WireEndpoint(part) else {
                throw ConfigurationError(key: key, problem: "'\(part)' is not host:port")
            }
            endpoints.append(endpoint)
        }
        guard !endpoints.isEmpty else { throw ConfigurationError(key: key, problem: "needs at least one host:port") }
        return endpoints
    }
}

public enum LogFormat: String, Sendable, CaseIterable {
    case json
    case text
}

/// The configuration every service shares. Service-specific keys are read beside it from the same reader.
public struct ServiceConfiguration: Sendable {
    public var name: ServiceName
    public var version: String
    public var home: String
    public var dataDirectory: String
    public var httpHost: String
    public var httpPort: Int
    public var wireHost: String
    public var wirePort: Int
    public var wireMaxLineBytes: Int
    public var wireTLS: WireTLSFiles
    public var database: DatabaseConfiguration
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// Every peer this service may call, with its endpoints.
    public var peers: [ServiceName: [WireEndpoint]]
    public var peerDeadline: Duration
    /// This replica's name: the `replica` label of its metrics and a field of its logs.
    public var replica: String
    /// `/readyz` says not ready while a request has been in flight longer than this.
    public var stuckRequestAfter: Duration
    /// How long SIGTERM waits for work in flight to finish before it is cancelled (5 s more at most, then the process
    /// ends whatever holds it).
    public var drainTime: Duration
    /// Cross-origin access to the REST routes (`http.cors.*`).
    public var cors: CORSSettings

    /// The default ports of DESIGN §7: HTTP 8101–8104, wire 9101–9104.
    public static func defaultPorts(_ name: ServiceName) -> (http: Int, wire: Int) {
        let offset = (ServiceName.services.firstIndex(of: name) ?? 0) + 1
        return (8100 + offset, 9100 + offset)
    }

    /// The defaults of every shared key, for the reader's lowest layer and for the documentation.
    public static func defaults(for name: ServiceName, peers: [ServiceName]) -> [String: ConfigValue] {
        let ports = defaultPorts(name)
        var defaults: [String: ConfigValue] = [
            "home": "./.labportal",
            "http.host": "127.0.0.1",
            "http.port": .init(.string(String(ports.http)), isSecret: false),
            "wire.host": "127.0.0.1",
            "wire.port": .init(.string(String(ports.wire)), isSecret: false),
            "wire.max_line_bytes": "1048576",
            "db.backend": "sqlite",
            "db.max_connections": "10",
            "db.timeout_s": "10",
            "db.sqlite_synchronous": "FULL",
            "log.level": "info",
            "log.format": "json",
            "peers.deadline_ms": "5000",
            "http.stuck_request_s": "30",
            "shutdown.drain_s": "25",
            "http.cors.allow_origins": "*",
            "http.cors.allow_methods": "GET, POST, PUT, DELETE, HEAD, OPTIONS",
            "http.cors.allow_headers": "accept, authorization, content-type, origin, x-request-id",
            "http.cors.max_age_s": "3600",
            "http.cors.allow_credentials": "false",
        ]
        for peer in peers {
            defaults["peers.\(peer.rawValue)"] = .init(.string("127.0.0.1:\(defaultPorts(peer).wire)"), isSecret: false)
        }
        return defaults
    }

    public init(name: ServiceName, peers: [ServiceName], reader: ConfigReader, version: String = LabPortalVersion.current) throws {
        self.name = name
        self.version = version
        home = try reader.requireString("home")
        dataDirectory = reader.optionalString("data.dir") ?? "\(home)/data"
        httpHost = try reader.requireString("http.host")
        httpPort = try reader.requireInt("http.port", in: 0...65535)
        wireHost = try reader.requireString("wire.host")
        wirePort = try reader.requireInt("wire.port", in: 0...65535)
        wireMaxLineBytes = try reader.requireInt("wire.max_line_bytes", in: 1024...(256 << 20))
        let pki = "\(home)/pki"
        wireTLS = WireTLSFiles(
            certificate: reader.optionalString("wire.tls.cert") ?? "\(pki)/\(name.rawValue).pem",
            privateKey: reader.optionalString("wire.tls.key") ?? "\(pki)/\(name.rawValue).key",
            trustRoots: reader.optionalString("wire.tls.ca") ?? "\(pki)/ca.pem")
        let backend = try reader.requireEnum("db.backend", as: DatabaseBackend.self, allowed: DatabaseBackend.allCases)
        let url = reader.optionalString("db.url")
        if backend == .postgres && url == nil {
            throw ConfigurationError(key: "db.url", problem: "is required when db.backend is postgres")
        }
        database = DatabaseConfiguration(
            backend: backend,
            sqlitePath: reader.optionalString("db.path") ?? "\(dataDirectory)/\(name.rawValue).sqlite",
            postgresURL: url,
            schema: reader.optionalString("db.schema") ?? name.rawValue,
            maxConnections: try reader.requireInt("db.max_connections", in: 1...1000))
        database.timeout = .seconds(try reader.requireInt("db.timeout_s", in: 1...3600))
        database.sqliteSynchronous = try reader.requireEnum(
            "db.sqlite_synchronous", as: SQLiteSynchronous.self, allowed: SQLiteSynchronous.allCases)
        let level = try reader.requireString("log.level")
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw ConfigurationError(
                key: "log.level", problem: "must be one of trace, debug, info, notice, warning, error, critical")
        }
        self.logLevel = logLevel
        logFormat = try reader.requireEnum("log.format", as: LogFormat.self, allowed: LogFormat.allCases)
        var peerEndpoints: [ServiceName: [WireEndpoint]] = [:]
        for peer in peers {
            peerEndpoints[peer] = try reader.requireEndpoints("peers.\(peer.rawValue)")
        }
        self.peers = peerEndpoints
        peerDeadline = .milliseconds(try reader.requireInt("peers.deadline_ms", in: 1...600_000))
        replica = reader.optionalString("replica") ?? ProcessInfo.processInfo.hostName
        stuckRequestAfter = .seconds(try reader.requireInt("http.stuck_request_s", in: 1...3600))
        drainTime = .seconds(try reader.requireInt("shutdown.drain_s", in: 1...3600))
        cors = try CORSSettings(reader: reader)
    }
}

public enum LabPortalVersion {
    public static let current = "0.1.0"
}
