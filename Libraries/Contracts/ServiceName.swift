import Foundation

/// The names that identify LabPortal's processes: on certificates (CN and DNS SAN), in the wire's
/// allowed-callers lists, in logs and in the `X-LabPortal-Service` response header.
public enum ServiceName: String, Codable, Sendable, CaseIterable {
    case catalog
    case session
    case classroom
    case report
    /// Operator tools. Never a running service, but a legitimate wire caller.
    case admin

    /// The four services that run as processes.
    public static let services: [ServiceName] = [.catalog, .session, .classroom, .report]

    /// The executable's name, also its log label and systemd unit.
    public var executableName: String { "\(rawValue)-service" }
}

/// The header every service adds to its REST answers, naming itself, so that routing can be tested.
public enum ServiceHeader {
    public static let name = "X-LabPortal-Service"
}
