import Contracts
import Foundation
@testable import SessionService
import Storage
import TestSupport
import Testing

/// The environments of classroom labs: `labs.apply` sets a target, the lab runtime converges towards it.
@Suite("Lab environments")
struct LabEnvironmentTests {
    static let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "hello")])

    static func apply(_ harness: SessionHarness, _ lab: String, _ target: LabTarget) async throws -> LabEnvironment? {
        try await SessionApplication.applyLab(
            .init(lab: lab, workshop: "hello", target: target, owner: "Lab \(lab)"), harness.dependencies)
    }

    static func status(_ harness: SessionHarness, _ lab: String) async throws -> LabEnvironment? {
        try await harness.dependencies.labs.status(labs: [lab]).first
    }

    @Test("provisioned → running → stopped → running → deleted, each step once", arguments: TestBackends.all)
    func lifecycle(backend: DatabaseBackend) async throws {
        let provisioner = StubProvisioner()
        try await SessionHarness.with(backend, portal: Self.portal, provisioner: provisioner) { harness in
            let made = try #require(try await Self.apply(harness, "7", .provisioned))
            #expect(made.name == "lab7-s001")
            #expect(made.phase == .pending)
            #expect(!made.settled)
            try await harness.pass()
            var now = try #require(try await Self.status(harness, "7"))
            #expect(now.phase == .stopped)
            #expect(now.settled)
            // Applying the same target again does nothing.
            _ = try await Self.apply(harness, "7", .provisioned)
            try await harness.pass()

            _ = try await Self.apply(harness, "7", .running)
            try await harness.pass()
            now = try #require(try await Self.status(harness, "7"))
            #expect(now.phase == .running)
            #expect(now.url == "http://lab.test/lab7-s001/")

            _ = try await Self.apply(harness, "7", .stopped)
            try await harness.pass()
            #expect(try await Self.status(harness, "7")?.phase == .stopped)
            _ = try await Self.apply(harness, "7", .running)
            try await harness.pass()
            _ = try await Self.apply(harness, "7", .deleted)
            try await harness.pass()
            #expect(try await Self.status(harness, "7")?.phase == .deleted)
            try await harness.pass()
            #expect(
                provisioner.actions.withLock { $0 } == [
                    "create-stopped:lab7-s001", "start:lab7-s001", "stop:lab7-s001", "start:lab7-s001",
                    "delete:lab7-s001",
                ])
            // A lab made again after its environment was deleted gets a new one.
            let again = try #require(try await Self.apply(harness, "7", .running))
            #expect(again.name == "lab7-s002")
            // Deleting a lab that never had an environment answers nothing.
            #expect(try await Self.apply(harness, "8", .deleted) == nil)
        }
    }

    @Test("a failing step records the error, retries after a backoff, and clears the error once it works")
    func failureAndRetry() async throws {
        let provisioner = StubProvisioner()
        try await SessionHarness.with(portal: Self.portal, provisioner: provisioner) { harness in
            provisioner.failing.withLock { $0 = "no capacity on the hypervisor" }
            _ = try await Self.apply(harness, "9", .running)
            try await harness.pass()
            var now = try #require(try await Self.status(harness, "9"))
            #expect(now.phase == .pending)
            #expect(now.error == "no capacity on the hypervisor")
            provisioner.failing.withLock { $0 = nil }
            // Not retried before the backoff.
            try await harness.pass()
            #expect(try await Self.status(harness, "9")?.phase == .pending)
            harness.clock.advance(seconds: 6)
            try await harness.pass()
            now = try #require(try await Self.status(harness, "9"))
            #expect(now.phase == .running)
            #expect(now.error == nil)
        }
    }

    @Test("a workshop that is not in the catalog fails with a clear message")
    func unknownWorkshop() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            _ = try await SessionApplication.applyLab(
                .init(lab: "3", workshop: "gone", target: .provisioned), harness.dependencies)
            try await harness.pass()
            let now = try #require(try await Self.status(harness, "3"))
            #expect(now.error == "the workshop gone is not in the catalog")
        }
    }

    @Test("a bad lab id is refused naming the field")
    func validation() async throws {
        try await SessionHarness.with(portal: Self.portal) { harness in
            let error = await #expect(throws: ServiceFailure.self) {
                try await SessionApplication.applyLab(
                    .init(lab: "x y", workshop: "hello", target: .running), harness.dependencies)
            }
            #expect(error?.field == "lab")
        }
    }

    @Test("after a restart, a lab environment whose process is gone is run again")
    func adoptAfterRestart() async throws {
        let provisioner = StubProvisioner()
        try await SessionHarness.with(portal: Self.portal, provisioner: provisioner) { harness in
            _ = try await Self.apply(harness, "4", .running)
            try await harness.pass()
            provisioner.dead.withLock { $0.insert("lab4-s001") }
            try await harness.dependencies.runtime.adopt()
            #expect(try await Self.status(harness, "4")?.phase == .stopped)
            try await harness.pass()
            #expect(try await Self.status(harness, "4")?.phase == .running)
            #expect(provisioner.actions.withLock { $0 } == ["create:lab4-s001", "start:lab4-s001"])
        }
    }
}
