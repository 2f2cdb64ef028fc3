import Contracts
import Crypto
import Foundation
import ServerKit
import SQLKit
import Storage

/// Allocation (reference §4.3): the reads and writes around `AllocationPolicy`, which decides.
extension SessionRepository {
    /// Allocates a session for `request`. Concurrent requests are written together (group commit: one transaction,
    /// one fsync, one lock wait for a whole batch), each seeing the ones before it, so capacity and caps hold exactly
    /// as if they ran one by one.
    public func allocate(_ request: AllocationRequest, now: Date) async throws -> (AllocationOutcome, AuthenticatedUser) {
        defer { changed() }
        let parametersText = String(
            decoding: try JSONEncoder().encode(
                AllocationPolicy.resolve(request.parameters, defaults: request.environment.workshop.parameters)),
            as: UTF8.self)
        return try await allocations.run(
            PendingAllocation(request: request, parametersText: parametersText, now: EducatesTime.truncate(now)))
    }

    struct PendingAllocation: Sendable {
        var request: AllocationRequest
        var parametersText: String
        var now: Date
    }

    /// PostgreSQL: every allocation and top-up locks the one `allocation_lock` row, so replicas take turns. SQLite's
    /// `BEGIN IMMEDIATE` already does that, so the statement is not sent there.
    static func lockAllocations(on db: any SQLDatabase) async throws {
        guard db.dialect.name == "postgresql" else { return }
        _ = try await db.select().column("id").from("allocation_lock").where("id", .equal, 1)
            .lockingClause(ForUpdate()).first()
    }

    /// A batch of allocations inside one transaction, in arrival order. The batch's new users are inserted in two
    /// statements, and the ready spares of an environment are looked up once for all of its requests.
    static func allocate(_ batch: [PendingAllocation], key: SymmetricKey, on db: any SQLDatabase) async throws
        -> [(AllocationOutcome, AuthenticatedUser)]
    {
        let newUsers = batch.compactMap { pending -> (user: IdentityRepository.NewUser, now: Date)? in
            if case .new(let new) = pending.request.user { return (new, pending.now) }
            return nil
        }
        var made = try await IdentityRepository.insertUsers(newUsers, on: db).makeIterator()
        var reads = BatchReads(wanted: batch.reduce(into: [:]) { $0[$1.request.environment.name, default: 0] += 1 })
        var outputs: [(AllocationOutcome, AuthenticatedUser)] = []
        outputs.reserveCapacity(batch.count)
        for pending in batch {
            let user: AuthenticatedUser?
            if case .existing(let existing) = pending.request.user { user = existing } else { user = made.next() }
            guard let user else { throw StorageError.misuse("a new user of the batch was not inserted") }
            outputs.append(try await allocate(pending, user: user, reads: &reads, key: key, on: db))
        }
        return outputs
    }

    /// What a batch reads once per environment: the ready spares (as many as it has requests for the environment,
    /// handed out in order), and the count of live sessions (kept up to date as the batch creates sessions; claiming
    /// a spare or evicting one leaves it unchanged, since a STOPPING session is still live).
    struct BatchReads {
        let wanted: [String: Int]
        var names: [String: ArraySlice<String>] = [:]
        var live: [String: Int] = [:]

        init(wanted: [String: Int]) { self.wanted = wanted }

        mutating func liveCount(_ environment: String, on db: any SQLDatabase) async throws -> Int {
            if let known = live[environment] { return known }
            let counted = try await SessionRepository.count(environment: environment, owned: nil, in: SessionState.live, on: db)
            live[environment] = counted
            return counted
        }

        mutating func nextSpare(_ environment: String, on db: any SQLDatabase) async throws -> String? {
            if names[environment] == nil {
                let rows = try await db.raw(
                    """
                    SELECT name FROM sessions WHERE environment = \(bind: environment)
                    AND state = \(bind: SessionState.claimable.rawValue) AND owner_id IS NULL
                    LIMIT \(bind: wanted[environment] ?? 1)
                    """
                ).all()
                names[environment] = ArraySlice(try rows.map { try $0.decode(column: "name", as: String.self) })
            }
            return names[environment]?.popFirst()
        }
    }

