import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import ServerKit

/// Classes, their labs and their lab environments (`.json` optional everywhere).
struct ClassesController: Sendable {
    let dependencies: ClassroomDependencies
    var representations: Representations { Representations(dependencies.settings) }

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        for path in ["/v2/classes", "/v2/classes.json"] { router.get(RouterPath(path), use: list) }
        router.get("/v2/classes/:id", use: show)
        router.put("/v2/classes/:id", use: update)
        router.delete("/v2/classes/:id", use: delete)
        for path in ["/v2/classes/:id/labs", "/v2/classes/:id/labs.json"] {
            router.get(RouterPath(path), use: labs)
            router.post(RouterPath(path), use: addLab)
        }
        for path in ["/v2/classes/:id/labs/create_multiple", "/v2/classes/:id/labs/create_multiple.json"] {
            router.post(RouterPath(path), use: addLabs)
        }
        for path in ["/v2/classes/:id/configurations", "/v2/classes/:id/configurations.json"] {
            router.get(RouterPath(path), use: configurations)
        }
        for prefix in ["/v2/labs/:id", "/v2/lab/:id"] {
            router.get(RouterPath(prefix), use: lab)
            router.put(RouterPath(prefix), use: updateLab)
            router.delete(RouterPath(prefix), use: deleteLab)
        }
    }

    func klass(_ context: BasicRequestContext) async throws -> ClassRecord {
        let id = try PathID.parse(context, what: "class")
        guard let record = try await dependencies.repository.klass(id) else {
            throw ClassroomError.noSuchClass("\(id)")
        }
        return record
    }

    func course(of record: ClassRecord) async throws -> CourseRecord {
        guard let course = try await dependencies.repository.course(record.courseID) else {
            throw ServiceFailure(.notFound, "the course of class \(record.id) is gone")
        }
        return course
    }

    // MARK: Classes

    @Sendable func list(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let query = request.query
        let filter = try ListFilter.parse(query, resource: .classes, now: dependencies.now())
        let paging = try SkytapPage(query)
        return try await dependencies.list(request, caller: caller, filter: filter, page: paging) { [dependencies, representations] in
            let (classes, total) = try await dependencies.repository.classes(filter, page: paging)
            return (.array(classes.map { representations.klass($0, caller: caller) }), classes.count, total)
        }
    }

    @Sendable func show(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        return JSONResponse.make(json: representations.klass(try await klass(context), caller: caller))
    }

    @Sendable func update(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let existing = try await klass(context)
        try CoursesController.requireEditor(caller, owner: existing.owner, what: "class")
        guard !existing.deleting else { throw ServiceFailure(.conflict, "the class is being deleted") }
        let course = try await course(of: existing)
        let parameters = try await SkytapParameters.read(&request)
        // A class stays in the course it was made in: another course_id is refused, never ignored.
        if parameters.has("course_id"), !parameters.isNull("course_id") {
            let given = try parameters.string("course_id")?.trimmingCharacters(in: .whitespaces)
            guard given == String(existing.courseID) else {
                throw ServiceFailure(
                    .invalid, "course_id cannot be changed: a class stays in course \(existing.courseID)",
                    field: "course_id")
            }
        }
        let now = dependencies.now()
        let input = ClassInput(parameters: parameters, course: course, now: now)
        guard
            let record = try await dependencies.repository.updateClass(
                existing.id, actor: Actor(caller), now: now, { try input.apply(to: &$0, creating: false) })
        else { throw ClassroomError.noSuchClass("\(existing.id)") }
        context.logger.info("class updated", metadata: ["class": "\(record.id)"])
        dependencies.scheduler.wake()
        return JSONResponse.make(json: representations.klass(record, caller: caller))
    }

    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let existing = try await klass(context)
        try CoursesController.requireEditor(caller, owner: existing.owner, what: "class")
        switch try await dependencies.repository.deleteClass(existing.id, actor: Actor(caller), now: dependencies.now()) {
        case .notFound:
            throw ClassroomError.noSuchClass("\(existing.id)")
        case .deleted:
            context.logger.info("class deleted", metadata: ["class": "\(existing.id)"])
            var gone = existing
            gone.state = .pendingDeletion
            return JSONResponse.make(json: representations.klass(gone, caller: caller))
        case .pending(let record):
            context.logger.info("class deleting; its lab environments go first", metadata: ["class": "\(existing.id)"])
            dependencies.scheduler.wake()
            return JSONResponse.make(json: representations.klass(record, caller: caller))
        }
    }

    // MARK: Labs

    func labJSON(_ labs: [LabRecord], course: CourseRecord) async -> [JSONValue] {
        let templates = (try? await dependencies.templates()) ?? [:]
        return labs.map {
            representations.lab($0, template: templates[course.templateID], templateID: course.templateID)
        }
    }

    @Sendable func labs(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.caller(request)
        let record = try await klass(context)
        let course = try await course(of: record)
        let labs = try await dependencies.repository.labs(classID: record.id)
        let paging = try SkytapPage(request.query)
        let page = Array(labs.dropFirst(paging.offset).prefix(paging.count))
        return JSONResponse.make(
            json: .array(await labJSON(page, course: course)),
            headers: paging.headers(returned: page.count, total: labs.count, request: request))
    }

    static func labName(_ value: ParameterValue?, field: String) throws -> String {
        guard let text = value?.text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw ServiceFailure(.invalid, "\(field) is required", field: field)
        }
        guard text.count <= 64 else { throw ServiceFailure(.invalid, "\(field) must be at most 64 characters", field: field) }
        return text
    }

    func add(_ names: [String], to record: ClassRecord, caller: AuthenticatedUser) async throws -> [LabRecord] {
        try CoursesController.requireEditor(caller, owner: record.owner, what: "class")
        switch try await dependencies.repository.addLabs(
            classID: record.id, names: names, actor: Actor(caller), now: dependencies.now())
        {
        case .success(let labs):
            dependencies.scheduler.wake()
            return labs
        case .failure(.classNotFound):
            throw ClassroomError.noSuchClass("\(record.id)")
        case .failure(.classDeleting):
            throw ServiceFailure(.conflict, "the class is being deleted")
        case .failure(.classEnded):
            throw ServiceFailure(.invalid, "labs cannot be added after the class has ended", field: "class_id")
        case .failure(.tooMany(let maximum, let existing)):
            throw ServiceFailure(
                .invalid,
                "the class would have \(existing + names.count) labs; its course allows at most \(maximum) (max_labs)",
                field: "max_labs")
        }
    }

    @Sendable func addLab(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let record = try await klass(context)
        let parameters = try await SkytapParameters.read(&request)
        let name = try Self.labName(parameters.values["name"], field: "name")
        let labs = try await add([name], to: record, caller: caller)
        let course = try await course(of: record)
        context.logger.info("lab added", metadata: ["class": "\(record.id)", "lab": "\(labs[0].id)"])
        return JSONResponse.make(json: await labJSON(labs, course: course)[0])
    }

    @Sendable func addLabs(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let record = try await klass(context)
        let parameters = try await SkytapParameters.read(&request)
        let items: [ParameterValue]
        if case .array(let array) = parameters.values["_json"] {
            items = array
        } else if let labs = try parameters.array("labs") {
            items = labs
        } else {
            throw ServiceFailure(.invalid, "the body must be an array of {\"name\": …}", field: "labs")
        }
        guard !items.isEmpty else { throw ServiceFailure(.invalid, "at least one lab is required", field: "labs") }
        let names = try items.enumerated().map { index, item -> String in
            guard case .object(let fields) = item else {
                throw ServiceFailure(.invalid, "labs[\(index)] must be an object with a name", field: "name")
            }
            return try Self.labName(fields["name"], field: "name")
        }
        let labs = try await add(names, to: record, caller: caller)
        let course = try await course(of: record)
        context.logger.info("labs added", metadata: ["class": "\(record.id)", "count": "\(labs.count)"])
        return JSONResponse.make(json: .array(await labJSON(labs, course: course)))
    }

    func existingLab(_ context: BasicRequestContext) async throws -> (LabRecord, ClassRecord, CourseRecord) {
        let id = try PathID.parse(context, what: "lab")
        guard let lab = try await dependencies.repository.lab(id),
            let record = try await dependencies.repository.klass(lab.classID)
        else { throw ClassroomError.noSuchLab("\(id)") }
        return (lab, record, try await course(of: record))
    }

    @Sendable func lab(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.caller(request)
        let (lab, _, course) = try await existingLab(context)
        return JSONResponse.make(json: await labJSON([lab], course: course)[0])
    }

    @Sendable func updateLab(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let caller = try await dependencies.caller(request)
        let (lab, record, course) = try await existingLab(context)
        try CoursesController.requireEditor(caller, owner: record.owner, what: "class")
        let parameters = try await SkytapParameters.read(&request)
        let name = try Self.labName(parameters.values["name"], field: "name")
        switch try await dependencies.repository.renameLab(lab.id, to: name, actor: Actor(caller), now: dependencies.now()) {
        case .success(let updated):
            return JSONResponse.make(json: await labJSON([updated], course: course)[0])
        case .failure(.notFound):
            throw ClassroomError.noSuchLab("\(lab.id)")
        case .failure(.busy(let state)):
            throw LabBusy(message: "the lab cannot be edited while it is \(state.rawValue); try again shortly")
        case .failure(.classProvisioned):
            throw ServiceFailure(.invalid, "labs cannot be edited after the class is provisioned", field: "name")
        }
    }

    @Sendable func deleteLab(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await dependencies.caller(request)
        let (lab, record, _) = try await existingLab(context)
        try CoursesController.requireEditor(caller, owner: record.owner, what: "class")
        switch try await dependencies.repository.removeLab(lab.id, actor: Actor(caller), now: dependencies.now()) {
        case .success:
            context.logger.info("lab removed", metadata: ["class": "\(record.id)", "lab": "\(lab.id)"])
            dependencies.scheduler.wake()
            return Response(status: .ok)
        case .failure(.notFound), .failure(.classProvisioned):
            throw ClassroomError.noSuchLab("\(lab.id)")
        case .failure(.busy(let state)):
            throw LabBusy(message: "the lab cannot be removed while it is \(state.rawValue); try again shortly")
        }
    }

    @Sendable func configurations(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await dependencies.caller(request)
        let record = try await klass(context)
        let course = try await course(of: record)
        let templates = (try? await dependencies.templates()) ?? [:]
        let labs = try await dependencies.repository.labs(classID: record.id).filter { $0.configurationID != nil }
        return JSONResponse.make(
            json: .array(labs.map {
                representations.configuration($0, template: templates[course.templateID], templateID: course.templateID)
            }))
    }
}

/// A lab in a transition: 423 with `Retry-After`.
struct LabBusy: KindedError, RetryableError {
    var message: String
    var kind: ErrorKind { .locked }
    var publicMessage: String { message }
    var retryAfterSeconds: Int? { 10 }
}
