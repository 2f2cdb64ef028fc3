@testable import CatalogService
import Foundation
import Storage
import TestSupport
import Testing

@Suite("Portal repository: environments keep their names, removed ones go STOPPING, generation counts changes")
struct PortalRepositoryTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func withRepository(_ backend: DatabaseBackend, _ body: @Sendable (PortalRepository) async throws -> Void) async throws {
        try await TestDatabase(backend, label: "catalog").with { database in
            try await Migrator(CatalogMigrations.all).migrate(database, logger: quietLogger)
            try await body(PortalRepository(database: database))
        }
    }

    @Test("first apply creates <portal>-wNN environments in file order", arguments: TestBackends.all)
    func firstApply(backend: DatabaseBackend) async throws {
        try await withRepository(backend) { repository in
            let empty = try await repository.snapshot()
            #expect(empty == nil)
            let definition = try PortalDefinition.parse(PortalDefinitionTests.sample)
            let result = try await repository.apply(definition, now: Self.t0)
            #expect(result == ApplyResult(changed: true, generation: 1, created: ["labportal-w01", "labportal-w02"], stopping: []))
            let snapshot = try #require(try await repository.snapshot())
            #expect(snapshot.generation == 1)
            #expect(snapshot.portal == definition.portal)
            #expect(snapshot.environments.map(\.name) == ["labportal-w01", "labportal-w02"])
            #expect(snapshot.environments.map(\.workshop.name) == ["hello-http", "shell-basics"])
            #expect(snapshot.environments[0].settings == definition.environments[0])
            #expect(snapshot.environments.allSatisfy { $0.state == .running })
        }
    }

    @Test("applying the same file again changes nothing, not even the generation", arguments: TestBackends.all)
    func idempotent(backend: DatabaseBackend) async throws {
        try await withRepository(backend) { repository in
            let definition = try PortalDefinition.parse(PortalDefinitionTests.sample)
            _ = try await repository.apply(definition, now: Self.t0)
            let again = try await repository.apply(definition, now: Self.t0.addingTimeInterval(60))
            #expect(again == ApplyResult(changed: false, generation: 1, created: [], stopping: []))
        }
    }

    @Test("a changed file: kept environments keep names, removed go STOPPING with capacity 0, new ones get new names",
          arguments: TestBackends.all)
    func changes(backend: DatabaseBackend) async throws {
        try await withRepository(backend) { repository in
            let original = try PortalDefinition.parse(PortalDefinitionTests.sample)
            _ = try await repository.apply(original, now: Self.t0)

            var changed = original
            changed.environments[0].capacity = 4
            changed.environments.removeLast()  // shell-basics is no longer offered
            let result = try await repository.apply(changed, now: Self.t0.addingTimeInterval(10))
            #expect(result == ApplyResult(changed: true, generation: 2, created: [], stopping: ["labportal-w02"]))
            let snapshot = try #require(try await repository.snapshot())
            #expect(snapshot.environments.map(\.name) == ["labportal-w01", "labportal-w02"])
            #expect(snapshot.environments[0].settings.capacity == 4)
            #expect(snapshot.environments[1].state == .stopping)
            #expect(snapshot.environments[1].settings.capacity == 0)
            #expect(snapshot.environments[1].settings.reserved == 0)

            // Offered again: a new environment, not the STOPPING one revived.
            let back = try await repository.apply(original, now: Self.t0.addingTimeInterval(20))
            #expect(back.created == ["labportal-w03"])
            #expect(back.generation == 3)

            // The STOPPING one is deleted once its sessions are gone; a RUNNING one never is.
            let deleted = try await repository.deleteStopping("labportal-w02")
            #expect(deleted)
            let runningDeleted = try await repository.deleteStopping("labportal-w01")
            #expect(!runningDeleted)
            let final = try #require(try await repository.snapshot())
            #expect(final.environments.map(\.name) == ["labportal-w01", "labportal-w03"])
        }
    }

    /// On PostgreSQL each applier has its own pool, as replicas do; SQLite means one replica, so there the appliers
    /// share the process's one connection.
    @Test("appliers racing on the same file create each environment once", arguments: TestBackends.all)
    func concurrentApply(backend: DatabaseBackend) async throws {
        let test = TestDatabase(backend, label: "catalog")
        try await test.with { database in
            try await Migrator(CatalogMigrations.all).migrate(database, logger: quietLogger)
        }
        let definition = try PortalDefinition.parse(PortalDefinitionTests.sample)
        let results: [ApplyResult]
        if backend == .postgres {
            results = try await withThrowingTaskGroup(of: ApplyResult.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await test.with { try await PortalRepository(database: $0).apply(definition, now: Self.t0) }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        } else {
            results = try await test.with { database in
                try await withThrowingTaskGroup(of: ApplyResult.self) { group in
                    for _ in 0..<4 {
                        group.addTask { try await PortalRepository(database: database).apply(definition, now: Self.t0) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
        }
        #expect(results.count == 4)
        #expect(results.filter(\.changed).count == 1)
        try await test.with { database in
            let snapshot = try #require(try await PortalRepository(database: database).snapshot())
            #expect(snapshot.environments.map(\.name) == ["labportal-w01", "labportal-w02"])
            #expect(snapshot.generation == 1)
        }
    }
}
