import Contracts
import Crypto
import Foundation
import ServerKit
import SQLKit
import Storage

/// An environment as the catalog keeps it: a stable name (`<portal>-wNN`), a state, and the workshop and settings
/// it was last given. For a STOPPING environment, capacity, reserved and initial read as 0.
public typealias EnvironmentRecord = CatalogEnvironment

/// The catalog's state: the portal as last applied, with its generation, and every environment not yet deleted.
public typealias PortalSnapshot = CatalogPortal.Snapshot

public struct ApplyResult: Sendable, Equatable {
    public var changed: Bool
    public var generation: Int
    public var created: [String]
    public var stopping: [String]
}

/// The portal and its environments in catalog-service's database. One implementation for SQLite and PostgreSQL.
public struct PortalRepository: Sendable {
    let database: Database
    /// Bumped by every change this process makes to the portal (see `SnapshotCache`).
    let changes = ChangeCounter()

    public init(database: Database) { self.database = database }

    /// Makes the stored portal match `definition`, in one transaction:
    /// - an environment whose workshop is still offered keeps its name and takes the new settings;
    /// - a newly offered workshop gets a new environment, named `<portal>-wNN`;
    /// - an environment no longer in the file goes to STOPPING with capacity 0; its sessions live on.
    /// The generation increases when anything changed, and only then.
    public func apply(_ definition: PortalDefinition, now: Date) async throws -> ApplyResult {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let canonical = try encoder.encode(definition)
        let digest = SHA256.hash(data: canonical).map { String(format: "%02x", $0) }.joined()
        let definitionText = String(decoding: canonical, as: UTF8.self)
        let result = try await database.transaction { db in
            try await db.raw(
                """
                INSERT INTO portal (id, generation, next_environment, digest, definition, updated_at)
                VALUES (1, 0, 1, '', '{}', \(bind: now)) ON CONFLICT (id) DO NOTHING
                """
            ).run()
            guard
                let row = try await db.select().columns("generation", "next_environment", "digest").from("portal")
                    .where("id", .equal, 1).lockingClause(ForUpdate()).first()
            else { throw StorageError.misuse("the portal row is missing") }
            var generation = try row.decode(column: "generation", as: Int.self)
            var next = try row.decode(column: "next_environment", as: Int.self)
            if try row.decode(column: "digest", as: String.self) == digest {
                return ApplyResult(changed: false, generation: generation, created: [], stopping: [])
            }

            let existing = try await db.select().columns("name", "workshop_name", "state").from("environments")
                .all()
            var runningByWorkshop: [String: String] = [:]
            for row in existing where try row.decodeEnum(column: "state", as: EnvironmentState.self) == .running {
                runningByWorkshop[try row.decode(column: "workshop_name", as: String.self)] =
                    try row.decode(column: "name", as: String.self)
            }
            let plan = PortalReload.plan(definition, running: runningByWorkshop, nextEnvironment: next)
            let workshops = Dictionary(uniqueKeysWithValues: definition.workshops.map { ($0.name, $0) })
            func texts(_ placement: PortalReload.Placement) throws -> (workshop: String, settings: String) {
                (String(decoding: try encoder.encode(workshops[placement.environment.workshop]!), as: UTF8.self),
                 String(decoding: try encoder.encode(placement.environment), as: UTF8.self))
            }
            for placement in plan.kept {
                let (workshopText, settingsText) = try texts(placement)
                try await db.update("environments")
                    .set("position", to: placement.position).set("workshop", to: workshopText)
                    .set("settings", to: settingsText).set("updated_at", to: now)
                    .where("name", .equal, placement.name).run()
            }
            for placement in plan.created {
                let (workshopText, settingsText) = try texts(placement)
                try await db.raw(
                    """
                    INSERT INTO environments (name, position, workshop_name, state, workshop, settings, created_at, updated_at)
                    VALUES (\(bind: placement.name), \(bind: placement.position), \(bind: placement.environment.workshop),
                            \(bind: EnvironmentState.running.rawValue), \(bind: workshopText),
                            \(bind: settingsText), \(bind: now), \(bind: now))
                    """
                ).run()
            }
            for name in plan.stopping {
                try await db.update("environments")
                    .set("state", to: EnvironmentState.stopping.rawValue).set("updated_at", to: now)
                    .where("name", .equal, name).run()
            }
            next = plan.nextEnvironment
            let created = plan.created.map(\.name)
            let stopping = plan.stopping
            generation += 1
            try await db.update("portal")
                .set("generation", to: generation).set("next_environment", to: next)
                .set("digest", to: digest).set("definition", to: definitionText).set("updated_at", to: now)
                .where("id", .equal, 1).run()
            return ApplyResult(changed: true, generation: generation, created: created, stopping: stopping)
        }
        if result.changed { changes.bump() }
        return result
    }

    /// The generation of the stored portal; nil before the first load.
    public func generation() async throws -> Int? {
        try await database.sql.select().column("generation").from("portal").where("id", .equal, 1).first()?
            .decode(column: "generation", as: Int.self)
    }

    /// The portal and its environments in creation order, whatever their state (as the real portal lists them): by
    /// when they were made, those of one reload in the file's order.
    public func snapshot() async throws -> PortalSnapshot? {
        guard
            let row = try await database.sql.select().columns("generation", "definition").from("portal")
                .where("id", .equal, 1).first()
        else { return nil }
        let decoder = JSONDecoder()
        let definition = try decoder.decode(
            PortalDefinition.self, from: Data(try row.decode(column: "definition", as: String.self).utf8))
        let rows = try await database.sql.select()
            .columns("name", "position", "state", "workshop", "settings").from("environments")
            .orderBy("created_at").orderBy("position").orderBy("name").all()
        var environments: [EnvironmentRecord] = []
        for row in rows {
            let state = try row.decodeEnum(column: "state", as: EnvironmentState.self)
            let settings = PortalReload.effectiveSettings(
                try decoder.decode(
                    PortalDefinition.Environment.self, from: Data(try row.decode(column: "settings", as: String.self).utf8)),
                state: state)
            environments.append(
                EnvironmentRecord(
                    name: try row.decode(column: "name", as: String.self),
                    position: try row.decode(column: "position", as: Int.self),
                    state: state,
                    workshop: try decoder.decode(
                        PortalDefinition.Workshop.self, from: Data(try row.decode(column: "workshop", as: String.self).utf8)),
                    settings: settings))
        }
        return PortalSnapshot(
            portal: definition.portal, generation: try row.decode(column: "generation", as: Int.self),
            environments: environments)
    }

    /// Deletes a STOPPING environment (once its last session has ended). A RUNNING one is never deleted.
    public func deleteStopping(_ name: String) async throws -> Bool {
        let deleted = try await database.transaction { db in
            let found = try await db.select().column("name").from("environments")
                .where("name", .equal, name).where("state", .equal, EnvironmentState.stopping.rawValue)
                .lockingClause(ForUpdate()).first()
            guard found != nil else { return false }
            try await db.delete(from: "environments").where("name", .equal, name).run()
            try await db.raw("UPDATE portal SET generation = generation + 1, updated_at = \(bind: Date()) WHERE id = 1")
                .run()
            return true
        }
        if deleted { changes.bump() }
        return deleted
    }
}
