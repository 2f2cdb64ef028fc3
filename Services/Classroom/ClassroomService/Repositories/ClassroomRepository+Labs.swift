import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

extension ClassroomRepository {
    // MARK: Labs

    static func decodeLab(_ row: any SQLRow) throws -> LabRecord {
        LabRecord(
            id: try row.decode(column: "id", as: Int64.self),
            classID: try row.decode(column: "class_id", as: Int64.self),
            name: try row.decode(column: "name", as: String.self),
            state: try row.decodeEnum(column: "state", as: LabState.self),
            configurationID: try row.decodeOptional(column: "configuration_id", as: String.self),
            environmentURL: try row.decodeOptional(column: "environment_url", as: String.self),
            errorMessage: try row.decodeOptional(column: "error_message", as: String.self),
            target: try row.decodeOptional(column: "target", as: String.self).flatMap(LabTarget.init(rawValue:)),
            pushed: try row.decode(column: "pushed", as: Bool.self),
            removed: try row.decode(column: "removed", as: Bool.self),
            accessToken: try row.decode(column: "access_token", as: String.self),
            firstAccessAt: try row.decodeOptional(column: "first_access_at", as: Date.self),
            createdAt: try row.decode(column: "created_at", as: Date.self),
            updatedAt: try row.decode(column: "updated_at", as: Date.self))
    }

    public enum LabRefusal: Error, Equatable {
        case classNotFound
        case tooMany(maximum: Int, existing: Int)
        case classEnded
        case classDeleting
    }

    /// Adds labs to a class, within its course's `max_labs`. Labs added after the class is provisioned get the
    /// class's current target at once (the scheduler makes their environments on its next pass).
    public func addLabs(classID: Int64, names: [String], actor: Actor, now: Date) async throws
        -> Result<[LabRecord], LabRefusal>
    {
        try await write { db in
            guard var record = try await Self.lockedClass(classID, on: db) else { return .failure(.classNotFound) }
            guard !record.deleting else { return .failure(.classDeleting) }
            guard record.progress < .ended else { return .failure(.classEnded) }
            let maximum = try await db.raw("SELECT max_labs FROM courses WHERE id = \(bind: record.courseID)").first()?
                .decode(column: "max_labs", as: Int.self) ?? 20
            guard record.labCount + names.count <= maximum else {
                return .failure(.tooMany(maximum: maximum, existing: record.labCount))
            }
            var labs: [LabRecord] = []
            for name in names {
                let lab = LabRecord(
                    id: try await Self.nextID("labs", on: db), classID: classID, name: name, state: .initialized,
                    configurationID: nil, environmentURL: nil, errorMessage: nil, target: record.labTarget,
                    pushed: record.labTarget == nil, removed: false, accessToken: Secrets.token(length: 32),
                    firstAccessAt: nil, createdAt: now, updatedAt: now)
                try await db.insert(into: "labs")
                    .columns(
                        "id", "class_id", "name", "state", "configuration_id", "environment_url", "error_message",
                        "target", "pushed", "removed", "access_token", "first_access_at", "created_at", "updated_at")
                    .values(
                        SQLBind(lab.id), SQLBind(lab.classID), SQLBind(lab.name), SQLBind(lab.state.rawValue),
                        SQLLiteral.null, SQLLiteral.null, SQLLiteral.null, SQLBind(lab.target?.rawValue),
                        SQLBind(lab.pushed), SQLBind(false), SQLBind(lab.accessToken), SQLLiteral.null, SQLBind(now),
                        SQLBind(now))
                    .run()
                try await Self.audit(
                    .createTrainingLab, actor: actor, target: (type: "lab", id: lab.id, name: lab.name),
                    details: "class \(classID)", now: now, on: db)
                labs.append(lab)
            }
            try await Self.refresh(&record, now: now, on: db)
            return .success(labs)
        }
    }

