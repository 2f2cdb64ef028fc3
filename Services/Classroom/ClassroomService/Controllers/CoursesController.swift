import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServerKit

/// Templates and courses (`.json` optional everywhere), and scheduling a class from a course.
struct CoursesController: Sendable {
    let dependencies: ClassroomDependencies
    var representations: Representations { Representations(dependencies.settings) }

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        for path in ["/v2/templates", "/v2/templates.json"] { router.get(RouterPath(path), use: templates) }
        router.get("/v2/templates/:id", use: template)
        for path in ["/v2/courses", "/v2/courses.json"] {
            router.get(RouterPath(path), use: list)
            router.post(RouterPath(path), use: create)
        }
        for path in ["/courses", "/courses.json"] { router.post(RouterPath(path), use: create) }
        router.get("/v2/courses/:id", use: show)
        router.put("/v2/courses/:id", use: update)
        router.delete("/v2/courses/:id", use: delete)
        for path in ["/v2/courses/:id/classes", "/v2/courses/:id/classes.json"] {
            router.get(RouterPath(path), use: classes)
            router.post(RouterPath(path), use: schedule)
        }
        for path in ["/courses/:id/classes", "/courses/:id/classes.json"] { router.post(RouterPath(path), use: schedule) }
    }

    // MARK: Templates

    @Sendable func templates(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.caller(request)
        let all = try await dependencies.templates().values.sorted { $0.id < $1.id }
        let paging = try SkytapPage(request.query)
        let page = Array(all.dropFirst(paging.offset).prefix(paging.count))
        return JSONResponse.make(
            json: .array(page.map(representations.template)),
            headers: paging.headers(returned: page.count, total: all.count, request: request))
    }

    @Sendable func template(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.caller(request)
        var id = context.parameters.get("id") ?? ""
        if id.hasSuffix(".json") { id.removeLast(5) }
        guard let template = try await dependencies.templates()[id] else {
            throw ClassroomError.noSuchTemplate("\(id)")
        }
        return JSONResponse.make(json: representations.template(template))
    }

    // MARK: Courses

    func course(_ context: BasicRequestContext) async throws -> CourseRecord {
        let id = try PathID.parse(context, what: "course")
        guard let course = try await dependencies.repository.course(id) else {
            throw ClassroomError.noSuchCourse("\(id)")
        }
        return course
    }

    static func requireEditor(_ caller: AuthenticatedUser, owner: Actor, what: String) throws {
        guard caller.isAdmin || caller.id == owner.id else {
            throw ServiceFailure(.forbidden, "only the owner of this \(what) or an administrator may change it")
        }
    }

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let query = request.query
        let filter = try ListFilter.parse(query, resource: .courses, now: dependencies.now())
        let paging = try SkytapPage(query)
        let templates = (try? await dependencies.templates()) ?? [:]
        // The templates are part of the body (template_missing, templates): a change of the catalog is a new key.
        let catalog = templates.keys.sorted().joined(separator: ",")
        return try await dependencies.list(request, caller: caller, filter: filter, page: paging, variant: catalog) {
            [dependencies, representations] in
            let (courses, total) = try await dependencies.repository.courses(filter, page: paging)
            return (.array(courses.map { representations.course($0, templates: templates, caller: caller) }), courses.count, total)
        }
    }

    @Sendable func show(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let course = try await course(context)
        let templates = (try? await dependencies.templates()) ?? [:]
        return JSONResponse.make(json: representations.course(course, templates: templates, caller: caller))
    }

    @Sendable func create(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let parameters = try await SkytapParameters.read(&request)
        let templates = try await dependencies.templates()
        let now = dependencies.now()
        let actor = Actor(caller)
        var course = CourseRecord(
            id: 0, name: "", description: "", templateID: "", maxLabs: 20, vmAccess: [], anonymousSmartRDP: false,
            ssoRequired: false, supportURL: nil, customContentEnabled: false, customTitle: nil, customContent: nil,
            customContentIsDefault: false, owner: actor, lastUpdatedBy: actor, createdAt: now, updatedAt: now,
            lastDeployed: nil, classCount: 0)
        try CourseInput(parameters: parameters, templates: templates, ssoEnabled: dependencies.settings.ssoEnabled)
            .apply(to: &course, creating: true)
        course = try await dependencies.repository.createCourse(course, now: now)
        context.logger.info("course created", metadata: ["course": "\(course.id)", "template": "\(course.templateID)"])
        return JSONResponse.make(json: representations.course(course, templates: templates, caller: caller))
    }

    @Sendable func update(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let existing = try await course(context)
        try Self.requireEditor(caller, owner: existing.owner, what: "course")
        let parameters = try await SkytapParameters.read(&request)
        let templates = try await dependencies.templates()
        let input = CourseInput(parameters: parameters, templates: templates, ssoEnabled: dependencies.settings.ssoEnabled)
        guard
            let course = try await dependencies.repository.updateCourse(
                existing.id, actor: Actor(caller), now: dependencies.now(), { try input.apply(to: &$0, creating: false) })
        else { throw ClassroomError.noSuchCourse("\(existing.id)") }
        context.logger.info("course updated", metadata: ["course": "\(course.id)"])
        return JSONResponse.make(json: representations.course(course, templates: templates, caller: caller))
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let existing = try await course(context)
        try Self.requireEditor(caller, owner: existing.owner, what: "course")
        switch try await dependencies.repository.deleteCourse(existing.id, actor: Actor(caller), now: dependencies.now()) {
        case .notFound:
            throw ClassroomError.noSuchCourse("\(existing.id)")
        case .hasClasses(let count):
            throw ServiceFailure(
                .conflict, "the course cannot be deleted while it has classes (class_count is \(count))",
                field: "class_count")
        case .deleted:
            context.logger.info("course deleted", metadata: ["course": "\(existing.id)"])
            let templates = (try? await dependencies.templates()) ?? [:]
            return JSONResponse.make(json: representations.course(existing, templates: templates, caller: caller))
        }
    }

    // MARK: Classes of a course

    @Sendable func classes(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let course = try await course(context)
        let query = request.query
        var filter = try ListFilter.parse(query, resource: .classes, now: dependencies.now())
        filter.courseID = course.id
        let paging = try SkytapPage(query)
        return try await dependencies.list(request, caller: caller, filter: filter, page: paging) {
            [dependencies, representations, filter] in
            let (classes, total) = try await dependencies.repository.classes(filter, page: paging)
            return (.array(classes.map { representations.klass($0, caller: caller) }), classes.count, total)
        }
    }

    @Sendable func schedule(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let course = try await course(context)
        let parameters = try await SkytapParameters.read(&request)
        let now = dependencies.now()
        let templates = (try? await dependencies.templates()) ?? [:]
        guard parameters.has("start_at") else {
            throw ServiceFailure(.invalid, "start_at is required (YYYY/MM/DD HH:MM:SS)", field: "start_at")
        }
        var draft = ClassRecord(
            id: 0, courseID: course.id, name: course.name, description: course.description, owner: Actor(caller),
            startAt: now, endAt: nil, timeZone: dependencies.settings.defaultTimeZone, provisionHours: 24, runHours: 24,
            cleanupHours: nil, shutdownHours: nil, dailyStartupTime: nil, dailyShutdownTime: nil, startTime: nil,
            endTime: nil, runtimeLimit: nil, expirationDate: nil, passwordHash: nil,
            accessCode: Secrets.token(length: 12), state: .incomplete, errorMessage: nil, labCount: 0,
            labsCreatedAt: nil, labsRunAt: nil, labsShutdownAt: nil, labsDeletedAt: nil, createdAt: now, updatedAt: now,
            progress: .none, labTarget: nil, nextDueAt: nil, deleting: false,
            region: templates[course.templateID]?.region ?? "")
        try ClassInput(parameters: parameters, course: course, now: now).apply(to: &draft, creating: true)
        guard let record = try await dependencies.repository.createClass(draft, actor: Actor(caller), now: now) else {
            throw ClassroomError.noSuchCourse("\(course.id)")
        }
        context.logger.info("class scheduled", metadata: ["class": "\(record.id)", "course": "\(course.id)"])
        dependencies.scheduler.wake()
        return JSONResponse.make(json: representations.klass(record, caller: caller))
    }
}