    /// One allocation of a batch, seeing the ones before it.
    static func allocate(
        _ pending: PendingAllocation, user: AuthenticatedUser, reads: inout BatchReads, key: SymmetricKey,
        on db: any SQLDatabase
    ) async throws -> (AllocationOutcome, AuthenticatedUser) {
        let request = pending.request
        let now = pending.now
        let environment = request.environment
        let policy = AllocationPolicy(request)

        // 1. and 2.: the user's live sessions answer both the reuse and the per-user cap (a user made now has none).
        var held: [SessionRecord] = []
        if case .existing = request.user {
            held = try await db.raw(
                """
                SELECT * FROM sessions WHERE owner_id = \(bind: user.id) AND state IN (\(binds: values(SessionState.live)))
                ORDER BY created_at, name
                """
            ).all().map(Self.decode)
        }
        switch policy.decide(user: user, held: held, environmentName: environment.name) {
        case .refuse:
            return (.unavailable, user)
        case .cannotReacquire:
            return (.cannotReacquire, user)
        case .reuse(var session, let restartActivation):
            guard let nonce = session.tokenNonce, request.withToken else {
                return (.allocated(session, token: nil, via: .reused), user)
            }
            if restartActivation {
                // The activation window starts again; the token stays the same.
                session.startedAt = now
                session.expiresAt = policy.pendingExpiry(now: now)
                try await db.update("sessions").set("started_at", to: session.startedAt)
                    .set("expires_at", to: session.expiresAt).set("updated_at", to: now)
                    .where("name", .equal, session.name).run()
            }
            let token = Secrets.activationToken(key: key, session: session.name, nonce: nonce)
            return (.allocated(session, token: token, via: .reused), user)
        case .allocate:
            break
        }

        let nonce = request.withToken ? Secrets.token(length: 24) : nil
        func assignment(_ name: String) -> (token: String?, digest: String?) {
            guard let nonce else { return (nil, nil) }
            let token = Secrets.activationToken(key: key, session: name, nonce: nonce)
            return (token, Secrets.digest(token))
        }
        let grant = policy.grant(now: now)

        // 3. A ready hot spare. (An earlier allocation of the batch may have evicted a spare read for it: the guard
        // in the update skips it.)
        let claimable = SessionState.claimable
        guard let claimed = claimable.after(policy.claimEvent) else {
            throw StorageError.misuse("a spare cannot be claimed from \(claimable.rawValue)")
        }
        while let name = try await reads.nextSpare(environment.name, on: db) {
            let (token, digest) = assignment(name)
            if let session = try await db.raw(
                """
                UPDATE sessions SET owner_id = \(bind: user.id), owner_name = \(bind: user.username),
                    state = \(bind: claimed.rawValue), token_nonce = \(bind: nonce), token_digest = \(bind: digest),
                    pending = \(bind: grant.pending), index_url = \(bind: request.indexURL),
                    analytics_url = \(bind: request.analyticsURL), parameters = \(bind: pending.parametersText),
                    started_at = \(bind: grant.startedAt), expires_at = \(bind: grant.expiresAt),
                    deadline_at = \(bind: grant.deadlineAt), updated_at = \(bind: now)
                WHERE name = \(bind: name) AND state = \(bind: claimable.rawValue) AND owner_id IS NULL
                RETURNING *
                """
            ).first().map(Self.decode) {
                return (.allocated(session, token: token, via: .spare), user)
            }
        }

        // 4. On demand, within capacity and the portal maximum.
        let active = try await reads.liveCount(environment.name, on: db)
        let decision = try await policy.onDemand(
            environmentLive: active,
            portalAllocated: { try await Self.count(environment: nil, owned: true, in: SessionState.live, on: db) },
            portalLive: { try await Self.count(environment: nil, owned: nil, in: SessionState.live, on: db) })
        switch decision {
        case .refuse:
            return (.unavailable, user)
        case .evictOldestSpareThenCreate:
            guard
                let oldest = try await db.raw(
                    """
                    SELECT name FROM sessions WHERE owner_id IS NULL AND state IN (\(binds: values(SessionState.spare)))
                    ORDER BY created_at, name LIMIT 1
                    """
                ).first()
            else { return (.unavailable, user) }
            try await Self.stop([try oldest.decode(column: "name", as: String.self)], now: now, on: db)
        case .create:
            break
        }
        let name = try await Self.nextNames(environment.name, count: 1, on: db)[0]
        let (token, digest) = assignment(name)
        let session = SessionRecord(
            name: name, environment: environment.name, workshop: environment.workshop.name,
            state: policy.onDemandState, ownerID: user.id, ownerName: user.username,
            tokenNonce: nonce, tokenDigest: digest, pending: grant.pending, indexURL: request.indexURL,
            analyticsURL: request.analyticsURL, parameters: [], provision: .pending, attempts: 0,
            nextAttemptAt: now, errorMessage: nil, url: nil, handle: nil, createdAt: now, startedAt: grant.startedAt,
            expiresAt: grant.expiresAt, deadlineAt: grant.deadlineAt, stoppedAt: nil)
        try await Self.insert([(session, pending.parametersText)], on: db)
        reads.live[environment.name] = active + 1
        var stored = session
        stored.parameters = AllocationPolicy.resolve(request.parameters, defaults: environment.workshop.parameters)
        return (.allocated(stored, token: token, via: .onDemand), user)
    }

