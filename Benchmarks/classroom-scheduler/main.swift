// Class scheduler benchmark (issue 4): 10,000 classes, each with one lab, whose provisioning time has come, caught
// up by one scheduler pass on the real repository and database. session-service is an instant in-memory stand-in,
// so the figure is the scheduler's own cost: applying the steps (with their audit entries) and pushing the labs.
//
//   swift run -c release classroom-scheduler [--classes N] [--db-url postgres://…]
//
// Prints the seconds for the pass (target: under 10 s for 10,000 transitions) and, as its baseline, the same number
// of empty transactions on the same database.
import ClassroomService
import Contracts
import Foundation
import Logging
import ServerKit
import Storage
import Synchronization

func argument(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

let count = Int(argument("--classes") ?? "") ?? 10_000
let logger: Logger = {
    var logger = Logger(label: "classroom-scheduler-benchmark")
    logger.logLevel = .error
    return logger
}()

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("classroom-bench-\(UUID().uuidString.prefix(8))")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let configuration: DatabaseConfiguration
if let url = argument("--db-url") {
    configuration = .postgres(url: url, schema: "bench_classroom_\(ProcessInfo.processInfo.processIdentifier)")
} else {
    configuration = .sqlite(path: directory.appendingPathComponent("classroom.sqlite").path)
}
let database = try await Database.open(configuration, logger: logger)
try await database.withRunning { database in
    try await Migrator(ClassroomApplication.spec.migrations).migrate(database, logger: logger)

    let clock = Mutex(Date(timeIntervalSince1970: 1_893_456_000))
    let now: @Sendable () -> Date = { clock.withLock { $0 } }
    let workshop = WorkshopDefinition(
        name: "bench", title: "Bench", description: "", vendor: "", authors: [], difficulty: "", duration: "1h", tags: [],
        logo: "", url: "", labels: [:], content: .init(image: "", files: "bench"), command: nil,
        vms: [.init(id: "vm-1", name: "VM")], region: "local", parameters: [])
    let snapshot = CatalogPortal.Snapshot(
        portal: .init(
            name: "bench", uid: "u", url: "http://bench.test", labels: [:], sessions: .init(maximum: 0, registered: 0, anonymous: 0),
            indexURL: ""),
        generation: 1,
        environments: [
            .init(
                name: "bench-w01", position: 1, state: .running, workshop: workshop,
                settings: .init(
                    workshop: "bench", capacity: 10, reserved: 0, initial: 0, expires: nil, deadline: nil, overtime: 0,
                    orphaned: 0, labels: [:]))
        ])
    let pushes = Mutex(0)
    let labs = LabPeer(
        apply: { params in
            pushes.withLock { $0 += 1 }
            return LabEnvironment(
                name: "lab\(params.lab)-s001", lab: params.lab, workshop: params.workshop, target: params.target,
                phase: .pending, error: nil, url: nil, updatedAt: now())
        },
        status: { _ in [] })
    let dependencies = ClassroomApplication.makeDependencies(
        database: database, catalog: CatalogPeer(portal: { snapshot }), labs: labs,
        authenticator: CachedAuthenticator(now: now) { _ in throw ServiceFailure(.unauthenticated, "none") },
        settings: .init(publicURL: "http://bench.test"), now: now, logger: logger)
    let repository = dependencies.repository

    // Seed: one course, `count` classes starting in two days (provisioned a day ahead), one lab each.
    let seedStart = ContinuousClock.now
    let owner = Actor(id: "1", name: "Bench")
    let course = try await repository.createCourse(
        CourseRecord(
            id: 0, name: "Bench", description: "", templateID: "bench", maxLabs: 20, vmAccess: [], anonymousSmartRDP: false,
            ssoRequired: false, supportURL: nil, customContentEnabled: false, customTitle: nil, customContent: nil,
            customContentIsDefault: false, owner: owner, lastUpdatedBy: owner, createdAt: now(), updatedAt: now(),
            lastDeployed: nil, classCount: 0),
        now: now())
    let startAt = now().addingTimeInterval(2 * 86_400)
    for index in 0..<count {
        let draft = ClassRecord(
            id: 0, courseID: course.id, name: "Class \(index)", description: "", owner: owner, startAt: startAt,
            endAt: nil, timeZone: "UTC", provisionHours: 24, runHours: 1, cleanupHours: nil, shutdownHours: nil,
            dailyStartupTime: nil, dailyShutdownTime: nil, startTime: nil, endTime: nil, runtimeLimit: nil,
            expirationDate: nil, passwordHash: nil, accessCode: "code", state: .incomplete, errorMessage: nil, labCount: 0,
            labsCreatedAt: nil, labsRunAt: nil, labsShutdownAt: nil, labsDeletedAt: nil, createdAt: now(),
            updatedAt: now(), progress: .none, labTarget: nil, nextDueAt: nil, deleting: false, region: "local")
        guard let record = try await repository.createClass(draft, actor: owner, now: now()) else { fatalError("no course") }
        _ = try await repository.addLabs(classID: record.id, names: ["Student"], actor: owner, now: now())
    }
    let seeded = ContinuousClock.now - seedStart
    print("seeded \(count) classes with a lab each in \(seeded) (\(configuration.backend.rawValue))")

    // Baseline: the same number of empty write transactions.
    let baselineStart = ContinuousClock.now
    for _ in 0..<count {
        try await database.transaction { db in
            try await db.raw("UPDATE counters SET value = value WHERE name = 'audit'").run()
        }
    }
    let baseline = ContinuousClock.now - baselineStart

    // The provisioning time of every class has come.
    clock.withLock { $0 = $0.addingTimeInterval(86_400 + 60) }
    let passStart = ContinuousClock.now
    let report = try await dependencies.scheduler.pass()
    let pass = ContinuousClock.now - passStart
    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
    print("| measurement | seconds | per second |")
    print("|---|---|---|")
    print(String(format: "| baseline: %d one-statement write transactions | %.2f | %.0f |", count, seconds(baseline), Double(count) / seconds(baseline)))
    print(String(format: "| scheduler pass: %d transitions applied + %d labs pushed | %.2f | %.0f |", report.advanced, report.pushed, seconds(pass), Double(report.advanced) / seconds(pass)))
    print("target: \(count) transitions in under 10 s → \(seconds(pass) < 10 ? "met" : "NOT met")")
    precondition(report.advanced == count, "expected \(count) transitions, got \(report.advanced)")
    precondition(pushes.withLock { $0 } == count, "expected \(count) pushes")
}
