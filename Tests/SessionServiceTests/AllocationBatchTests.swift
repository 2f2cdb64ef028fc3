import Contracts
import Foundation
import ServerKit
@testable import SessionService
import Storage
import TestSupport
import Testing

/// Group commit writes a batch of allocations set-wise (all spare claims in one statement, all sessions made on
/// demand in one insert). Whatever the batch holds, the outcome must be the one of the same requests made one by one.
@Suite("Allocation batches decide what the same requests one by one would")
struct AllocationBatchTests {
    /// Capacity, a portal maximum, spares in two environments and a returning user, so that one batch claims spares,
    /// reuses a session made earlier in the batch, makes sessions on demand, evicts a spare it had read for a later
    /// request, and refuses at the maximum.
    static let portal = StubCatalog.portal(
        [
            StubCatalog.environment("lab-w01", workshop: "ws1", capacity: 5, reserved: 2),
            StubCatalog.environment("lab-w02", workshop: "ws2", capacity: 3, reserved: 1),
            StubCatalog.environment("lab-w03", workshop: "ws3", capacity: 5),
        ], maximum: 5)

    /// (environment, user: nil for a new one)
    static let requests: [(String, String?)] = [
        ("lab-w01", nil),  // claims a spare of lab-w01 (both of its spares are read for the batch)
        ("lab-w02", "pat"),  // claims lab-w02's spare for pat
        ("lab-w02", "pat"),  // reuses it
        ("lab-w03", nil),  // on demand
        ("lab-w03", "sam"),  // on demand, for an existing user
        ("lab-w03", nil),  // at the maximum with spares left: the oldest spare (lab-w01's second) is stopped
        ("lab-w01", nil),  // the spare read for it is gone, and five are owned: refused
        ("lab-w02", nil),  // refused
        ("lab-w03", "sam"),  // reuses sam's session
        ("lab-w03", nil),
    ]

    struct Answer: Equatable, CustomStringConvertible {
        var kind: String
        var name: String?
        var environment: String?
        var owner: String?
        var state: String?
        var pending: Bool?
        var tokenMatches: Bool?
        var description: String {
            "\(kind) \(name ?? "-") \(environment ?? "-") \(owner ?? "-") \(state ?? "-") \(pending.map(String.init) ?? "-") \(tokenMatches.map(String.init) ?? "-")"
        }
    }

    @Test("a mixed batch against one by one", arguments: TestBackends.all)
    func mixedBatch(backend: DatabaseBackend) async throws {
        let batched = try await run(backend, batched: true)
        let single = try await run(backend, batched: false)
        #expect(batched.answers == single.answers)
        #expect(batched.stored == single.stored)
        #expect(batched.answers.filter { $0.kind == "spare" }.count == 2, "\(batched.answers)")
        #expect(batched.answers.filter { $0.kind == "reused" }.count == 2, "\(batched.answers)")
        #expect(batched.answers.filter { $0.kind == "on_demand" }.count == 3, "\(batched.answers)")
        #expect(batched.answers.filter { $0.kind == "unavailable" }.count == 3, "\(batched.answers)")
        #expect(batched.stored.contains { $0.hasPrefix("lab-w01-s002 STOPPING") }, "the read spare was evicted: \(batched.stored)")
        let owned = batched.answers.compactMap { $0.kind == "unavailable" ? nil : $0.name }
        #expect(Set(owned).count == owned.count - 2, "only the reuses share a session")
        #expect(batched.answers.allSatisfy { $0.tokenMatches != false }, "every token is its session's")
    }

    @Test("a top-up larger than one transaction's share makes exactly the spares wanted, named in order", arguments: TestBackends.all)
    func largeTopUp(backend: DatabaseBackend) async throws {
        let wanted = SessionRepository.sparesPerTransaction * 2 + 50
        let portal = StubCatalog.portal([StubCatalog.environment("lab-w01", workshop: "ws1", capacity: 1000, reserved: wanted)])
        try await SessionHarness.with(backend, portal: portal) { harness in
            let environment = portal.environments[0]
            let sessions = harness.dependencies.sessions
            let (created, target) = try await sessions.topUp(environment, limits: portal.portal.sessions, now: harness.clock.now)
            #expect(target == wanted)
            #expect(created == (1...wanted).map { String(format: "lab-w01-s%03d", $0) })
            let again = try await sessions.topUp(environment, limits: portal.portal.sessions, now: harness.clock.now)
            #expect(again.created.isEmpty && again.target == wanted)
            #expect(try await sessions.sessions(in: SessionState.spare).count == wanted)
        }
    }

    /// Runs `requests` after one runtime pass (the spares), as one batch or each in its own transaction; answers what
    /// each request got and the stored sessions afterwards.
    func run(_ backend: DatabaseBackend, batched: Bool) async throws -> (answers: [Answer], stored: [String]) {
        try await SessionHarness.with(backend, portal: Self.portal) { harness in
            try await harness.pass()
            let identity = harness.dependencies.identity.repository
            var existing: [String: AuthenticatedUser] = [:]
            for name in ["pat", "sam"] {
                existing[name] = try await identity.createUser(.init(username: name, role: .user), now: harness.clock.now)
            }
            let pending = try Self.requests.enumerated().map { index, request in
                let environment = try #require(Self.portal.environments.first { $0.name == request.0 })
                let user: RequestedUser =
                    if let name = request.1, let user = existing[name] { .existing(user) } else {
                        .new(.init(username: "new-\(index)", role: .anonymous))
                    }
                return try SessionRepository.PendingAllocation(
                    AllocationRequest(
                        environment: environment, limits: Self.portal.portal.sessions, user: user, reacquire: nil,
                        withToken: true, timeout: 60, indexURL: "x", analyticsURL: nil, parameters: []),
                    now: harness.clock.now)
            }
            let sessions = harness.dependencies.sessions
            let key = sessions.key
            let database = harness.database
            var outcomes: [(AllocationOutcome, AuthenticatedUser)] = []
            if batched {
                outcomes = try await database.transaction { db in
                    try await SessionRepository.lockAllocations(on: db)
                    return try await SessionRepository.allocate(pending, key: sessions.key, on: db)
                }
            } else {
                for one in pending {
                    outcomes += try await database.transaction { db in
                        try await SessionRepository.lockAllocations(on: db)
                        return try await SessionRepository.allocate([one], key: sessions.key, on: db)
                    }
                }
            }
            var answers: [Answer] = []
            for (outcome, user) in outcomes {
                switch outcome {
                case .allocated(let session, let token, let via):
                    let stored = try #require(try await harness.session(session.name))
                    #expect(stored == session, "the answer is what was stored")
                    let expected = stored.tokenNonce.map {
                        Secrets.activationToken(key: key, session: session.name, nonce: $0)
                    }
                    answers.append(
                        Answer(
                            kind: via.rawValue, name: session.name, environment: session.environment,
                            owner: user.username, state: session.state.rawValue, pending: session.pending,
                            tokenMatches: token != nil && token == expected && stored.tokenDigest == token.map(Secrets.digest)))
                default:
                    answers.append(Answer(kind: outcome.metricName))
                }
            }
            let stored = try await harness.dependencies.sessions.sessions(in: SessionState.allCases)
                .map { "\($0.name) \($0.state.rawValue) \($0.ownerName ?? "-")" }.sorted()
            return (answers, stored)
        }
    }
}
