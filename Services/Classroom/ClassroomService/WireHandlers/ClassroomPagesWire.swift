import Contracts
import Foundation
import ServerKit
import Wire

/// `courses.page`, `classes.page`, `labs.page` and `audit.page`: keyset-paged bulk reads for report-service, with
/// the REST lists' filters. The cursor is the last id of the page before. `labs.rows` is `labs.page` in the compact
/// row form (`RowPage`), which exports read.
enum ClassroomPagesWire {
    static func register(on router: inout WireRouter, dependencies: ClassroomDependencies) {
        router.register(CoursesPage.self) { params, _ in
            try await coursesPage(params, dependencies)
        }
        router.register(ClassesPage.self) { params, _ in
            try await classesPage(params, dependencies)
        }
        router.register(LabsPage.self) { params, _ in
            try await labsPage(params, dependencies)
        }
        // An export reads page after page: each page's successors are made while the exporter writes this one. A
        // page's rows are written as JSON beside the read of the next page (which needs only this one's cursor), so
        // the database is read without a pause.
        let readAhead = ReadAhead<PageRequest<ListFilters>, (json: Task<[UInt8], Never>, next: String?)>()
        router.register(LabRows.self) { params, _ in
            try await readAhead.page(
                params,
                read: { params in
                    let (rows, next, templates) = try await labJSONRows(params, dependencies)
                    return (Task { labRowPage(rows, next: next, templates: templates) }, next)
                },
                next: { page in
                    page.next.map { PageRequest(cursor: $0, limit: params.limit, filters: params.filters) }
                }
            ).json.value
        }
        router.register(AuditPage.self) { params, _ in
            try await auditPage(params, dependencies)
        }
    }

    static func coursesPage(_ params: PageRequest<ListFilters>, _ dependencies: ClassroomDependencies) async throws
        -> Page<CourseItem>
    {
        let (cursor, limit, filter) = try parse(params, resource: .courses, dependencies)
        let (courses, next) = try await dependencies.repository.courses(after: cursor, limit: limit, filter: filter)
        let templates = (try? await dependencies.templates()) ?? [:]
        let base = Representations(dependencies.settings)
        return page(courses, next: next) { course in
            let template = templates[course.templateID]
            let names = Dictionary(template?.vms.map { ($0.id, $0.name) } ?? [], uniquingKeysWith: { a, _ in a })
            return CourseItem(
                id: String(course.id), name: course.name, description: course.description,
                templateIDs: [course.templateID], templateMissing: template == nil, maxLabs: course.maxLabs,
                vmAccess: course.vmAccess.map {
                    CourseVMAccessItem(vmRef: base.vmURL($0.vm), name: names[$0.vm] ?? "", access: $0.access.rawValue)
                },
                anonymousSmartRDP: course.anonymousSmartRDP, ssoRequired: course.ssoRequired,
                customContentEnabled: course.customContentEnabled, customTitle: course.customTitle,
                customContent: course.customContent, customContentIsDefault: course.customContentIsDefault,
                classCount: course.classCount, createdAt: course.createdAt, lastDeployed: course.lastDeployed,
                ownerID: course.owner.id, ownerName: course.owner.name, ownerURL: base.userURL(course.owner.id),
                lastUpdatedByID: course.lastUpdatedBy.id, lastUpdatedByName: course.lastUpdatedBy.name,
                storage: template?.storage ?? 0)
        }
    }

    static func classesPage(_ params: PageRequest<ListFilters>, _ dependencies: ClassroomDependencies) async throws
        -> Page<ClassItem>
    {
        let (cursor, limit, filter) = try parse(params, resource: .classes, dependencies)
        let (classes, next) = try await dependencies.repository.classes(after: cursor, limit: limit, filter: filter)
        let base = Representations(dependencies.settings)
        return page(classes, next: next) { record in
            ClassItem(
                id: String(record.id), name: record.name, description: record.description,
                courseID: String(record.courseID), startAt: record.startAt, endAt: record.endAt,
                timeZone: record.timeZone, provisionHours: record.provisionHours, runHours: record.runHours,
                cleanupHours: record.cleanupHours, shutdownHours: record.shutdownHours,
                deleteAtEnd: record.deleteAtEnd, dailyStartupTime: record.dailyStartupTime,
                dailyShutdownTime: record.dailyShutdownTime, startTime: record.startTime, endTime: record.endTime,
                runtimeLimit: record.runtimeLimit, expirationDate: record.expirationDate,
                accessCode: record.accessCode, state: record.state.rawValue, createdAt: record.createdAt,
                ownerID: record.owner.id, ownerName: record.owner.name, ownerURL: base.userURL(record.owner.id),
                labCount: record.labCount, labsCreatedAt: record.labsCreatedAt, labsRunAt: record.labsRunAt,
                labsDeletedAt: record.labsDeletedAt, labsShutdownAt: record.labsShutdownAt,
                errorMessage: record.errorMessage, regions: record.region.isEmpty ? [] : [record.region])
        }
    }

    static func labsPage(_ params: PageRequest<ListFilters>, _ dependencies: ClassroomDependencies) async throws
        -> Page<LabItem>
    {
        let (cursor, limit, filter, classID) = try await labsScope(params, dependencies)
        let (labs, next) = try await dependencies.repository.labListings(
            after: cursor, limit: limit, classID: classID, filter: filter)
        let templates = try await labTemplates(of: labs.map(\.classID), dependencies)
        let base = Representations(dependencies.settings)
        return page(labs, next: next) { lab in
            let template = templates[lab.classID] ?? .missing
            return LabItem(
                id: String(lab.id), classID: String(lab.classID), name: lab.name,
                templateName: template.name, templateID: template.id, region: template.region,
                configurationID: lab.configurationID,
                desktopsURL: base.desktopsURL(configurationID: lab.configurationID, accessToken: lab.accessToken),
                state: lab.state.rawValue)
        }
    }

