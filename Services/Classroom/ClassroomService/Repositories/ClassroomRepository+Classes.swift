import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

extension ClassroomRepository {
    // MARK: Classes

    static func decodeClass(_ row: any SQLRow) throws -> ClassRecord {
        ClassRecord(
            id: try row.decode(column: "id", as: Int64.self),
            courseID: try row.decode(column: "course_id", as: Int64.self),
            name: try row.decode(column: "name", as: String.self),
            description: try row.decode(column: "description", as: String.self),
            owner: Actor(
                id: try row.decode(column: "owner_id", as: String.self),
                name: try row.decode(column: "owner_name", as: String.self)),
            startAt: try row.decode(column: "start_at", as: Date.self),
            endAt: try row.decode(column: "end_at", as: Date?.self),
            timeZone: try row.decode(column: "time_zone", as: String.self),
            provisionHours: try row.decode(column: "provision_hours", as: Int.self),
            runHours: try row.decode(column: "run_hours", as: Int.self),
            cleanupHours: try row.decode(column: "cleanup_hours", as: Int?.self),
            shutdownHours: try row.decode(column: "shutdown_hours", as: Int?.self),
            dailyStartupTime: try row.decode(column: "daily_startup_time", as: String?.self),
            dailyShutdownTime: try row.decode(column: "daily_shutdown_time", as: String?.self),
            startTime: try row.decode(column: "start_time", as: String?.self),
            endTime: try row.decode(column: "end_time", as: String?.self),
            runtimeLimit: try row.decode(column: "runtime_limit", as: Int?.self),
            expirationDate: try row.decode(column: "expiration_date", as: Date?.self),
            passwordHash: try row.decode(column: "password_hash", as: String?.self),
            accessCode: try row.decode(column: "access_code", as: String.self),
            state: try row.decodeEnum(column: "state", as: ClassState.self),
            errorMessage: try row.decode(column: "error_message", as: String?.self),
            labCount: try row.decode(column: "lab_count", as: Int.self),
            labsCreatedAt: try row.decode(column: "labs_created_at", as: Date?.self),
            labsRunAt: try row.decode(column: "labs_run_at", as: Date?.self),
            labsShutdownAt: try row.decode(column: "labs_shutdown_at", as: Date?.self),
            labsDeletedAt: try row.decode(column: "labs_deleted_at", as: Date?.self),
            createdAt: try row.decode(column: "created_at", as: Date.self),
            updatedAt: try row.decode(column: "updated_at", as: Date.self),
            progress: try row.decodeEnum(column: "progress", as: ScheduleProgress.self),
            labTarget: try row.decodeOptionalEnum(column: "lab_target", as: LabTarget.self),
            nextDueAt: try row.decode(column: "next_due_at", as: Date?.self),
            deleting: try row.decode(column: "deleting", as: Bool.self),
            region: try row.decode(column: "region", as: String.self),
            problem: try row.decodeOptionalEnum(column: "problem", as: ClassProblem.self))
    }

    static func classColumns(_ record: ClassRecord) -> [(String, any SQLExpression)] {
        [
            ("course_id", SQLBind(record.courseID)), ("name", SQLBind(record.name)),
            ("description", SQLBind(record.description)), ("owner_id", SQLBind(record.owner.id)),
            ("owner_name", SQLBind(record.owner.name)), ("start_at", SQLBind(record.startAt)),
            ("end_at", SQLBind(record.endAt)), ("time_zone", SQLBind(record.timeZone)),
            ("provision_hours", SQLBind(record.provisionHours)), ("run_hours", SQLBind(record.runHours)),
            ("cleanup_hours", SQLBind(record.cleanupHours)), ("shutdown_hours", SQLBind(record.shutdownHours)),
            ("daily_startup_time", SQLBind(record.dailyStartupTime)),
            ("daily_shutdown_time", SQLBind(record.dailyShutdownTime)), ("start_time", SQLBind(record.startTime)),
            ("end_time", SQLBind(record.endTime)), ("runtime_limit", SQLBind(record.runtimeLimit)),
            ("expiration_date", SQLBind(record.expirationDate)), ("password_hash", SQLBind(record.passwordHash)),
            ("access_code", SQLBind(record.accessCode)), ("state", SQLBind(record.state.rawValue)),
            ("error_message", SQLBind(record.errorMessage)), ("lab_count", SQLBind(record.labCount)),
            ("labs_created_at", SQLBind(record.labsCreatedAt)), ("labs_run_at", SQLBind(record.labsRunAt)),
            ("labs_shutdown_at", SQLBind(record.labsShutdownAt)), ("labs_deleted_at", SQLBind(record.labsDeletedAt)),
            ("created_at", SQLBind(record.createdAt)), ("updated_at", SQLBind(record.updatedAt)),
            ("progress", SQLBind(record.progress.rawValue)), ("lab_target", SQLBind(record.labTarget?.rawValue)),
            ("next_due_at", SQLBind(record.nextDueAt)), ("deleting", SQLBind(record.deleting)),
            ("region", SQLBind(record.region)), ("problem", SQLBind(record.problem?.rawValue)),
        ]
    }

