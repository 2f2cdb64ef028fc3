import Contracts
import Foundation
import ServerKit
import Synchronization

/// A portal the stub catalog serves; tests change it between steps.
public final class StubCatalog: Sendable {
    public let snapshot: Mutex<CatalogPortal.Snapshot>

    public init(_ snapshot: CatalogPortal.Snapshot) { self.snapshot = Mutex(snapshot) }

    public var peer: CatalogPeer { CatalogPeer(portal: { self.snapshot.withLock { $0 } }) }

    public func update(_ change: (inout CatalogPortal.Snapshot) -> Void) {
        snapshot.withLock { snapshot in
            change(&snapshot)
            snapshot.generation += 1
        }
    }

    public static func workshop(
        _ name: String, command: [String]? = nil, vms: [WorkshopVM] = [], region: String = ""
    ) -> WorkshopDefinition {
        WorkshopDefinition(
            name: name, title: "Title of \(name)", description: "", vendor: "", authors: [], difficulty: "",
            duration: "30m", tags: [], logo: "", url: "", labels: [:], content: .init(image: "", files: name),
            command: command, vms: vms, region: region, parameters: [.init(name: "GREETING", value: "hello")])
    }

    public static func environment(
        _ name: String, workshop: String, capacity: Int = 5, reserved: Int = 0, initial: Int? = nil,
        expires: Int? = 1800, deadline: Int? = nil, overtime: Int = 0, command: [String]? = nil
    ) -> CatalogEnvironment {
        CatalogEnvironment(
            name: name, position: 0, state: .running, workshop: Self.workshop(workshop, command: command),
            settings: .init(
                workshop: workshop, capacity: capacity, reserved: reserved, initial: initial ?? reserved,
                expires: expires, deadline: deadline ?? expires, overtime: overtime, orphaned: 0, labels: [:]))
    }

    public static func portal(
        _ environments: [CatalogEnvironment], maximum: Int = 0, registered: Int = 0, anonymous: Int = 0
    ) -> CatalogPortal.Snapshot {
        CatalogPortal.Snapshot(
            portal: .init(
                name: "lab", uid: "uid-1", url: "http://portal.test", labels: [:],
                sessions: .init(maximum: maximum, registered: registered, anonymous: anonymous),
                indexURL: "http://portal.test/index/"),
            generation: 1, environments: environments)
    }
}