    /// A lab that has not been removed.
    public func lab(_ id: Int64) async throws -> LabRecord? {
        try await database.sql.select().column("*").from("labs").where("id", .equal, id)
            .where("removed", .equal, false).first().map(Self.decodeLab)
    }

    public func lab(token: String) async throws -> LabRecord? {
        try await database.sql.select().column("*").from("labs").where("access_token", .equal, token)
            .where("removed", .equal, false).first().map(Self.decodeLab)
    }

    public func labs(classID: Int64) async throws -> [LabRecord] {
        try await database.sql.select().column("*").from("labs").where("class_id", .equal, classID)
            .where("removed", .equal, false).orderBy("id").all().map(Self.decodeLab)
    }

    /// Labs after the keyset cursor, of one class or of all, by id.
    /// Labs after the keyset cursor, of one class or of all, in the filter's sort order (then id); and the cursor
    /// after the last.
    public func labs(after cursor: String?, limit: Int, classID: Int64?, filter: ListFilter) async throws
        -> ([LabRecord], String?)
    {
        var query = filter.nameCondition(database.sql.select().column("*").from("labs"))
            .where("removed", .equal, false)
        if let classID { query = query.where("class_id", .equal, classID) }
        if let state = filter.state { query = query.where("state", .equal, state) }
        if let range = filter.createdAt { query = range.apply(to: query, column: "created_at") }
        return try await filter.sort.keyset.read(query, after: cursor, limit: limit, decode: Self.decodeLab)
    }

    /// What a bulk read of labs needs (`labs.page`, `labs.rows`), in a page of the list's order: six columns instead
    /// of every one (a million-lab export reads each row once, and decoding is most of its cost here).
    public func labListings(after cursor: String?, limit: Int, classID: Int64?, filter: ListFilter) async throws
        -> ([LabListing], String?)
    {
        let query = labsQuery(Self.listingColumns.map { SQLIdentifier($0) }, classID: classID, filter: filter)
        // A million of these make an export: read by position, not through SQLKit's decoder.
        return try await filter.sort.keyset.read(
            query, columns: Self.listingColumns, on: database, after: cursor, limit: limit, decode: Self.decodeListing)
    }

    /// The labs of a list (not removed, with its filters), selecting `columns`.
    private func labsQuery(_ columns: [any SQLExpression], classID: Int64?, filter: ListFilter) -> SQLSelectBuilder {
        var query = filter.nameCondition(database.sql.select().columns(columns).from("labs")).where("removed", .equal, false)
        if let classID { query = query.where("class_id", .equal, classID) }
        if let state = filter.state { query = query.where("state", .equal, state) }
        if let range = filter.createdAt { query = range.apply(to: query, column: "created_at") }
        return query
    }

    /// The labs of an export page (`labs.rows`), their cells written as JSON by the database: `head` is
    /// `["<id>","<class_id>","<name>"]` and `tail` is `[<configuration_id>,<desktops_url>,"<state>"]`, where the
    /// desktops URL is `desktopsPrefix` and the access token once the lab has a configuration, else null. The same
    /// cells as `labListings` gives (tested), without a string per cell on either side.
    public func labJSONRows(
        after cursor: String?, limit: Int, classID: Int64?, filter: ListFilter, desktopsPrefix: String
    ) async throws -> ([LabJSONRow], String?) {
        let array = database.backend == .postgres ? "json_build_array" : "json_array"
        let desktops: SQLQueryString =
            "CASE WHEN configuration_id IS NULL THEN NULL ELSE CAST(\(bind: desktopsPrefix) AS TEXT) || access_token END"
        let columns: [any SQLExpression] = [
            SQLIdentifier("id"), SQLIdentifier("class_id"),
            SQLAlias(SQLFunction(array, args: SQLRaw("CAST(id AS TEXT)"), SQLRaw("CAST(class_id AS TEXT)"), SQLIdentifier("name")), as: "head"),
            SQLAlias(SQLFunction(array, args: SQLIdentifier("configuration_id"), desktops, SQLIdentifier("state")), as: "tail"),
        ]
        return try await filter.sort.keyset.read(
            labsQuery(columns, classID: classID, filter: filter), columns: ["id", "class_id", "head", "tail"],
            on: database, after: cursor, limit: limit,
            decode: { row in
                LabJSONRow(
                    id: try row.requiredInteger(0), classID: try row.requiredInteger(1), head: try row.requiredText(2),
                    tail: try row.requiredText(3))
            })
    }

