import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

/// Courses, classes, labs and the audit trail in classroom-service's database. Every change and its audit entry are
/// one transaction.
public struct ClassroomRepository: Sendable {
    let database: Database
    /// Bumped after every write this process makes (see `ClassListCache`).
    let changes: ChangeCounter
    /// Pages of the REST lists, kept until this process writes (and at most 1 s on PostgreSQL, where replicas write).
    let classPages: VersionedCache<ListKey, ([ClassRecord], Int)>
    let coursePages: VersionedCache<ListKey, ([CourseRecord], Int)>

    struct ListKey: Hashable, Sendable {
        var filter: ListFilter
        var count: Int
        var offset: Int
    }

    public init(database: Database) {
        self.database = database
        let changes = ChangeCounter()
        self.changes = changes
        // On PostgreSQL other replicas write too: what they wrote shows within a second.
        let maxAge: Duration? = database.backend == .sqlite ? nil : .seconds(1)
        classPages = VersionedCache(counter: changes, enabled: true, maxAge: maxAge)
        coursePages = VersionedCache(counter: changes, enabled: true, maxAge: maxAge)
    }

    /// How many writes this process has made.
    public var changeCount: Int { changes.value }

    /// A write transaction; caches of this process's reads drop what they hold once it is done.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        defer { changes.bump() }
        return try await database.transaction(body)
    }

    // MARK: Ids and audit

    static func nextID(_ counter: String, on db: any SQLDatabase) async throws -> Int64 {
        guard
            let row = try await db.raw(
                "UPDATE counters SET value = value + 1 WHERE name = \(bind: counter) RETURNING value"
            ).first()
        else { throw StorageError.misuse("no counter \(counter)") }
        return try row.decode(column: "value", as: Int64.self)
    }

    /// Records an activity in the same transaction as the change it describes.
    static func audit(
        _ activity: AuditActivity, actor: Actor, target: (type: String, id: Int64, name: String), details: String = "",
        now: Date, on db: any SQLDatabase
    ) async throws {
        let id = try await nextID("audit", on: db)
        try await db.insert(into: "audit_events")
            .columns(
                "id", "activity", "actor_id", "actor_name", "target_type", "target_id", "target_name", "details",
                "created_at")
            .values(
                SQLBind(id), SQLBind(activity.rawValue), SQLBind(actor.id), SQLBind(actor.name), SQLBind(target.type),
                SQLBind(String(target.id)), SQLBind(target.name), SQLBind(details), SQLBind(now))
            .run()
    }

    /// One audit entry of a batch.
    struct PendingAudit {
        var activity: AuditActivity
        var actor: Actor
        var target: (type: String, id: Int64, name: String)
        var details: String = ""
    }

    /// Records a batch of activities in one statement, with a block of ids taken at once.
    static func audit(_ batch: [PendingAudit], now: Date, on db: any SQLDatabase) async throws {
        guard !batch.isEmpty else { return }
        guard
            let row = try await db.raw(
                "UPDATE counters SET value = value + \(bind: batch.count) WHERE name = 'audit' RETURNING value"
            ).first()
        else { throw StorageError.misuse("no counter audit") }
        let last = try row.decode(column: "value", as: Int64.self)
        var insert = db.insert(into: "audit_events")
            .columns(
                "id", "activity", "actor_id", "actor_name", "target_type", "target_id", "target_name", "details",
                "created_at")
        for (index, entry) in batch.enumerated() {
            insert = insert.values(
                SQLBind(last - Int64(batch.count) + 1 + Int64(index)), SQLBind(entry.activity.rawValue),
                SQLBind(entry.actor.id), SQLBind(entry.actor.name), SQLBind(entry.target.type),
                SQLBind(String(entry.target.id)), SQLBind(entry.target.name), SQLBind(entry.details), SQLBind(now))
        }
        try await insert.run()
    }

    public func audit(
        _ activity: AuditActivity, actor: Actor, target: (type: String, id: Int64, name: String), details: String = "",
        now: Date
    ) async throws {
        try await write { db in
            try await Self.audit(activity, actor: actor, target: target, details: details, now: now, on: db)
        }
    }

    /// Records an activity another service reports, once per `id`.
    public func record(_ params: AuditRecord.Params) async throws {
        try await write { db in
            if try await db.select().column("id").from("audit_events").where("external_id", .equal, params.id).first() != nil {
                return
            }
            let id = try await Self.nextID("audit", on: db)
            try await db.insert(into: "audit_events")
                .columns(
                    "id", "activity", "actor_id", "actor_name", "target_type", "target_id", "target_name", "details",
                    "created_at", "external_id")
                .values(
                    SQLBind(id), SQLBind(params.activity), SQLBind(params.actorID), SQLBind(params.actorName),
                    SQLBind(params.targetType), SQLBind(params.targetID), SQLBind(params.targetName),
                    SQLBind(params.details), SQLBind(params.at), SQLBind(params.id))
                .run()
        }
    }

    static func decodeAudit(_ row: any SQLRow) throws -> AuditEvent {
        AuditEvent(
            id: try row.decode(column: "id", as: Int64.self),
            activity: try row.decode(column: "activity", as: String.self),
            actor: Actor(
                id: try row.decode(column: "actor_id", as: String.self),
                name: try row.decode(column: "actor_name", as: String.self)),
            targetType: try row.decode(column: "target_type", as: String.self),
            targetID: try row.decode(column: "target_id", as: String.self),
            targetName: try row.decode(column: "target_name", as: String.self),
            details: try row.decode(column: "details", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Date.self))
    }

    /// Audit events after the keyset cursor, oldest first.
    public func auditEvents(after cursor: String?, limit: Int, filter: ListFilter) async throws
        -> ([AuditEvent], String?)
    {
        var query = database.sql.select().column("*").from("audit_events")
        if let range = filter.createdAt { query = range.apply(to: query, column: "created_at") }
        if let user = filter.userID { query = query.where("actor_id", .equal, user) }
        return try await ListSort.byID.keyset.read(query, after: cursor, limit: limit, decode: Self.decodeAudit)
    }

    // MARK: Courses

    static func decodeCourse(_ row: any SQLRow) throws -> CourseRecord {
        let access = try row.decode(column: "vm_access", as: String.self)
        return CourseRecord(
            id: try row.decode(column: "id", as: Int64.self),
            name: try row.decode(column: "name", as: String.self),
            description: try row.decode(column: "description", as: String.self),
            templateID: try row.decode(column: "template_id", as: String.self),
            maxLabs: try row.decode(column: "max_labs", as: Int.self),
            vmAccess: try StorageError.json([VMAccess].self, access, column: "vm_access"),
            anonymousSmartRDP: try row.decode(column: "anonymous_smart_rdp", as: Bool.self),
            ssoRequired: try row.decode(column: "sso_required", as: Bool.self),
            supportURL: try row.decode(column: "support_url", as: String?.self),
            customContentEnabled: try row.decode(column: "custom_content_enabled", as: Bool.self),
            customTitle: try row.decode(column: "custom_title", as: String?.self),
            customContent: try row.decode(column: "custom_content", as: String?.self),
            customContentIsDefault: try row.decode(column: "custom_content_is_default", as: Bool.self),
            owner: Actor(
                id: try row.decode(column: "owner_id", as: String.self),
                name: try row.decode(column: "owner_name", as: String.self)),
            lastUpdatedBy: Actor(
                id: try row.decode(column: "updated_by_id", as: String.self),
                name: try row.decode(column: "updated_by_name", as: String.self)),
            createdAt: try row.decode(column: "created_at", as: Date.self),
            updatedAt: try row.decode(column: "updated_at", as: Date.self),
            lastDeployed: try row.decode(column: "last_deployed", as: Date?.self),
            classCount: try row.decode(column: "class_count", as: Int.self))
    }

    static func courseColumns(_ course: CourseRecord) -> [(String, any SQLExpression)] {
        let access = String(decoding: (try? JSONEncoder().encode(course.vmAccess)) ?? Data("[]".utf8), as: UTF8.self)
        return [
            ("name", SQLBind(course.name)), ("description", SQLBind(course.description)),
            ("template_id", SQLBind(course.templateID)), ("max_labs", SQLBind(course.maxLabs)),
            ("vm_access", SQLBind(access)), ("anonymous_smart_rdp", SQLBind(course.anonymousSmartRDP)),
            ("sso_required", SQLBind(course.ssoRequired)), ("support_url", SQLBind(course.supportURL)),
            ("custom_content_enabled", SQLBind(course.customContentEnabled)),
            ("custom_title", SQLBind(course.customTitle)), ("custom_content", SQLBind(course.customContent)),
            ("custom_content_is_default", SQLBind(course.customContentIsDefault)),
            ("owner_id", SQLBind(course.owner.id)), ("owner_name", SQLBind(course.owner.name)),
            ("updated_by_id", SQLBind(course.lastUpdatedBy.id)), ("updated_by_name", SQLBind(course.lastUpdatedBy.name)),
            ("created_at", SQLBind(course.createdAt)), ("updated_at", SQLBind(course.updatedAt)),
            ("last_deployed", SQLBind(course.lastDeployed)), ("class_count", SQLBind(course.classCount)),
        ]
    }

    public func createCourse(_ draft: CourseRecord, now: Date) async throws -> CourseRecord {
        try await write { db in
            var course = draft
            course.id = try await Self.nextID("courses", on: db)
            let columns = Self.courseColumns(course)
            try await db.insert(into: "courses").columns(["id"] + columns.map(\.0))
                .values([SQLBind(course.id)] + columns.map(\.1)).run()
            let target = (type: "course", id: course.id, name: course.name)
            try await Self.audit(.createTrainingCourse, actor: course.owner, target: target, now: now, on: db)
            try await Self.audit(
                .addTemplateToTrainingCourse, actor: course.owner, target: target, details: "template \(course.templateID)",
                now: now, on: db)
            return course
        }
    }

    public func course(_ id: Int64) async throws -> CourseRecord? {
        try await database.sql.select().column("*").from("courses").where("id", .equal, id).first()
            .map(Self.decodeCourse)
    }

    /// Applies `change` to the course in one transaction (it may throw to refuse), with its audit entries.
    public func updateCourse(
        _ id: Int64, actor: Actor, now: Date, _ change: @escaping @Sendable (inout CourseRecord) throws -> Void
    ) async throws -> CourseRecord? {
        try await write { db in
            guard let current = try await db.select().column("*").from("courses").where("id", .equal, id)
                .lockingClause(ForUpdate()).first().map(Self.decodeCourse)
            else { return nil }
            var course = current
            try change(&course)
            course.lastUpdatedBy = actor
            course.updatedAt = now
            var update = db.update("courses")
            for (column, value) in Self.courseColumns(course) { update = update.set(SQLIdentifier(column), to: value) }
            try await update.where("id", .equal, id).run()
            let target = (type: "course", id: id, name: course.name)
            if course.templateID != current.templateID {
                try await Self.audit(
                    .removeTemplateFromTrainingCourse, actor: actor, target: target,
                    details: "template \(current.templateID)", now: now, on: db)
                try await Self.audit(
                    .addTemplateToTrainingCourse, actor: actor, target: target, details: "template \(course.templateID)",
                    now: now, on: db)
            }
            try await Self.audit(.updateTrainingCourse, actor: actor, target: target, now: now, on: db)
            return course
        }
    }

    public enum DeleteOutcome: Sendable, Equatable {
        case deleted
        case notFound
        case hasClasses(Int)
    }

    public func deleteCourse(_ id: Int64, actor: Actor, now: Date) async throws -> DeleteOutcome {
        try await write { db in
            guard let course = try await db.select().column("*").from("courses").where("id", .equal, id)
                .lockingClause(ForUpdate()).first().map(Self.decodeCourse)
            else { return .notFound }
            guard course.classCount == 0 else { return .hasClasses(course.classCount) }
            try await db.delete(from: "courses").where("id", .equal, id).run()
            try await Self.audit(
                .deleteTrainingCourse, actor: actor, target: (type: "course", id: id, name: course.name), now: now, on: db)
            return .deleted
        }
    }

    /// A page of courses for the REST list, and how many match in all.
    public func courses(_ filter: ListFilter, page: SkytapPage) async throws -> ([CourseRecord], Int) {
        try await coursePages.value(for: ListKey(filter: filter, count: page.count, offset: page.offset)) {
            try await readCourses(filter, page: page)
        }
    }

    func readCourses(_ filter: ListFilter, page: SkytapPage) async throws -> ([CourseRecord], Int) {
        let total = try await filter.applyCourses(to: database.sql.select().column(SQLFunction("COUNT", args: SQLLiteral.all), as: "n").from("courses"))
            .first()?.decode(column: "n", as: Int.self) ?? 0
        var query = filter.applyCourses(to: database.sql.select().column("*").from("courses"))
        query = filter.sort.apply(to: query)
        let rows = try await query.limit(page.count).offset(page.offset).all().map(Self.decodeCourse)
        return (rows, total)
    }

    /// Courses after the keyset cursor, by id.
    /// Courses after the keyset cursor, in the filter's sort order (then id); and the cursor after the last.
    public func courses(after cursor: String?, limit: Int, filter: ListFilter) async throws -> ([CourseRecord], String?) {
        try await filter.sort.keyset.read(
            filter.applyCourses(to: database.sql.select().column("*").from("courses")), after: cursor, limit: limit,
            decode: Self.decodeCourse)
    }
}