    /// `labs.page`'s rows for `labs.rows`, their cells written as JSON by the database (a million make an export).
    static func labJSONRows(_ params: PageRequest<ListFilters>, _ dependencies: ClassroomDependencies) async throws
        -> (rows: [LabJSONRow], next: String?, templates: [Int64: LabTemplate])
    {
        let (cursor, limit, filter, classID) = try await labsScope(
            params, maximumLimit: ClassroomPages.labRowsMaximumLimit, dependencies)
        let (rows, next) = try await dependencies.repository.labJSONRows(
            after: cursor, limit: limit, classID: classID, filter: filter,
            desktopsPrefix: Representations(dependencies.settings).desktopsPrefix)
        return (rows, next, try await labTemplates(of: rows.map(\.classID), dependencies))
    }

    /// The `RowPage` of `LabItem` rows that `labsPage` would make of the same labs: the database's JSON cells with
    /// the template's between them.
    static func labRowPage(_ rows: [LabJSONRow], next: String?, templates: [Int64: LabTemplate]) -> [UInt8] {
        let cells = templates.mapValues(\.jsonCells)
        let none = LabTemplate.missing.jsonCells
        var writer = RowPage.Writer(columns: LabItem.rowColumns, nextCursor: next, capacity: rows.count * 192)
        for row in rows {
            writer.appendRow { out in
                var head = row.head
                var tail = row.tail
                // `[…]` and `[…]`: the head without its `]`, the template's cells, the tail without its `[`.
                head.withUTF8 { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0.dropLast())) }
                out.append(contentsOf: cells[row.classID] ?? none)
                tail.withUTF8 { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0.dropFirst())) }
            }
        }
        return writer.finish()
    }

    /// A lab's template cells: the catalog's name (its id when the catalog no longer has it), id and region.
    struct LabTemplate: Sendable {
        var name: String
        var id: String
        var region: String

        /// The cells of a lab whose class or course is no longer found.
        static let missing = LabTemplate(name: "", id: "", region: "")

        /// `,"<name>","<id>","<region>",`: the cells as they go between a lab row's head and tail.
        var jsonCells: [UInt8] {
            var out: [UInt8] = [UInt8(ascii: ",")]
            for text in [name, id, region] {
                JSONString.write(text, to: &out)
                out.append(UInt8(ascii: ","))
            }
            return out
        }
    }

    /// The template cells of the labs of each class.
    static func labTemplates(of classIDs: [Int64], _ dependencies: ClassroomDependencies) async throws -> [Int64: LabTemplate] {
        let workshops = try await dependencies.repository.labWorkshops(Set(classIDs))
        let templates = (try? await dependencies.templates()) ?? [:]
        return workshops.mapValues { templateID in
            let template = templates[templateID]
            return LabTemplate(name: template?.name ?? templateID, id: templateID, region: template?.region ?? "")
        }
    }

    /// The cursor, limit, filter and class of a `labs.*` call; the class must exist.
    static func labsScope(
        _ params: PageRequest<ListFilters>, maximumLimit: Int = PageRequest<ListFilters>.maximumLimit,
        _ dependencies: ClassroomDependencies
    ) async throws -> (String?, Int, ListFilter, Int64?) {
        let (cursor, limit, filter) = try parse(params, resource: .labs, maximumLimit: maximumLimit, dependencies)
        guard let text = params.filters.classID else { return (cursor, limit, filter, nil) }
        guard let id = Int64(text) else { throw ServiceFailure(.badRequest, "class_id must be a class id", field: "class_id") }
        guard try await dependencies.repository.klass(id) != nil else {
            throw ClassroomError.noSuchClass("\(id)")
        }
        return (cursor, limit, filter, id)
    }

    static func auditPage(_ params: PageRequest<ListFilters>, _ dependencies: ClassroomDependencies) async throws
        -> Page<AuditItem>
    {
        let (cursor, limit, filter) = try parse(params, resource: .audit, dependencies)
        let (events, next) = try await dependencies.repository.auditEvents(after: cursor, limit: limit, filter: filter)
        return page(events, next: next) { event in
            AuditItem(
                id: String(event.id), activity: event.activity, userID: event.actor.id, userName: event.actor.name,
                targetType: event.targetType, targetID: event.targetID, targetName: event.targetName,
                details: event.details, createdAt: event.createdAt)
        }
    }

    static func parse(
        _ params: PageRequest<ListFilters>, resource: ListFilter.Resource,
        maximumLimit: Int = PageRequest<ListFilters>.maximumLimit, _ dependencies: ClassroomDependencies
    ) throws -> (String?, Int, ListFilter) {
        guard (1...maximumLimit).contains(params.limit) else {
            throw ServiceFailure(.badRequest, "limit must be from 1 to \(maximumLimit)", field: "limit")
        }
        let filter = try ListFilter.parse(
            query: params.filters.query, createdAt: params.filters.createdAt, lastDeployed: params.filters.lastDeployed,
            sort: params.filters.sort, resource: resource, now: dependencies.now())
        return (params.cursor, params.limit, filter)
    }

    static func page<Record, Item>(_ records: [Record], next: String?, _ item: (Record) -> Item) -> Page<Item> {
        Page(items: records.map(item), nextCursor: next)
    }
}