    static let listingColumns = ["id", "class_id", "name", "state", "configuration_id", "access_token"]

    static func decodeListing(_ row: PlainRow) throws -> LabListing {
        LabListing(
            id: try row.requiredInteger(0), classID: try row.requiredInteger(1), name: try row.requiredText(2),
            state: try StorageError.known(LabState.self, try row.requiredText(3), column: "state"), configurationID: try row.text(4),
            accessToken: try row.requiredText(5))
    }

    public enum LabChangeRefusal: Error, Equatable {
        case notFound
        /// The lab is provisioning, starting or shutting down.
        case busy(LabState)
        /// Renaming is not possible once the class is provisioned.
        case classProvisioned
    }

    public func renameLab(_ id: Int64, to name: String, actor: Actor, now: Date) async throws
        -> Result<LabRecord, LabChangeRefusal>
    {
        try await write { db in
            guard var lab = try await db.select().column("*").from("labs").where("id", .equal, id)
                .where("removed", .equal, false).lockingClause(ForUpdate()).first().map(Self.decodeLab)
            else { return .failure(.notFound) }
            guard lab.state != .provisioning else { return .failure(.busy(lab.state)) }
            guard let record = try await Self.lockedClass(lab.classID, on: db) else { return .failure(.notFound) }
            guard record.progress < .provisioned else { return .failure(.classProvisioned) }
            lab.name = name
            lab.updatedAt = now
            try await db.update("labs").set("name", to: name).set("updated_at", to: now).where("id", .equal, id).run()
            try await Self.audit(
                .updateTrainingLab, actor: actor, target: (type: "lab", id: id, name: name), now: now, on: db)
            return .success(lab)
        }
    }

    public func removeLab(_ id: Int64, actor: Actor, now: Date) async throws -> Result<Void, LabChangeRefusal> {
        try await write { db in
            guard let lab = try await db.select().column("*").from("labs").where("id", .equal, id)
                .where("removed", .equal, false).lockingClause(ForUpdate()).first().map(Self.decodeLab)
            else { return .failure(.notFound) }
            guard !lab.state.isBusy else { return .failure(.busy(lab.state)) }
            guard var record = try await Self.lockedClass(lab.classID, on: db) else { return .failure(.notFound) }
            if lab.configurationID == nil {
                try await db.delete(from: "labs").where("id", .equal, id).run()
            } else {
                try await db.update("labs").set("removed", to: true).set("target", to: LabTarget.deleted.rawValue)
                    .set("pushed", to: false).set("updated_at", to: now).where("id", .equal, id).run()
            }
            try await Self.audit(
                .deleteTrainingLab, actor: actor, target: (type: "lab", id: id, name: lab.name),
                details: "class \(lab.classID)", now: now, on: db)
            try await Self.refresh(&record, now: now, on: db)
            return .success(())
        }
    }

    /// Records that a student opened the lab (the first time only).
    public func markAccessed(_ id: Int64, now: Date) async throws {
        defer { changes.bump() }
        try await database.sql.raw(
            "UPDATE labs SET first_access_at = \(bind: now) WHERE id = \(bind: id) AND first_access_at IS NULL"
        ).run()
    }

    // MARK: Talking to session-service

    /// Labs whose target session-service has not been told yet.
    public func labsToPush(limit: Int) async throws -> [LabRecord] {
        try await database.sql.select().column("*").from("labs").where("pushed", .equal, false)
            .where(SQLIdentifier("target"), .isNot, SQLLiteral.null).orderBy("id").limit(limit).all().map(Self.decodeLab)
    }

