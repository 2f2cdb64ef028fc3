@testable import ClassroomService
import Contracts
import Foundation
import SQLKit
import Storage
import TestSupport
import Testing

/// The class schedule as a pure model: what one pass decides for a class, and how a class's problem is reported and
/// cleared, with no database and no clock.
@Suite("Class schedule model: advance and problems, table by table")
struct ClassScheduleModelTests {
    static let start = Date(timeIntervalSince1970: 1_893_456_000)  // 2030/01/01 00:00 UTC

    static func at(_ hours: Double) -> Date { start.addingTimeInterval(hours * 3600) }

    /// A class from hour 48 to hour 56: provisioned 24 h ahead, run 1 h ahead, shut down 1 h after, cleaned up 2 h
    /// after; with an optional daily 08:00–18:00.
    static func record(progress: ScheduleProgress = .none, target: LabTarget? = nil, daily: Bool = false) -> ClassRecord {
        ClassRecord(
            id: 1, courseID: 2, name: "C", description: "", owner: Actor(id: "1", name: "admin"), startAt: at(48),
            endAt: at(56), timeZone: "UTC", provisionHours: 24, runHours: 1, cleanupHours: 2, shutdownHours: 1,
            dailyStartupTime: daily ? "08:00" : nil, dailyShutdownTime: daily ? "18:00" : nil, startTime: nil,
            endTime: nil, runtimeLimit: nil, expirationDate: nil, passwordHash: nil, accessCode: "a", state: .scheduled,
            errorMessage: nil, labCount: 1, labsCreatedAt: nil, labsRunAt: nil, labsShutdownAt: nil, labsDeletedAt: nil,
            createdAt: at(0), updatedAt: at(0), progress: progress, labTarget: target, nextDueAt: at(24),
            deleting: false, region: "local")
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var progress: ScheduleProgress = .none
        var target: LabTarget? = nil
        var hour: Double
        var templateExists = true
        var daily = false
        var to: ScheduleProgress
        var audits: [AuditActivity]
        var retarget: LabTarget?
        var deployed = false
        var blocked = false
        var nextDue: Double?
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        .init(name: "nothing due yet", hour: 10, to: .none, audits: [], retarget: nil, nextDue: 24),
        .init(
            name: "provision", hour: 24, to: .provisioned, audits: [.provisionTrainingClass], retarget: .provisioned,
            deployed: true, nextDue: 47),
        .init(
            name: "a missing template holds the class back, retried in a minute", hour: 24, templateExists: false,
            to: .none, audits: [], retarget: nil, blocked: true, nextDue: 24 + 1.0 / 60),
        .init(
            name: "a missing template does not hold back a class already provisioned", progress: .provisioned,
            target: .provisioned, hour: 47, templateExists: false, to: .run, audits: [.runTrainingClass],
            retarget: .running, nextDue: 48),
        .init(
            name: "catching up from nothing to the end applies every step once, in order", hour: 59, to: .cleanedUp,
            audits: [.provisionTrainingClass, .runTrainingClass, .shutdownTrainingClass, .cleanUpTrainingClass],
            retarget: .deleted, deployed: true, nextDue: nil),
        .init(
            name: "begin changes nothing for the labs", progress: .run, target: .running, hour: 48, to: .begun,
            audits: [], retarget: nil, nextDue: 56),
        .init(
            name: "shut down", progress: .ended, target: .running, hour: 57, to: .shutDown,
            audits: [.shutdownTrainingClass], retarget: .stopped, nextDue: 58),
        .init(
            name: "the daily shutdown stops the labs without a step", progress: .begun, target: .running, hour: 42 + 24,
            daily: true, to: .begun, audits: [], retarget: .stopped, nextDue: nil),
        .init(
            name: "already applied: nothing changes", progress: .begun, target: .running, hour: 50, to: .begun,
            audits: [], retarget: nil, nextDue: 56),
    ]

