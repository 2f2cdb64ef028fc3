import Configuration
import Foundation
import ServerKit

/// catalog-service's own configuration keys (documented in `deploy/env/README.md`), parsed once at start. Every
/// default is here; the shared keys (ports, database, TLS, peers, logs) are `ServiceConfiguration`'s.
public struct CatalogConfig: Sendable {
    static let defaults: [String: String] = [:]

    /// `portal.file` (default `<home>/portal.yaml`): the portal's YAML definition, read at start and on SIGHUP.
    public var portalFile: String
    /// How often the janitor deletes STOPPING environments whose sessions have all ended.
    public var janitorInterval: Duration = .seconds(5)

    public init(reader: ConfigReader, service: ServiceConfiguration) throws {
        portalFile = reader.optionalString("portal.file") ?? "\(service.home)/portal.yaml"
    }
}
