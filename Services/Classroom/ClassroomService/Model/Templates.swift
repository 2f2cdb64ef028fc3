import Contracts
import Foundation

/// A Skytap template: a workshop of the catalog. Its id is the workshop's name.
public struct Template: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var region: String
    public var vms: [WorkshopVM]
    /// GB.
    public var storage: Int

    public init(_ workshop: WorkshopDefinition) {
        id = workshop.name
        name = workshop.title.isEmpty ? workshop.name : workshop.title
        description = workshop.description
        region = workshop.region
        vms = workshop.vms
        storage = 0
    }

    /// The workshops offered by the portal's environments that are not being removed, by name.
    public static func all(in snapshot: CatalogPortal.Snapshot) -> [String: Template] {
        var templates: [String: Template] = [:]
        for environment in snapshot.environments where environment.state == .running {
            templates[environment.workshop.name] = Template(environment.workshop)
        }
        return templates
    }
}
