import Contracts
import Foundation
import ServerKit
import Logging
import ServiceLifecycle
import Storage
import Synchronization

/// The session reaper and the provisioning worker (DESIGN §5, §6). Each pass, on the injected clock:
/// 1. allocated sessions whose time is up (unactivated ones after their activation timeout) go to STOPPING, and so
///    do activated ones nobody uses (an environment's `orphaned`);
/// 2. spares are topped up to `reserved` (to `initial` the first time) within capacity and the portal maximum, and
///    the spares of STOPPING environments are stopped;
/// 3. labs that are due are provisioned (failures are recorded on the session and retried with backoff);
/// 4. STOPPING sessions are torn down and become STOPPED;
/// 5. the environments of classroom labs are made, run, stopped or deleted towards the target classroom-service set.
/// Provisioning and teardown run beside the pass, at most `concurrency` at a time. With replicas, only the holder
/// of the `session-runtime` lease runs passes. After a restart the first pass catches up on everything that came due.
public final class LabRuntime: Service, Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(1)
        public var concurrency: Int = 16
        public var leaseTTL: Duration = .seconds(15)
        public var holder: String = LeasedLoop.processHolder()

        public init() {}
    }

    let sessions: SessionRepository
    let labs: LabEnvironmentRepository
    let identity: IdentityRepository
    let portal: PortalCache
    let provisioner: any Provisioner
    let leases: Leases
    let configuration: Configuration
    let now: @Sendable () -> Date
    let logger: Logger
    let work: Work
    let loop: LeasedLoop
    /// When expired tokens were last purged.
    private let lastTokenPurge = Mutex(Date.distantPast)

    public init(
        sessions: SessionRepository, labs: LabEnvironmentRepository, identity: IdentityRepository, portal: PortalCache,
        provisioner: any Provisioner, leases: Leases, configuration: Configuration = .init(),
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.sessions = sessions
        self.labs = labs
        self.identity = identity
        self.portal = portal
        self.provisioner = provisioner
        self.leases = leases
        self.configuration = configuration
        self.now = now
        self.logger = logger
        self.work = Work(limit: configuration.concurrency)
        self.loop = LeasedLoop(
            lease: "session-runtime", leases: leases, interval: configuration.interval, ttl: configuration.leaseTTL,
            holder: configuration.holder, failure: "lab runtime pass failed", failureLevel: .error, now: now,
            logger: logger)
    }

    /// Asks for a pass soon (after an allocation made a session to provision, or a termination).
    public func wake() { loop.wake() }

    /// Passes while this replica holds the `session-runtime` lease; the first after taking it adopts the labs left
    /// by the last holder. On shutdown, provisioning in flight finishes (each is bounded by the provisioner's own
    /// timeout) before the lease is given up.
    public func run() async throws {
        await loop.run(drain: { [work] in await work.waitForIdle() }) { [self] firstSinceAcquired in
            if firstSinceAcquired { try await adopt() }
            try await pass()
            try await purgeTokensHourly()
        }
    }

    private func purgeTokensHourly() async throws {
        let time = now()
        guard time.timeIntervalSince(lastTokenPurge.withLock { $0 }) > 3600 else { return }
        let purged = try await identity.purgeExpiredTokens(now: time)
        if purged > 0 { logger.info("expired tokens purged", metadata: ["count": "\(purged)"]) }
        lastTokenPurge.withLock { $0 = time }
    }

    /// After a restart: labs whose process is gone are provisioned again.
    public func adopt() async throws {
        for session in try await sessions.provisioned() {
            let request = await provisionRequest(for: session, action: "status")
            if await !provisioner.isAlive(request) {
                logger.warning("lab of a live session is gone; provisioning it again", metadata: ["session": "\(session.name)"])
                try await sessions.markNeedsProvisioning(session.name, now: now())
            }
        }
        for record in try await labs.running() {
            let request = await labRequest(record, action: "status")
            if await !provisioner.isAlive(request) {
                logger.warning(
                    "lab environment is no longer running; it will be run again if it should",
                    metadata: ["session": "\(record.environment.name)", "lab": "\(record.environment.lab)"])
                try await labs.reached(record.environment.name, phase: .stopped, url: nil, handle: record.handle, now: now())
            }
        }
    }

    /// One pass. Provisioning and teardown it starts continue in the background; `waitForIdle()` waits for them.
    public func pass() async throws {
        let time = now()
        let expired = try await sessions.expire(now: time)
        if !expired.isEmpty {
            logger.info("sessions expired", metadata: ["sessions": "\(expired.joined(separator: ","))"])
        }
        if let snapshot = try? await portal.current() {
            for environment in snapshot.environments where environment.settings.orphaned > 0 {
                let orphaned = try await sessions.stopOrphaned(
                    environment: environment.name, orphaned: environment.settings.orphaned, now: time)
                if !orphaned.isEmpty {
                    logger.info(
                        "orphaned sessions ended: nobody used them",
                        metadata: ["environment": "\(environment.name)", "sessions": "\(orphaned.joined(separator: ","))"])
                }
            }
            for environment in snapshot.environments {
                switch environment.state {
                case .running:
                    let (created, target) = try await sessions.topUp(environment, limits: snapshot.portal.sessions, now: time)
                    SessionMetrics.sparesWanted(environment: environment.name, target)
                    if !created.isEmpty {
                        logger.info(
                            "spares created",
                            metadata: ["environment": "\(environment.name)", "sessions": "\(created.joined(separator: ","))"])
                    }
                    let trimmed = try await sessions.trimSpares(environment, now: time)
                    if !trimmed.isEmpty {
                        logger.info(
                            "spares above the environment's reserved or capacity stopped",
                            metadata: ["environment": "\(environment.name)", "sessions": "\(trimmed.joined(separator: ","))"])
                    }
                case .stopping:
                    SessionMetrics.sparesWanted(environment: environment.name, 0)
                    let stopped = try await sessions.stopSpares(environment: environment.name, now: time)
                    if !stopped.isEmpty {
                        logger.info(
                            "spares of a stopping environment stopped",
                            metadata: ["environment": "\(environment.name)", "sessions": "\(stopped.joined(separator: ","))"])
                    }
                }
            }
        }
        for session in try await sessions.dueForProvisioning(now: time, limit: 256) {
            let request = await provisionRequest(for: session, action: "create")
            await work.start(session.name) { [self] in await provision(session, request: request) }
        }
        for session in try await sessions.dueForTeardown(limit: 256) {
            let request = await provisionRequest(for: session, action: "delete")
            await work.start("teardown:\(session.name)") { [self] in await teardown(session, request: request) }
        }
        for record in try await labs.due(now: time, limit: 256) {
            let request = await labRequest(record, action: "")
            await work.start("lab:\(record.environment.name)") { [self] in await converge(record, request: request) }
        }
    }

    func labRequest(_ record: LabEnvironmentRepository.Record, action: String) async -> ProvisionRequest {
        let workshop = try? await portal.current().environments.first { $0.workshop.name == record.environment.workshop }?
            .workshop
        return ProvisionRequest(
            action: action, session: record.environment.name, environment: "classroom",
            workshop: record.environment.workshop, owner: record.owner, parameters: workshop?.parameters ?? [],
            command: workshop?.command, handle: record.handle)
    }

    /// One step of a lab environment towards its target.
    func converge(_ record: LabEnvironmentRepository.Record, request: ProvisionRequest) async {
        let environment = record.environment
        var request = request
        do {
            let step = environment.nextStep
            guard let phase = step.reaches else { return }
            var url = environment.url
            var handle = record.handle
            switch step {
            case .forget, .none:
                break
            case .delete:
                request.action = "delete"
                try await provisioner.delete(request)
                url = nil
            case .create(let start):
                let snapshot = try? await portal.current()
                guard snapshot?.environments.contains(where: { $0.workshop.name == environment.workshop }) ?? false else {
                    throw ProvisionError("the workshop \(environment.workshop) is not in the catalog")
                }
                request.action = "create"
                request.start = start
                let result = try await provisioner.create(request)
                url = result.url
                handle = result.handle
            case .start:
                request.action = "start"
                let result = try await provisioner.start(request)
                url = result.url
                handle = result.handle
            case .stop:
                request.action = "stop"
                try await provisioner.stop(request)
            }
            try await labs.reached(environment.name, phase: phase, url: url, handle: handle, now: now())
            logger.info(
                "lab environment \(phase.rawValue)",
                metadata: ["session": "\(environment.name)", "lab": "\(environment.lab)", "url": "\(url ?? "")"])
        } catch {
            let message = (error as? ProvisionError)?.message ?? "\(error)"
            let delay = min(300, 5 * (1 << min(record.attempts, 6)))
            logger.error(
                "lab environment step failed; will retry",
                metadata: [
                    "session": "\(environment.name)", "lab": "\(environment.lab)", "target": "\(environment.target.rawValue)",
                    "error": "\(message)", "retry_in_s": "\(delay)",
                ])
            try? await labs.failed(
                environment.name, message: message, retryAt: now().addingTimeInterval(TimeInterval(delay)), now: now())
        }
    }

    /// Waits until no provisioning or teardown is running.
    public func waitForIdle() async { await work.waitForIdle() }

    func provisionRequest(for session: SessionRecord, action: String) async -> ProvisionRequest {
        let environment = try? await portal.current().environment(named: session.environment)
        var request = ProvisionRequest(
            action: action, session: session.name, environment: session.environment, workshop: session.workshop,
            owner: session.ownerName, parameters: session.parameters, command: environment?.workshop.command,
            handle: session.handle)
        request.password = Secrets.sessionPassword(key: sessions.key, session: session.name)
        return request
    }

    func provision(_ session: SessionRecord, request: ProvisionRequest) async {
        do {
            let result = try await provisioner.create(request)
            try await sessions.markProvisioned(session.name, url: result.url, handle: result.handle, now: now())
            logger.info("session ready", metadata: ["session": "\(session.name)", "url": "\(result.url)"])
        } catch {
            let message = (error as? ProvisionError)?.message ?? "\(error)"
            let delay = min(300, 5 * (1 << min(session.attempts, 6)))
            logger.error(
                "provisioning failed; will retry",
                metadata: ["session": "\(session.name)", "error": "\(message)", "retry_in_s": "\(delay)"])
            try? await sessions.markProvisionFailed(
                session.name, message: message, retryAt: now().addingTimeInterval(TimeInterval(delay)), now: now())
        }
    }

    func teardown(_ session: SessionRecord, request: ProvisionRequest) async {
        do {
            if session.provision != .pending || session.handle != nil {
                try await provisioner.delete(request)
            }
            try await sessions.markStopped(session.name, now: now())
            logger.info("session stopped", metadata: ["session": "\(session.name)"])
        } catch {
            let message = (error as? ProvisionError)?.message ?? "\(error)"
            logger.error("teardown failed; will retry", metadata: ["session": "\(session.name)", "error": "\(message)"])
            try? await sessions.markTeardownFailed(session.name, message: message, now: now())
        }
    }
}
