import Contracts
import Foundation
import ServerKit
import Wire

/// session-service's wire methods: `identity.authenticate` for every service, the session counts and pages for
/// catalog- and report-service, and the lab environments of classroom-service.
extension SessionApplication {
    public static func wireRouter(_ dependencies: SessionDependencies) -> WireRouter {
        var router = WireRouter()
        router.register(IdentityAuthenticate.self) { params, _ in
            try await dependencies.authenticator.authenticate(params.authorization)
        }
        router.register(SessionsOverview.self) { params, _ in
            try await overview(dependencies, includeSessions: params.includeSessions)
        }
        router.register(SessionsPage.self) { params, _ in
            try await SessionPages.page(params, database: dependencies.sessions.database, now: dependencies.now())
        }
        router.register(LabsApply.self) { params, _ in
            let environment = try await applyLab(params, dependencies)
            return LabsApply.Result(environment: environment)
        }
        router.register(LabsStatus.self) { params, _ in
            guard params.labs.count <= LabsStatus.maximumLabs else {
                throw ServiceFailure(.badRequest, "labs: at most \(LabsStatus.maximumLabs) per call", field: "labs")
            }
            return LabsStatus.Result(environments: try await dependencies.labs.status(labs: params.labs))
        }
        return router
    }

    static func applyLab(_ params: LabsApply.Params, _ dependencies: SessionDependencies) async throws -> LabEnvironment? {
        guard !params.lab.isEmpty, params.lab.count <= 64, params.lab.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else {
            throw ServiceFailure(.badRequest, "lab must be 1 to 64 letters or digits", field: "lab")
        }
        guard !params.workshop.isEmpty else { throw ServiceFailure(.badRequest, "workshop is required", field: "workshop") }
        let environment = try await dependencies.labs.apply(params, now: dependencies.now())
        if let environment {
            dependencies.logger.info(
                "lab environment target set",
                metadata: ["lab": "\(params.lab)", "session": "\(environment.name)", "target": "\(params.target.rawValue)"])
        }
        dependencies.runtime.wake()
        return environment
    }

    /// The counts of `sessions.overview`, reused until this process writes again. On SQLite (one replica) that is
    /// exact; on PostgreSQL other replicas write too, so an answer is also reused for at most `maxAge`. Concurrent
    /// misses share one count.
    public struct OverviewCache: Sendable {
        let sessions: SessionRepository
        let cache: VersionedCache<Int, SessionsOverview.Result>

        init(sessions: SessionRepository, maxAge: Duration?) {
            self.sessions = sessions
            self.cache = VersionedCache(counter: sessions.changes, enabled: true, capacity: 1, maxAge: maxAge)
        }

        func get() async throws -> SessionsOverview.Result {
            let sessions = self.sessions
            return try await cache.value(for: 0) {
                let (allocated, counts, _) = try await sessions.overview(includeSessions: false)
                return SessionsOverview.Result(allocated: allocated, environments: counts)
            }
        }
    }

    static func overview(_ dependencies: SessionDependencies, includeSessions: Bool) async throws -> SessionsOverview.Result {
        if !includeSessions {
            return try await dependencies.counts.get()
        }
        let (allocated, counts, sessions) = try await dependencies.sessions.overview(includeSessions: includeSessions)
        var environments = counts
        if includeSessions {
            let snapshot = try? await dependencies.portal.current()
            let now = dependencies.now()
            for session in sessions {
                let summary = session.summary(
                    settings: snapshot?.environment(named: session.environment)?.settings, now: now)
                var entry = environments[session.environment] ?? .init(allocated: 0, available: 0, active: 0)
                entry.sessions = (entry.sessions ?? []) + [summary]
                environments[session.environment] = entry
            }
            for name in environments.keys where environments[name]?.sessions == nil {
                environments[name]?.sessions = []
            }
        }
        return SessionsOverview.Result(allocated: allocated, environments: environments)
    }
}