    /// Labs whose environment is on its way somewhere (or failed on the way), for the status sync.
    public func labsInTransit(limit: Int) async throws -> [LabRecord] {
        try await database.sql.select().column("*").from("labs").where("pushed", .equal, true)
            .where(
                "state", .in,
                [
                    LabState.provisioning, .starting, .shuttingDown, .deleting, .provisioningError,
                    .startingError, .shutdownError, .deletionError,
                ].map(\.rawValue)
            )
            .orderBy("updated_at").orderBy("id").limit(limit).all().map(Self.decodeLab)
    }

    /// Stores what session-service says about lab environments, and refreshes the classes whose labs reached a
    /// target, failed or recovered. `pushed` is the target each lab was pushed with (nil for a status read); a lab
    /// whose target changed since stays unpushed. One statement per lab: `labs` are the rows as read before the call.
    public func record(_ environments: [(lab: LabRecord, environment: LabEnvironment?, pushed: LabTarget?)], now: Date)
        async throws
    {
        guard !environments.isEmpty else { return }
        let settled: Set<LabState> = [.provisioned, .started, .shutDown, .deleted]
        try await write { db in
            var classes = Set<Int64>()
            for (lab, environment, pushed) in environments {
                let state = environment.map(LabState.init) ?? (lab.target == .deleted ? .deleted : lab.state)
                let url = environment.map { $0.phase == .running ? $0.url : nil } ?? lab.environmentURL
                if pushed == nil, state == lab.state, environment?.error == lab.errorMessage,
                    (environment?.name ?? lab.configurationID) == lab.configurationID, url == lab.environmentURL
                {
                    continue  // nothing new
                }
                if settled.contains(state) || state.isError || lab.state.isError || lab.removed {
                    classes.insert(lab.classID)
                }
                if lab.removed && state == .deleted {
                    try await db.delete(from: "labs").where("id", .equal, lab.id).run()
                    continue
                }
                try await db.raw(
                    """
                    UPDATE labs SET state = \(bind: state.rawValue), error_message = \(bind: environment?.error),
                        updated_at = \(bind: now),
                        configuration_id = \(bind: environment?.name ?? lab.configurationID),
                        environment_url = \(bind: url),
                        pushed = CASE WHEN target = \(bind: pushed?.rawValue ?? "") THEN \(bind: true) ELSE pushed END
                    WHERE id = \(bind: lab.id)
                    """
                ).run()
            }
            for id in classes.sorted() {
                guard var record = try await Self.lockedClass(id, on: db) else { continue }
                if try await Self.finishDeletionIfEmpty(record, on: db) { continue }
                try await Self.refresh(&record, now: now, on: db)
            }
        }
    }

    /// The pending push failed: say so on the class (the push is retried on the next pass).
    public func recordPushFailure(classID: Int64, error: String, now: Date) async throws {
        defer { changes.bump() }
        let message = "\(ClassProblem.sessionServiceUnreachable.message ?? ""): \(error)"
        try await database.sql.update("classes").set("error_message", to: String(message.prefix(2000)))
            .set("problem", to: ClassProblem.sessionServiceUnreachable.rawValue)
            .set("updated_at", to: now).where("id", .equal, classID).run()
    }

    // MARK: The schedule

    /// Classes with a step or a daily boundary due at `now`.
    public func dueClasses(now: Date, limit: Int) async throws -> [ClassRecord] {
        try await database.sql.select().column("*").from("classes")
            .where(SQLIdentifier("next_due_at"), .lessThanOrEqual, SQLBind(now)).where("deleting", .equal, false)
            .orderBy("next_due_at").orderBy("id").limit(limit).all().map(Self.decodeClass)
    }