    static func save(_ record: ClassRecord, on db: any SQLDatabase) async throws {
        var update = db.update("classes")
        for (column, value) in classColumns(record) { update = update.set(SQLIdentifier(column), to: value) }
        try await update.where("id", .equal, record.id).run()
    }

    static func lockedClass(_ id: Int64, on db: any SQLDatabase) async throws -> ClassRecord? {
        try await db.select().column("*").from("classes").where("id", .equal, id).lockingClause(ForUpdate()).first()
            .map(decodeClass)
    }

    /// Schedules a class of a course. The course's `class_count` goes up in the same transaction.
    public func createClass(_ draft: ClassRecord, actor: Actor, now: Date) async throws -> ClassRecord? {
        try await write { db in
            guard try await db.select().column("id").from("courses").where("id", .equal, draft.courseID)
                .lockingClause(ForUpdate()).first() != nil
            else { return nil }
            var record = draft
            record.id = try await Self.nextID("classes", on: db)
            record.nextDueAt = ClassSchedule(record).nextDue(progress: .none, after: now)
            record.state = ClassSchedule(record).state(labs: .init(total: 0, settled: 0, deleted: 0), at: now)
            let columns = Self.classColumns(record)
            try await db.insert(into: "classes").columns(["id"] + columns.map(\.0))
                .values([SQLBind(record.id)] + columns.map(\.1)).run()
            try await db.raw("UPDATE courses SET class_count = class_count + 1 WHERE id = \(bind: record.courseID)").run()
            try await Self.audit(
                .createTrainingClass, actor: actor, target: (type: "class", id: record.id, name: record.name),
                details: "course \(record.courseID)", now: now, on: db)
            return record
        }
    }

    public func klass(_ id: Int64) async throws -> ClassRecord? {
        try await database.sql.select().column("*").from("classes").where("id", .equal, id).first().map(Self.decodeClass)
    }

    public func classes(_ filter: ListFilter, page: SkytapPage) async throws -> ([ClassRecord], Int) {
        try await classPages.value(for: ListKey(filter: filter, count: page.count, offset: page.offset)) {
            try await readClasses(filter, page: page)
        }
    }

    func readClasses(_ filter: ListFilter, page: SkytapPage) async throws -> ([ClassRecord], Int) {
        let total = try await filter.applyClasses(
            to: database.sql.select().column(SQLFunction("COUNT", args: SQLLiteral.all), as: "n").from("classes")
        ).first()?.decode(column: "n", as: Int.self) ?? 0
        var query = filter.applyClasses(to: database.sql.select().column("*").from("classes"))
        query = filter.sort.apply(to: query)
        let rows = try await query.limit(page.count).offset(page.offset).all().map(Self.decodeClass)
        return (rows, total)
    }

    /// Classes after the keyset cursor, in the filter's sort order (then id); and the cursor after the last.
    public func classes(after cursor: String?, limit: Int, filter: ListFilter) async throws -> ([ClassRecord], String?) {
        try await filter.sort.keyset.read(
            filter.applyClasses(to: database.sql.select().column("*").from("classes")), after: cursor, limit: limit,
            decode: Self.decodeClass)
    }

    /// Applies `change` in one transaction (it may throw to refuse); the schedule and the state follow.
    public func updateClass(
        _ id: Int64, actor: Actor, now: Date, _ change: @escaping @Sendable (inout ClassRecord) throws -> Void
    ) async throws -> ClassRecord? {
        try await write { db in
            guard var record = try await Self.lockedClass(id, on: db) else { return nil }
            try change(&record)
            record.updatedAt = now
            record.nextDueAt = record.deleting ? nil : ClassSchedule(record).nextDue(progress: record.progress, after: now)
            // A change that makes a step due now (an earlier end, say) is applied by the next scheduler pass.
            if let due = Self.firstDueStep(record, now: now) { record.nextDueAt = due }
            try await Self.refresh(&record, now: now, on: db)
            try await Self.audit(
                .updateTrainingClass, actor: actor, target: (type: "class", id: id, name: record.name), now: now, on: db)
            return record
        }
    }

