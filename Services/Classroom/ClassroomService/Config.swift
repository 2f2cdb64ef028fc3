import Configuration
import Foundation
import ServerKit

/// classroom-service's own configuration keys (documented in `deploy/env/README.md`), parsed once at start. Every
/// default is here; the shared keys (ports, database, TLS, peers, logs) are `ServiceConfiguration`'s.
public struct ClassroomConfig: Sendable {
    static let defaults: [String: String] = [
        "classroom.interval_ms": "2000", "classroom.sso_enabled": "false", "classroom.time_zone": "UTC",
        "public.url": "http://localhost:8080",
    ]

    /// `public.url`, `classroom.sso_enabled` and `classroom.time_zone` (an IANA name).
    public var settings: ClassroomDependencies.Settings
    /// `classroom.interval_ms`: the class scheduler's pass interval (50 ms to 60 s).
    public var interval: Duration

    public init(reader: ConfigReader, service: ServiceConfiguration) throws {
        let zone = try reader.requireString("classroom.time_zone")
        guard TimeZone(identifier: zone) != nil else {
            throw ConfigurationError(key: "classroom.time_zone", problem: "\(zone) is not an IANA time zone name")
        }
        settings = ClassroomDependencies.Settings(
            publicURL: try reader.requireString("public.url"),
            ssoEnabled: try reader.requireBool("classroom.sso_enabled"), defaultTimeZone: zone)
        interval = .milliseconds(try reader.requireInt("classroom.interval_ms", in: 50...60_000))
    }
}