    /// The next `count` session names of an environment: `<env>-s001`, `<env>-s002`, … (the tally only grows), in one
    /// statement.
    static func nextNames(_ environment: String, count: Int, on db: any SQLDatabase) async throws -> [String] {
        guard count > 0 else { return [] }
        guard
            let row = try await db.raw(
                """
                INSERT INTO environment_tally (environment, tally, initialized)
                VALUES (\(bind: environment), \(bind: count), \(bind: false))
                ON CONFLICT (environment) DO UPDATE SET tally = environment_tally.tally + \(bind: count) RETURNING tally
                """
            ).first()
        else { throw StorageError.misuse("no tally for \(environment)") }
        let last = try row.decode(column: "tally", as: Int.self)
        return (last - count + 1...last).map { "\(environment)-s\(String(format: "%03d", $0))" }
    }

    /// Inserts sessions, up to 200 rows per statement.
    static func insert(_ sessions: [(session: SessionRecord, parametersText: String)], on db: any SQLDatabase) async throws {
        for start in stride(from: 0, to: sessions.count, by: 200) {
            var insert = db.insert(into: "sessions").columns(
                "name", "environment", "workshop", "state", "owner_id", "owner_name", "token_nonce", "token_digest",
                "pending", "index_url", "analytics_url", "parameters", "provision", "attempts", "next_attempt_at",
                "error_message", "url", "handle", "created_at", "started_at", "expires_at", "deadline_at", "stopped_at",
                "updated_at")
            for (session, parametersText) in sessions[start..<min(start + 200, sessions.count)] {
                let none: String? = nil
                let noDate: Date? = nil
                insert = insert.values(
                    SQLBind(session.name), SQLBind(session.environment), SQLBind(session.workshop),
                    SQLBind(session.state.rawValue), SQLBind(session.ownerID), SQLBind(session.ownerName),
                    SQLBind(session.tokenNonce), SQLBind(session.tokenDigest), SQLBind(session.pending),
                    SQLBind(session.indexURL), SQLBind(session.analyticsURL), SQLBind(parametersText),
                    SQLBind(session.provision.rawValue), SQLBind(session.attempts), SQLBind(session.nextAttemptAt),
                    SQLBind(none), SQLBind(none), SQLBind(none), SQLBind(session.createdAt), SQLBind(session.startedAt),
                    SQLBind(session.expiresAt), SQLBind(session.deadlineAt), SQLBind(noDate), SQLBind(session.createdAt))
            }
            try await insert.run()
        }
    }
}