    static func firstDueStep(_ record: ClassRecord, now: Date) -> Date? {
        let schedule = ClassSchedule(record)
        return schedule.due(at: now) > record.progress ? now : nil
    }

    public enum ClassDeletion: Sendable, Equatable {
        case notFound
        /// Its labs' environments are being deleted; the class goes when they are.
        case pending(ClassRecord)
        case deleted
    }

    /// Deletes a class and its labs: labs without an environment go at once, the others once session-service has
    /// deleted their environments.
    public func deleteClass(_ id: Int64, actor: Actor, now: Date) async throws -> ClassDeletion {
        try await write { db in
            guard var record = try await Self.lockedClass(id, on: db) else { return .notFound }
            if !record.deleting {
                try await Self.audit(
                    .deleteTrainingClass, actor: actor, target: (type: "class", id: id, name: record.name), now: now,
                    on: db)
            }
            record.deleting = true
            record.nextDueAt = nil
            try await db.raw("DELETE FROM labs WHERE class_id = \(bind: id) AND configuration_id IS NULL").run()
            try await db.raw(
                """
                UPDATE labs SET target = \(bind: LabTarget.deleted.rawValue), pushed = \(bind: false), updated_at = \(bind: now)
                WHERE class_id = \(bind: id) AND (target IS NULL OR target <> \(bind: LabTarget.deleted.rawValue))
                """
            ).run()
            if try await Self.finishDeletionIfEmpty(record, on: db) { return .deleted }
            try await Self.refresh(&record, now: now, on: db)
            return .pending(record)
        }
    }

    /// Removes a deleting class whose labs are all gone. Answers whether it did.
    static func finishDeletionIfEmpty(_ record: ClassRecord, on db: any SQLDatabase) async throws -> Bool {
        guard record.deleting else { return false }
        let left = try await db.raw(
            "SELECT COUNT(*) AS n FROM labs WHERE class_id = \(bind: record.id) AND state <> \(bind: LabState.deleted.rawValue)"
        ).first()?.decode(column: "n", as: Int.self) ?? 0
        guard left == 0 else { return false }
        try await db.raw("DELETE FROM labs WHERE class_id = \(bind: record.id)").run()
        try await db.raw("DELETE FROM classes WHERE id = \(bind: record.id)").run()
        try await db.raw("UPDATE courses SET class_count = class_count - 1 WHERE id = \(bind: record.courseID)").run()
        return true
    }

    /// How the labs of each class stand, and the first lab error of each.
    static func tallies(_ ids: [Int64], on db: any SQLDatabase) async throws
        -> [Int64: (tally: ClassSchedule.LabTally, error: String?)]
    {
        guard !ids.isEmpty else { return [:] }
        let rows = try await db.raw(
            """
            SELECT class_id, COUNT(*) AS total,
                SUM(CASE WHEN state IN (\(binds: LabState.settled.map(\.rawValue))) THEN 1 ELSE 0 END) AS settled,
                SUM(CASE WHEN state = \(bind: LabState.deleted.rawValue) THEN 1 ELSE 0 END) AS deleted,
                MAX(CASE WHEN state IN (\(binds: LabState.errors.map(\.rawValue)))
                    THEN 'lab ' || name || ': ' || error_message ELSE NULL END) AS error
            FROM labs WHERE class_id IN \(SQLGroupExpression(ids.map { SQLBind($0) as any SQLExpression }))
            AND removed = \(bind: false) GROUP BY class_id
            """
        ).all()
        var result: [Int64: (tally: ClassSchedule.LabTally, error: String?)] = [:]
        for row in rows {
            result[try row.decode(column: "class_id", as: Int64.self)] = (
                ClassSchedule.LabTally(
                    total: try row.decode(column: "total", as: Int?.self) ?? 0,
                    settled: try row.decode(column: "settled", as: Int?.self) ?? 0,
                    deleted: try row.decode(column: "deleted", as: Int?.self) ?? 0),
                try row.decode(column: "error", as: String?.self)
            )
        }
        return result
    }

    /// Recomputes a class's lab count, state and completion times from its labs, and saves it.
    static func refresh(_ record: inout ClassRecord, now: Date, on db: any SQLDatabase) async throws {
        let counted = try await tallies([record.id], on: db)[record.id]
        record.settle(labs: counted?.tally ?? .empty, firstLabError: counted?.error, now: now)
        try await save(record, on: db)
    }
}
