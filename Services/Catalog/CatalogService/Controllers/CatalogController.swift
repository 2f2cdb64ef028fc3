import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServerKit

/// The Educates workshop catalog (`educates-workshop-catalog.txt`): environments with their workshops and counts,
/// the workshops, one environment's status, and the admin-only portal reload.
struct CatalogController: Sendable {
    let snapshots: SnapshotCache
    let sessions: SessionPeer
    let authenticator: any Authenticating
    let reload: @Sendable (String) async throws -> ApplyResult
    let rendered = RenderedCatalog()

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/workshops/catalog/environments", use: environments)
        router.get("/workshops/catalog/workshops", use: workshops)
        router.get("/workshops/environment/:env/status", use: status)
        router.post("/workshops/catalog/reload", use: reloadPortal)
    }

    static func portalJSON(_ snapshot: PortalSnapshot, allocated: Int) -> JSONValue {
        let portal = snapshot.portal
        return .object([
            ("name", .string(portal.name)),
            ("uid", .string(portal.uid)),
            ("generation", .int(snapshot.generation)),
            ("url", .string(portal.url)),
            ("labels", .map(portal.labels)),
            ("sessions", .object([
                ("maximum", .int(portal.sessions.maximum)),
                ("registered", .int(portal.sessions.registered)),
                ("anonymous", .int(portal.sessions.anonymous)),
                ("allocated", .int(allocated)),
            ])),
        ])
    }

    static func workshopMembers(_ environment: CatalogEnvironment) -> [(String, JSONValue)] {
        let workshop = environment.workshop
        return [
            ("name", .string(workshop.name)),
            ("id", .string(workshop.id)),
            ("title", .string(workshop.title)),
            ("description", .string(workshop.description)),
            ("vendor", .string(workshop.vendor)),
            ("authors", .strings(workshop.authors)),
            ("difficulty", .string(workshop.difficulty)),
            ("duration", .string(workshop.duration)),
            ("tags", .strings(workshop.tags)),
            ("labels", .map(Self.labels(environment))),
            ("logo", .string(workshop.logo)),
            ("url", .string(workshop.url)),
        ]
    }

    /// The workshop's labels, then the environment's (later wins).
    static func labels(_ environment: CatalogEnvironment) -> [String: String] {
        environment.workshop.labels.merging(environment.settings.labels) { _, new in new }
    }

    static func countsMembers(_ environment: CatalogEnvironment, counts: SessionsOverview.EnvironmentCounts?)
        -> [(String, JSONValue)]
    {
        [
            ("duration", .int(environment.settings.expires)),
            ("capacity", .int(environment.settings.capacity)),
            ("reserved", .int(environment.settings.reserved)),
            ("allocated", .int(counts?.allocated ?? 0)),
            ("available", .int(counts?.available ?? 0)),
        ]
    }

    static func sessionsJSON(_ sessions: [SessionSummary]) -> JSONValue {
        .array(
            sessions.map { session in
                var members: [(String, JSONValue)] = [
                    ("name", .string(session.name)),
                    ("state", .string(session.state.rawValue)),
                    ("namespace", .string(session.namespace)),
                    ("user", .string(session.user)),
                    ("started", .string(EducatesTime.string(session.started))),
                ]
                if session.expires != nil {
                    members.append(("expires", .string(EducatesTime.string(session.expires))))
                    members.append(("countdown", .int(session.countdown)))
                    members.append(("extendable", .bool(session.extendable)))
                }
                return .object(members)
            })
    }

    static func flag(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["true", "1", "yes"].contains(value.lowercased())
    }

    // MARK: Environments

    @Sendable func environments(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await request.authenticatedUser(authenticator)
        let query = request.query
        let privileged = caller.isRobotOrAdmin
        var states: Set<EnvironmentState> = [.running]
        var includeSessions = false
        if privileged {
            let wanted = Set(query.all("state").compactMap { EnvironmentState(rawValue: $0.uppercased()) })
            if !wanted.isEmpty { states = wanted }
            includeSessions = Self.flag(query["sessions"])
        }
        // `name` and `labels[…]` keep a literal `+` (Educates parses them without form decoding).
        let raw = FormParameters(request.uri.query, plusAsSpace: false)
        let names = Set(raw.all("name"))
        var labelFilters: [String: String] = [:]
        for item in raw.items where item.name.hasPrefix("labels[") && item.name.hasSuffix("]") {
            let key = String(item.name.dropFirst(7).dropLast())
            // A key that is not \w+ is ignored, as the real portal does (its pattern never matches it).
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
            labelFilters[key] = item.value
        }

        let snapshot = try await snapshots.current()
        let overview = try await sessions.overview(includeSessions)
        let render = {
            JSONResponse.body(
                Self.environmentsJSON(
                    snapshot: snapshot, overview: overview, states: states, names: names, labelFilters: labelFilters,
                    includeSessions: includeSessions))
        }
        if includeSessions { return JSONResponse.make(body: render()) }
        let key = RenderedCatalog.Key(route: "environments", privileged: privileged, query: request.uri.query ?? "")
        return JSONResponse.make(
            body: rendered.body(for: key, generation: snapshot.generation, overview: overview, render: render))
    }

    static func environmentsJSON(
        snapshot: PortalSnapshot, overview: SessionsOverview.Result, states: Set<EnvironmentState>, names: Set<String>,
        labelFilters: [String: String], includeSessions: Bool
    ) -> JSONValue {
        var list: [JSONValue] = []
        for environment in snapshot.environments where states.contains(environment.state) {
            if !names.isEmpty && !names.contains(environment.workshop.name) { continue }
            let labels = Self.labels(environment)
            if labelFilters.contains(where: { labels[$0.key] != $0.value }) { continue }
            let counts = overview.environments[environment.name]
            var members: [(String, JSONValue)] = [
                ("name", .string(environment.name)),
                ("state", .string(environment.state.rawValue)),
                ("workshop", .object(Self.workshopMembers(environment))),
            ]
            members += Self.countsMembers(environment, counts: counts)
            if includeSessions { members.append(("sessions", Self.sessionsJSON(counts?.sessions ?? []))) }
            list.append(.object(members))
        }
        return .object([
            ("portal", Self.portalJSON(snapshot, allocated: overview.allocated)),
            ("environments", .array(list)),
        ])
    }

    // MARK: Workshops

    @Sendable func workshops(_ request: Request, context: BasicRequestContext) async throws -> Response {
        _ = try await request.authenticatedUser(authenticator)
        let snapshot = try await snapshots.current()
        let overview = try await sessions.overview(false)
        let key = RenderedCatalog.Key(route: "workshops", privileged: false, query: "")
        return JSONResponse.make(
            body: rendered.body(for: key, generation: snapshot.generation, overview: overview) {
                JSONResponse.body(Self.workshopsJSON(snapshot: snapshot, overview: overview))
            })
    }

    static func workshopsJSON(snapshot: PortalSnapshot, overview: SessionsOverview.Result) -> JSONValue {
        let list: [JSONValue] = snapshot.environments.filter { $0.state == .running }.map { environment in
            .object(
                Self.workshopMembers(environment) + [
                    ("environment", .object(
                        [("name", .string(environment.name)), ("state", .string(environment.state.rawValue))]
                            + Self.countsMembers(environment, counts: overview.environments[environment.name])))
                ])
        }
        return .object([
            ("portal", Self.portalJSON(snapshot, allocated: overview.allocated)), ("workshops", .array(list)),
        ])
    }

    // MARK: Status

    @Sendable func status(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await request.authenticatedUser(authenticator)
        guard caller.isRobotOrAdmin else { throw ServiceFailure(.forbidden, "Status requests not permitted") }
        let name = context.parameters.get("env") ?? ""
        let snapshot = try await snapshots.current()
        guard let environment = snapshot.environment(named: name) else {
            throw CatalogError.environmentDoesNotExist
        }
        let includeSessions = Self.flag(request.query["sessions"])
        let overview = try await sessions.overview(includeSessions)
        let counts = overview.environments[environment.name]
        var members: [(String, JSONValue)] = [
            ("name", .string(environment.name)),
            ("state", .string(environment.state.rawValue)),
            ("workshop", .object(Self.workshopMembers(environment))),
        ]
        if includeSessions { members.append(("sessions", Self.sessionsJSON(counts?.sessions ?? []))) }
        members += Self.countsMembers(environment, counts: counts)
        return JSONResponse.make(json: .object(members))
    }

    // MARK: Reload

    @Sendable func reloadPortal(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let caller = try await request.authenticatedUser(authenticator)
        guard caller.isAdmin else { throw ServiceFailure(.forbidden, "only administrators may reload the portal") }
        let result: ApplyResult
        do {
            result = try await reload("REST by \(caller.username)")
        } catch let error as PortalDefinitionError {
            throw ServiceFailure(.invalid, error.description, field: error.field)
        }
        return JSONResponse.make(
            json: .object([
                ("changed", .bool(result.changed)),
                ("generation", .int(result.generation)),
                ("created", .strings(result.created)),
                ("stopping", .strings(result.stopping)),
            ]))
    }
}