    /// What one pass of the scheduler did to a class.
    public struct Advance: Sendable, Equatable {
        public var classID: Int64
        public var from: ScheduleProgress
        public var to: ScheduleProgress
        public var target: LabTarget?
        public var blocked: String?
        /// Whether this pass changed the class (a step applied, or the labs' target moved).
        public var changed = false
    }

    /// Applies every step and daily boundary of these classes that is due at `now`, in one transaction. Each step is
    /// applied once (the progress marker only grows); a class whose template is missing is not provisioned, and says
    /// why. `templateExists` answers for the course of a class. The batch costs a few statements plus one save per
    /// class: the classes are locked in one read, labs are retargeted per target, the tallies are one grouped read
    /// and the audit entries one insert.
    public func advance(
        _ ids: [Int64], now: Date, templateExists: @escaping @Sendable (Int64) -> Bool
    ) async throws -> [Advance] {
        guard !ids.isEmpty else { return [] }
        return try await write { db in
            let records = try await db.select().column("*").from("classes").where("id", .in, ids)
                .where("deleting", .equal, false).orderBy("id").lockingClause(ForUpdate()).all().map(Self.decodeClass)
            var results: [Advance] = []
            var changed: [ClassRecord] = []
            var audits: [PendingAudit] = []
            var retarget: [LabTarget: [Int64]] = [:]
            // Courses whose classes were provisioned: `last_deployed`, once per course.
            var deployed = Set<Int64>()
            for record in records {
                let step = ClassSchedule(record).advance(at: now, templateExists: templateExists(record.courseID))
                let target = (type: "class", id: record.id, name: record.name)
                audits += step.audits.map { PendingAudit(activity: $0, actor: .scheduler, target: target) }
                if step.deployed { deployed.insert(record.courseID) }
                if let labs = step.retarget { retarget[labs, default: []].append(record.id) }
                changed.append(step.record)
                results.append(
                    Advance(
                        classID: record.id, from: step.from, to: step.record.progress, target: step.record.labTarget,
                        blocked: step.blocked, changed: step.changed))
            }
            for (target, classIDs) in retarget.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                try await db.update("labs").set("target", to: target.rawValue).set("pushed", to: false)
                    .set("updated_at", to: now).where("class_id", .in, classIDs).where("removed", .equal, false).run()
            }
            let tallies = try await Self.tallies(changed.map(\.id), on: db)
            for var record in changed {
                record.settle(labs: tallies[record.id]?.tally ?? .empty, firstLabError: tallies[record.id]?.error, now: now)
                try await Self.save(record, on: db)
            }
            try await Self.audit(audits, now: now, on: db)
            if !deployed.isEmpty {
                try await db.update("courses").set("last_deployed", to: now).where("id", .in, deployed.sorted()).run()
            }
            return results
        }
    }
}

extension ClassroomRepository {
    /// The template id of each course asked about.
    public func courseTemplates(_ ids: Set<Int64>) async throws -> [Int64: String] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await database.sql.select().columns("id", "template_id").from("courses")
            .where("id", .in, Array(ids)).all()
        var result: [Int64: String] = [:]
        for row in rows {
            result[try row.decode(column: "id", as: Int64.self)] = try row.decode(column: "template_id", as: String.self)
        }
        return result
    }

    /// The workshop (the course's template) of each class asked about.
    public func labWorkshops(_ classIDs: Set<Int64>) async throws -> [Int64: String] {
        guard !classIDs.isEmpty else { return [:] }
        let rows = try await database.sql.raw(
            """
            SELECT classes.id AS id, courses.template_id AS template_id FROM classes
            JOIN courses ON courses.id = classes.course_id
            WHERE classes.id IN \(SQLGroupExpression(classIDs.sorted().map { SQLBind($0) as any SQLExpression }))
            """
        ).all()
        var result: [Int64: String] = [:]
        for row in rows {
            result[try row.decode(column: "id", as: Int64.self)] = try row.decode(column: "template_id", as: String.self)
        }
        return result
    }
}
