@testable import CatalogService
import Contracts
import Foundation
import Testing

@Suite("Portal reload rules, with no database")
struct PortalReloadTests {
    static func definition(_ workshops: [String]) throws -> PortalDefinition {
        var yaml = "portal:\n  name: lab\nworkshops:\n"
        for name in workshops { yaml += "  - name: \(name)\n    title: \(name)\n" }
        yaml += "environments:\n"
        for name in workshops { yaml += "  - workshop: \(name)\n    capacity: 3\n    reserved: 1\n" }
        return try PortalDefinition.parse(yaml)
    }

    @Test("kept workshops keep their environment and take their new position; new ones get the next names; gone ones stop")
    func plan() throws {
        let plan = PortalReload.plan(
            try Self.definition(["b", "c", "a"]), running: ["a": "lab-w01", "b": "lab-w02", "z": "lab-w03"],
            nextEnvironment: 4)
        #expect(plan.kept.map(\.name) == ["lab-w02", "lab-w01"])
        #expect(plan.kept.map(\.position) == [0, 2])
        #expect(plan.created.map(\.name) == ["lab-w04"])
        #expect(plan.created.map(\.position) == [1])
        #expect(plan.stopping == ["lab-w03"])
        #expect(plan.nextEnvironment == 5)
    }

    @Test("the same file again is all kept, nothing created or stopped; an empty file stops everything")
    func idempotentAndEmpty() throws {
        let same = PortalReload.plan(try Self.definition(["a"]), running: ["a": "lab-w01"], nextEnvironment: 2)
        #expect(same.created.isEmpty && same.stopping.isEmpty && same.nextEnvironment == 2)
        let empty = PortalReload.plan(try Self.definition([]), running: ["a": "lab-w01", "b": "lab-w07"], nextEnvironment: 8)
        #expect(empty.stopping == ["lab-w01", "lab-w07"] && empty.kept.isEmpty)
    }

    @Test("a STOPPING environment takes no sessions")
    func stoppingAndOrder() throws {
        let settings = try Self.definition(["a"]).environments[0]
        let stopped = PortalReload.effectiveSettings(settings, state: .stopping)
        #expect(stopped.capacity == 0 && stopped.reserved == 0 && stopped.initial == 0)
        #expect(PortalReload.effectiveSettings(settings, state: .running) == settings)
        // The order of the list is creation order, whatever the state (CatalogAPITests.creationOrder).
    }
}