    @Test("what one pass decides", arguments: rows)
    func advance(_ row: Row) {
        var record = Self.record(progress: row.progress, target: row.target, daily: row.daily)
        if row.daily {
            // A class whose daily shutdown (18:00) falls inside it: from hour 48 to hour 72.
            record.endAt = Self.at(72)
        }
        let now = Self.at(row.hour)
        let step = ClassSchedule(record).advance(at: now, templateExists: row.templateExists)
        #expect(step.record.progress == row.to)
        #expect(step.audits == row.audits)
        #expect(step.retarget == row.retarget)
        #expect(step.deployed == row.deployed)
        #expect((step.blocked != nil) == row.blocked)
        #expect(step.changed == (row.to != row.progress || row.retarget != nil))
        if let next = row.nextDue, !row.daily {
            #expect(step.record.nextDueAt.map { abs($0.timeIntervalSince(Self.at(next))) < 1 } == true,
                    "next due \(String(describing: step.record.nextDueAt))")
        }
        if row.blocked {
            #expect(step.record.problem == .templateMissing)
            #expect(step.record.errorMessage?.contains("template") == true)
        } else {
            #expect(step.record.updatedAt == now)
        }
        if row.audits.contains(.runTrainingClass) { #expect(step.record.labsRunAt == now) }
        if row.audits.contains(.shutdownTrainingClass) { #expect(step.record.labsShutdownAt == now) }
    }

    @Test("a template back in the catalog clears its problem, and only its own")
    func templateBack() {
        var blocked = Self.record()
        blocked.report(.templateMissing, message: "the course's template no longer exists")
        let step = ClassSchedule(blocked).advance(at: Self.at(24), templateExists: true)
        #expect(step.record.problem == nil && step.record.errorMessage == nil)
        var failing = Self.record()
        failing.report(.labFailed, message: "lab Student 1: boom")
        let kept = ClassSchedule(failing).advance(at: Self.at(24), templateExists: true)
        #expect(kept.record.problem == .labFailed && kept.record.errorMessage == "lab Student 1: boom")
    }

    @Test("settling on the labs: a failing lab is the problem; its recovery or session-service's return clears it",
          arguments: [ClassProblem.labFailed, .sessionServiceUnreachable, .templateMissing])
    func settle(problem: ClassProblem) {
        var record = Self.record(progress: .provisioned, target: .provisioned)
        record.report(problem, message: "something")
        var failing = record
        failing.settle(labs: .init(total: 2, settled: 1, deleted: 0), firstLabError: "lab A: down", now: Self.at(25))
        #expect(failing.problem == .labFailed && failing.errorMessage == "lab A: down")
        record.settle(labs: .init(total: 2, settled: 2, deleted: 0), firstLabError: nil, now: Self.at(25))
        if problem == .templateMissing {
            #expect(record.problem == .templateMissing, "a lab's health says nothing of the template")
        } else {
            #expect(record.problem == nil && record.errorMessage == nil)
        }
        #expect(record.labCount == 2 && record.labsCreatedAt == Self.at(25) && record.state == .provisioned)
    }
}

@Suite("The class_problem migration classifies the messages of an older version")
struct ClassProblemMigrationTests {
    @Test("each message of the three kinds gets its problem; the class reads with it", arguments: TestBackends.all)
    func classify(backend: DatabaseBackend) async throws {
        try await TestDatabase(backend, label: "classroom").with { database in
            let before = ClassroomApplication.spec.migrations.filter { $0.version < 4 }
            try await Migrator(before).migrate(database, logger: quietLogger)
            try await ClassroomHarness.seedOldClasses(on: database, messages: [
                "the course's template no longer exists; the class cannot be provisioned",
                "lab Student 1: the workshop is not in the catalog",
                "session-service could not be reached to change the labs: unavailable",
                nil,
            ])
            try await Migrator(ClassroomApplication.spec.migrations).migrate(database, logger: quietLogger)
            let repository = ClassroomRepository(database: database)
            var problems: [ClassProblem?] = []
            for id in 1...4 { problems.append(try await repository.klass(Int64(id))?.problem) }
            #expect(problems == [.templateMissing, .labFailed, .sessionServiceUnreachable, nil])
        }
    }
}

extension ClassroomHarness {
    /// Classes as an older version (schema 3, no `problem`) wrote them, ids 1…, one per message.
    static func seedOldClasses(on database: Database, messages: [String?]) async throws {
        let now = Date(timeIntervalSince1970: 1_893_456_000)
        for (index, message) in messages.enumerated() {
            try await database.sql.raw(
                """
                INSERT INTO classes (id, course_id, name, description, owner_id, owner_name, start_at, time_zone,
                    provision_hours, run_hours, access_code, state, error_message, lab_count, created_at, updated_at,
                    progress, deleting, region)
                VALUES (\(bind: index + 1), 1, 'c', '', '1', 'admin', \(bind: now), 'UTC', 1, 1, 'a', 'scheduled',
                    \(bind: message), 0, \(bind: now), \(bind: now), 0, \(bind: false), 'local')
                """
            ).run()
        }
    }
}
