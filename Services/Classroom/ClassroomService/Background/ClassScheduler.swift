import Contracts
import Foundation
import Logging
import ServerKit
import ServiceLifecycle
import Storage

/// The class scheduler (DESIGN §6). Each pass, on the injected clock:
/// 1. every class with a step or a daily boundary due is advanced (in batches, one transaction per batch; a step is
///    applied once, because the progress marker only grows; after a restart everything that came due is caught up
///    in one go, towards what the labs should be now);
/// 2. labs whose target changed are pushed to session-service (`labs.apply`); a failure is said on the class and
///    retried next pass;
/// 3. labs on their way somewhere are synced from session-service (`labs.status`): lab states, errors, and the
///    class's state and completion times follow.
/// With replicas, only the holder of the `classroom-scheduler` lease runs passes.
public final class ClassScheduler: Service, Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(2)
        public var leaseTTL: Duration = .seconds(15)
        /// Classes advanced per transaction.
        public var batch: Int = 200
        /// Calls to session-service in flight at once.
        public var concurrency: Int = 16
        public var holder: String = LeasedLoop.processHolder()

        public init() {}
    }

    /// What a pass did.
    public struct Report: Sendable, Equatable {
        /// Classes whose schedule moved (steps applied or the daily target changed).
        public var advanced = 0
        /// Classes held back because their template is missing.
        public var blocked = 0
        public var pushed = 0
        public var pushFailures = 0
        public var synced = 0
    }

    let repository: ClassroomRepository
    let labs: LabPeer
    let portal: PortalCache
    let leases: Leases
    let configuration: Configuration
    let now: @Sendable () -> Date
    let logger: Logger
    private let loop: LeasedLoop

    public init(
        repository: ClassroomRepository, labs: LabPeer, portal: PortalCache, leases: Leases,
        configuration: Configuration = .init(), now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.repository = repository
        self.labs = labs
        self.portal = portal
        self.leases = leases
        self.configuration = configuration
        self.now = now
        self.logger = logger
        self.loop = LeasedLoop(
            lease: "classroom-scheduler", leases: leases, interval: configuration.interval, ttl: configuration.leaseTTL,
            holder: configuration.holder, failure: "class scheduler pass failed", failureLevel: .error, now: now,
            logger: logger)
    }

    /// Asks for a pass soon (a lab added or removed, a class changed).
    public func wake() { loop.wake() }

    public func run() async throws {
        await loop.run { [self] in try await pass() }
    }

    /// One pass: advance, push, sync.
    @discardableResult
    public func pass() async throws -> Report {
        var report = Report()
        try await advance(&report)
        try await push(&report)
        try await sync(&report)
        return report
    }

    func advance(_ report: inout Report) async throws {
        let time = now()
        // Unknown while the catalog cannot be reached: then nothing is held back here (session-service refuses a
        // workshop that is really gone, and says so on the lab).
        let templates = (try? await portal.current()).map(Template.all(in:))
        // Bounded: at most 100 rounds of `batch` classes per pass; the rest waits for the next pass.
        for _ in 0..<100 {
            let due = try await repository.dueClasses(now: time, limit: configuration.batch)
            guard !due.isEmpty else { return }
            let courseTemplates = try await repository.courseTemplates(Set(due.map(\.courseID)))
            let exists: [Int64: Bool] = courseTemplates.mapValues { id in templates.map { $0[id] != nil } ?? true }
            let results = try await repository.advance(due.map(\.id), now: time) { exists[$0] ?? false }
            for result in results {
                if let blocked = result.blocked {
                    report.blocked += 1
                    logger.warning("class not provisioned", metadata: ["class": "\(result.classID)", "reason": "\(blocked)"])
                } else if result.changed {
                    report.advanced += 1
                    logger.info(
                        "class schedule applied",
                        metadata: [
                            "class": "\(result.classID)", "from": "\(result.from)", "to": "\(result.to)",
                            "labs": "\(result.target?.rawValue ?? "-")",
                        ])
                }
            }
        }
    }

    func push(_ report: inout Report) async throws {
        for _ in 0..<20 {
            let pending = try await repository.labsToPush(limit: 500)
            guard !pending.isEmpty else { return }
            let workshops = try await repository.labWorkshops(Set(pending.map(\.classID)))
            let outcomes = await withTaskGroup(of: PushOutcome.self) { group -> [PushOutcome] in
                var outcomes: [PushOutcome] = []
                var running = 0
                for lab in pending {
                    guard let target = lab.target else { continue }
                    if running >= configuration.concurrency, let outcome = await group.next() {
                        outcomes.append(outcome)
                        running -= 1
                    }
                    let workshop = workshops[lab.classID] ?? ""
                    group.addTask { [labs] in
                        do {
                            let environment = try await labs.apply(
                                .init(lab: String(lab.id), workshop: workshop, target: target, owner: lab.name))
                            return .done(lab, environment, target)
                        } catch {
                            return .failed(lab, "\(error)")
                        }
                    }
                    running += 1
                }
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            var done: [(lab: LabRecord, environment: LabEnvironment?, pushed: LabTarget?)] = []
            var failedClasses: [Int64: String] = [:]
            for outcome in outcomes {
                switch outcome {
                case .done(let lab, let environment, let target):
                    done.append((lab, environment, target))
                case .failed(let lab, let message):
                    failedClasses[lab.classID] = message
                }
            }
            try await repository.record(done, now: now())
            report.pushed += done.count
            for (classID, message) in failedClasses.sorted(by: { $0.key < $1.key }) {
                report.pushFailures += 1
                logger.error(
                    "cannot tell session-service about the class's labs; will retry",
                    metadata: ["class": "\(classID)", "error": "\(message)"])
                try await repository.recordPushFailure(classID: classID, error: message, now: now())
            }
            if !failedClasses.isEmpty { return }
        }
    }

    enum PushOutcome: Sendable {
        case done(LabRecord, LabEnvironment?, LabTarget)
        case failed(LabRecord, String)
    }

    func sync(_ report: inout Report) async throws {
        let moving = try await repository.labsInTransit(limit: LabsStatus.maximumLabs)
        guard !moving.isEmpty else { return }
        let environments: [LabEnvironment]
        do {
            environments = try await labs.status(moving.map { String($0.id) })
        } catch {
            logger.warning("cannot read lab states from session-service; will retry", metadata: ["error": "\(error)"])
            return
        }
        let byLab = Dictionary(environments.map { ($0.lab, $0) }, uniquingKeysWith: { _, last in last })
        let changes = moving.compactMap { lab -> (lab: LabRecord, environment: LabEnvironment?, pushed: LabTarget?)? in
            guard let environment = byLab[String(lab.id)] else { return nil }
            return (lab, environment, nil)
        }
        try await repository.record(changes, now: now())
        report.synced += changes.count
    }
}
