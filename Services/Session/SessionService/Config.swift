import Configuration
import Foundation
import ServerKit

/// session-service's own configuration keys (documented in `deploy/env/README.md`), parsed once at start. Every
/// default is here; the shared keys (ports, database, TLS, peers, logs) are `ServiceConfiguration`'s.
public struct SessionConfig: Sendable {
    /// The defaults of the keys below, as the reader's lowest layer.
    static let defaults: [String: String] = [
        "session.provisioner": "local", "session.ready_timeout_s": "30", "session.interval_ms": "1000",
        "session.lab_url": "http://localhost:{port}/", "public.url": "http://localhost:8080",
    ]

    public enum ProvisionerKind: String, CaseIterable, Sendable {
        case local
        case exec
    }

    public enum Provisioning: Sendable, Equatable {
        /// `session.workspaces` (default `<data>/sessions`) and `session.lab_url`.
        case local(workspaces: String, labURL: String)
        /// `session.exec.command`: an executable file.
        case exec(command: String)
    }

    public var provisioning: Provisioning
    /// `session.ready_timeout_s`: how long a lab may take to come up (1 to 3600 s).
    public var readyTimeout: Duration
    /// `session.interval_ms`: the lab runtime's pass interval (50 ms to 60 s).
    public var interval: Duration
    /// `public.url`: the origin clients reach nginx at.
    public var publicURL: String
    /// `credentials.file` (default `<home>/credentials.env`): the bootstrap credentials of the first start.
    public var credentialsFile: String

    public init(reader: ConfigReader, service: ServiceConfiguration) throws {
        readyTimeout = .seconds(try reader.requireInt("session.ready_timeout_s", in: 1...3600))
        interval = .milliseconds(try reader.requireInt("session.interval_ms", in: 50...60_000))
        switch try reader.requireEnum("session.provisioner", as: ProvisionerKind.self, allowed: ProvisionerKind.allCases) {
        case .local:
            provisioning = .local(
                workspaces: reader.optionalString("session.workspaces") ?? "\(service.dataDirectory)/sessions",
                labURL: try reader.requireString("session.lab_url"))
        case .exec:
            guard let executable = reader.optionalString("session.exec.command"), !executable.isEmpty else {
                throw ConfigurationError(key: "session.exec.command", problem: "is required when session.provisioner is exec")
            }
            guard FileManager.default.isExecutableFile(atPath: executable) else {
                throw ConfigurationError(key: "session.exec.command", problem: "\(executable) is not an executable file")
            }
            provisioning = .exec(command: executable)
        }
        publicURL = try reader.requireString("public.url")
        credentialsFile = reader.optionalString("credentials.file") ?? "\(service.home)/credentials.env"
    }
}
