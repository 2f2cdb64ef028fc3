import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

/// The environments of classroom labs: sessions owned by a lab, which are made, run, stopped and deleted on the
/// class schedule instead of being allocated and activated. classroom-service sets each one's target; the lab
/// runtime converges the phase towards it (failures are recorded and retried with backoff).
public struct LabEnvironmentRepository: Sendable {
    /// Environments whose phase does not meet their target yet (`LabTarget.settledPhases`, bound).
    static var unsettled: SQLQueryString {
        var settled: SQLQueryString = "target = phase"
        for target in LabTarget.allCases {
            let phases = target.settledPhases.filter { $0.rawValue != target.rawValue }
            guard !phases.isEmpty else { continue }
            settled = settled + " OR (target = \(bind: target.rawValue) AND phase IN (\(binds: phases.map(\.rawValue))))"
        }
        return "NOT (" + settled + ")"
    }

    let database: Database

    public init(database: Database) { self.database = database }

    /// One lab environment with its provisioner handle.
    public struct Record: Sendable, Equatable {
        public var environment: LabEnvironment
        public var owner: String?
        public var handle: String?
        public var attempts: Int
    }

    static func decode(_ row: any SQLRow) throws -> Record {
        Record(
            environment: LabEnvironment(
                name: try row.decode(column: "name", as: String.self),
                lab: try row.decode(column: "lab", as: String.self),
                workshop: try row.decode(column: "workshop", as: String.self),
                target: try row.decodeEnum(column: "target", as: LabTarget.self),
                phase: try row.decodeEnum(column: "phase", as: LabPhase.self),
                error: try row.decode(column: "error_message", as: String?.self),
                url: try row.decode(column: "url", as: String?.self),
                updatedAt: try row.decode(column: "updated_at", as: Date.self)),
            owner: try row.decode(column: "owner", as: String?.self),
            handle: try row.decode(column: "handle", as: String?.self),
            attempts: try row.decode(column: "attempts", as: Int.self))
    }

    /// Sets a lab's target, making its environment when it has none that is still there.
    public func apply(_ params: LabsApply.Params, now: Date) async throws -> LabEnvironment? {
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            let current = try await db.select().column("*").from("lab_environments")
                .where("lab", .equal, params.lab).where("phase", .notEqual, LabPhase.deleted.rawValue)
                .orderBy("created_at", .descending).limit(1).lockingClause(ForUpdate()).first().map(Self.decode)
            if var record = current {
                guard record.environment.target != params.target else { return record.environment }
                try await db.update("lab_environments").set("target", to: params.target.rawValue)
                    .set("attempts", to: 0).set("next_attempt_at", to: now).set("updated_at", to: now)
                    .where("name", .equal, record.environment.name).run()
                record.environment.target = params.target
                record.environment.updatedAt = now
                return record.environment
            }
            guard params.target != .deleted else { return nil }
            let made = try await db.raw("SELECT COUNT(*) AS n FROM lab_environments WHERE lab = \(bind: params.lab)")
                .first()?.decode(column: "n", as: Int.self) ?? 0
            let environment = LabEnvironment(
                name: "lab\(params.lab)-s\(String(format: "%03d", made + 1))", lab: params.lab,
                workshop: params.workshop, target: params.target, phase: .pending, error: nil, url: nil, updatedAt: now)
            try await db.insert(into: "lab_environments")
                .columns(
                    "name", "lab", "workshop", "owner", "target", "phase", "error_message", "url", "handle", "attempts",
                    "next_attempt_at", "created_at", "updated_at")
                .values(
                    SQLBind(environment.name), SQLBind(environment.lab), SQLBind(environment.workshop),
                    SQLBind(params.owner), SQLBind(environment.target.rawValue), SQLBind(environment.phase.rawValue),
                    SQLLiteral.null, SQLLiteral.null, SQLLiteral.null, SQLBind(0), SQLBind(now), SQLBind(now),
                    SQLBind(now))
                .run()
            return environment
        }
    }

    /// The newest environment of each lab asked about.
    public func status(labs: [String]) async throws -> [LabEnvironment] {
        guard !labs.isEmpty else { return [] }
        let rows = try await database.sql.select().column("*").from("lab_environments").where("lab", .in, labs)
            .orderBy("created_at").orderBy("name").all().map(Self.decode)
        var newest: [String: LabEnvironment] = [:]
        for row in rows { newest[row.environment.lab] = row.environment }
        return labs.compactMap { newest[$0] }
    }

    public func record(named name: String) async throws -> Record? {
        try await database.sql.select().column("*").from("lab_environments").where("name", .equal, name).first()
            .map(Self.decode)
    }

    /// Environments to converge now: unsettled, and not waiting for a retry.
    public func due(now: Date, limit: Int) async throws -> [Record] {
        try await database.sql.raw(
            """
            SELECT * FROM lab_environments WHERE \(Self.unsettled)
            AND (next_attempt_at IS NULL OR next_attempt_at <= \(bind: EducatesTime.truncate(now)))
            ORDER BY updated_at, name LIMIT \(bind: limit)
            """
        ).all().map(Self.decode)
    }

    /// Environments the provisioner ran (to check after a restart that they still run).
    public func running() async throws -> [Record] {
        try await database.sql.select().column("*").from("lab_environments")
            .where("phase", .equal, LabPhase.running.rawValue).all().map(Self.decode)
    }

    /// A step succeeded: the environment is in `phase` now.
    public func reached(_ name: String, phase: LabPhase, url: String?, handle: String?, now: Date) async throws {
        try await database.sql.update("lab_environments").set("phase", to: phase.rawValue).set("url", to: url)
            .set("handle", to: handle).set("error_message", to: SQLLiteral.null).set("attempts", to: 0)
            .set("next_attempt_at", to: SQLLiteral.null).set("updated_at", to: EducatesTime.truncate(now))
            .where("name", .equal, name).run()
    }

    /// A step failed: say why and retry at `retryAt`.
    public func failed(_ name: String, message: String, retryAt: Date, now: Date) async throws {
        try await database.sql.raw(
            """
            UPDATE lab_environments SET error_message = \(bind: String(message.prefix(2000))), attempts = attempts + 1,
                next_attempt_at = \(bind: EducatesTime.truncate(retryAt)), updated_at = \(bind: EducatesTime.truncate(now))
            WHERE name = \(bind: name)
            """
        ).run()
    }
}
