import Contracts
import Foundation
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

@Suite("Start-up of replicas together: the admin and robot users, and the credentials file")
struct BootstrapTests {
    @Test("replicas applying the credentials at the same moment all succeed and make each user once", arguments: TestBackends.all)
    func usersMadeOnce(backend: DatabaseBackend) async throws {
        let credentials = SessionHarness.testCredentials
        let database = TestDatabase(backend, label: "boot")
        try await database.with { first in
            try await Migrator(SessionApplication.spec.migrations).migrate(first, logger: quietLogger)
            // A second pool on the same data stands for a second replica: on PostgreSQL its transactions really
            // interleave with the first one's.
            try await database.with { second in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for replica in 0..<8 {
                        let repository = IdentityRepository(database: replica % 2 == 0 ? first : second)
                        group.addTask {
                            try await credentials.apply(to: repository, now: Date(), logger: quietLogger)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let repository = IdentityRepository(database: first)
            #expect(try await repository.userCount() == 2)
            let admin = try #require(try await repository.user(username: credentials.adminUser))
            #expect(admin.user.role == .admin)
            let identity = IdentityService(repository: repository, now: { Date() })
            let basic = Data("\(credentials.adminUser):\(credentials.adminAPIToken)".utf8).base64EncodedString()
            #expect(try await identity.authenticate("Basic \(basic)").id == admin.user.id)
            #expect(try await repository.checkClient(id: credentials.robotClientID, secret: credentials.robotClientSecret))
        }
    }

    @Test("replicas that find no credentials file at the same moment end up with one file and the same credentials")
    func credentialsFileWrittenOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("labportal-tests/creds-\(UUID())")
        let path = directory.appendingPathComponent("credentials.env").path
        defer { try? FileManager.default.removeItem(at: directory) }
        let all = try await withThrowingTaskGroup(of: BootstrapCredentials.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try BootstrapCredentials.loadOrCreate(path: path, publicURL: "http://localhost:8080", logger: quietLogger)
                }
            }
            var all: [BootstrapCredentials] = []
            for try await credentials in group { all.append(credentials) }
            return all
        }
        #expect(all.count == 16)
        #expect(Set(all.map(\.adminPassword)).count == 1)
        let onDisk = try BootstrapCredentials.parse(String(contentsOfFile: path, encoding: .utf8), path: path)
        #expect(onDisk == all[0])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Nothing left beside it: the drafts of the writers that lost are removed.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["credentials.env"])
    }
}
