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
        do {
            return try await allocations.run(try PendingAllocation(request, now: now))
        } catch where StorageError.isUniqueViolation(error) {
            // A new user named by the front end was made at the same moment by another request (on another
            // replica): it exists now, and the request is the one of a known user.
            guard case .new(let new) = request.user, let existing = try await IdentityRepository.user(username: new.username, on: database.sql)
            else { throw error }
            guard existing.user.role.takesSessionRequests else { throw SessionError.requestsNotPermittedForUser }
            var known = request
            known.user = .existing(existing.user)
            return try await allocations.run(try PendingAllocation(known, now: now))
        }
    }

    struct PendingAllocation: Sendable {
        var request: AllocationRequest
        /// The parameters the session gets (the request's over the workshop's defaults), as stored.
        var parametersText: String
        var now: Date

        init(_ request: AllocationRequest, now: Date) throws {
            self.request = request
            self.parametersText = String(
                decoding: try JSONEncoder().encode(
                    AllocationPolicy.resolve(request.parameters, defaults: request.environment.workshop.parameters)),
                as: UTF8.self)
            self.now = EducatesTime.truncate(now)
        }
    }

    /// PostgreSQL: every allocation and top-up locks the one `allocation_lock` row, so replicas take turns. SQLite's
    /// `BEGIN IMMEDIATE` already does that, so the statement is not sent there.
    static func lockAllocations(on db: any SQLDatabase) async throws {
        guard db.dialect.name == "postgresql" else { return }
        _ = try await db.select().column("id").from("allocation_lock").where("id", .equal, 1)
            .lockingClause(ForUpdate()).first()
    }

    /// A batch of allocations inside one transaction, in arrival order. The batch's new users are inserted in two
    /// statements, the ready spares of an environment are looked up (and on PostgreSQL locked) once for all of its
    /// requests, and what the batch decides is written set-wise: all spare claims in one statement, all sessions made
    /// on demand in one tally statement per environment and one insert. A step that reads what earlier requests
    /// of the batch wrote (an existing user's sessions, the portal-wide counts, the spare to evict) first writes what
    /// is pending, so each request still sees the ones before it.
    static func allocate(_ batch: [PendingAllocation], key: SymmetricKey, on db: any SQLDatabase) async throws
        -> [(AllocationOutcome, AuthenticatedUser)]
    {
        // New users, each once: two requests of the batch may name the same new user (a front end's own id).
        var newUsers: [(user: IdentityRepository.NewUser, now: Date)] = []
        var seen: Set<String> = []
        for pending in batch {
            if case .new(let new) = pending.request.user, seen.insert(new.username).inserted { newUsers.append((new, pending.now)) }
        }
        let made = Dictionary(
            try await IdentityRepository.insertUsers(newUsers, on: db).map { ($0.username, $0) }, uniquingKeysWith: { a, _ in a })
        var reads = BatchReads(wanted: batch.reduce(into: [:]) { $0[$1.request.environment.name, default: 0] += 1 })
        var writes = BatchWrites(key: key)
        var planned: [(Planned, AuthenticatedUser)] = []
        planned.reserveCapacity(batch.count)
        var firstUse: Set<String> = []
        for pending in batch {
            let user: AuthenticatedUser?
            var fresh = false
            switch pending.request.user {
            case .existing(let existing):
                user = existing
            case .new(let new):
                user = made[new.username]
                fresh = firstUse.insert(new.username).inserted
            }
            guard let user else { throw StorageError.misuse("a new user of the batch was not inserted") }
            planned.append(
                (try await allocate(pending, user: user, fresh: fresh, reads: &reads, writes: &writes, on: db), user))
        }
        try await writes.flush(on: db)
        return try planned.map { plan, user in
            switch plan {
            case .decided(let outcome): return (outcome, user)
            case .created(let index):
                guard let (session, token) = writes.created[index] else {
                    throw StorageError.misuse("a session made on demand was not written")
                }
                return (.allocated(session, token: token, via: .onDemand), user)
            }
        }
    }

    /// What one allocation of a batch came to: decided at once, or a session made on demand whose name (and so its
    /// token) is known once the batch's writes are flushed.
    enum Planned {
        case decided(AllocationOutcome)
        case created(Int)
    }

    /// What a batch reads once per environment: the ready spares (as many as it has requests for the environment,
    /// handed out in order; locked on PostgreSQL so that nothing else changes them before the batch commits, and on
    /// SQLite the batch is the only writer), and the count of live sessions (kept up to date as the batch creates
    /// sessions; claiming a spare or evicting one leaves it unchanged, since a STOPPING session is still live).
    struct BatchReads {
        let wanted: [String: Int]
        var spares: [String: ArraySlice<SessionRecord>] = [:]
        /// How many states of `SessionState.claimOrder` have been read per environment.
        var statesRead: [String: Int] = [:]
        /// Environments whose spares are read again waiting for rows that other transactions hold.
        var waitingForLocks: Set<String> = []
        var skipsLocked = false
        var live: [String: Int] = [:]

        init(wanted: [String: Int]) { self.wanted = wanted }

        mutating func liveCount(_ environment: String, on db: any SQLDatabase) async throws -> Int {
            if let known = live[environment] { return known }
            let counted = try await SessionRepository.count(environment: environment, owned: nil, in: SessionState.live, on: db)
            live[environment] = counted
            return counted
        }

        /// The next spare for a request of `environment`: the ready ones first, then those still starting (read
        /// only once the ready ones run out).
        mutating func nextSpare(_ environment: String, on db: any SQLDatabase) async throws -> SessionRecord? {
            while true {
                if let next = spares[environment]?.popFirst() { return next }
                let read = statesRead[environment, default: 0]
                guard read < SessionState.claimOrder.count else { return nil }
                statesRead[environment] = read + 1
                // Rows another transaction holds (the runtime recording a spare's lab, say) are passed over at first;
                // before a request is refused, its environment's spares are read again waiting for them.
                let lock: SQLQueryString
                if db.dialect.name != "postgresql" {
                    lock = ""
                } else if waitingForLocks.contains(environment) {
                    lock = "FOR UPDATE"
                } else {
                    lock = "FOR UPDATE SKIP LOCKED"
                    skipsLocked = true
                }
                // Any ready spare will do (and an environment may keep thousands: no sort); of those still starting,
                // the oldest is nearest to ready.
                let order: SQLQueryString = read == 0 ? "" : "ORDER BY created_at, name"
                let rows = try await db.raw(
                    """
                    SELECT * FROM sessions WHERE environment = \(bind: environment)
                    AND state = \(bind: SessionState.claimOrder[read].rawValue) AND owner_id IS NULL
                    \(order)
                    LIMIT \(bind: wanted[environment] ?? 1) \(lock)
                    """
                ).all()
                spares[environment] = ArraySlice(try rows.map(SessionRepository.decode))
            }
        }

        /// Whether a spare of `environment` may have been passed over because another transaction held it.
        func mayHavePassedOver(_ environment: String) -> Bool {
            skipsLocked && !waitingForLocks.contains(environment)
        }

        /// Reads the spares of `environment` again, from the ready ones, waiting for rows other transactions hold.
        /// (The batch's own claims must be written first.)
        mutating func lookAgainWaitingForLocks(_ environment: String) {
            waitingForLocks.insert(environment)
            statesRead[environment] = 0
            spares[environment] = []
        }

        /// A spare stopped by the batch is no longer there to claim.
        mutating func forget(spare name: String) {
            for (environment, slice) in spares { spares[environment] = slice.filter { $0.name != name } }
        }
    }

    /// What a batch has decided and not yet written.
    struct BatchWrites {
        let key: SymmetricKey
        /// Spares claimed: the session as it is once claimed, its parameters as stored, when.
        var claims: [Claim] = []
        /// Sessions made on demand, waiting for a name: the session (named once flushed), its nonce and parameters.
        var creations: [(session: SessionRecord, nonce: String?, parametersText: String)] = []
        /// The sessions made on demand, by their index in `creations`, once written: with their tokens.
        var created: [Int: (SessionRecord, String?)] = [:]
        var flushedCreations = 0

        init(key: SymmetricKey) { self.key = key }

        /// Writes what is pending: the claims in one statement, the new sessions' names in one statement per
        /// environment and the sessions in one insert.
        mutating func flush(on db: any SQLDatabase) async throws {
            if !claims.isEmpty {
                try await SessionRepository.claim(claims, on: db)
                claims.removeAll(keepingCapacity: true)
            }
            guard flushedCreations < creations.count else { return }
            let pending = flushedCreations..<creations.count
            var counts: [String: Int] = [:]
            var order: [String] = []
            for index in pending {
                let environment = creations[index].session.environment
                if counts[environment] == nil { order.append(environment) }
                counts[environment, default: 0] += 1
            }
            var names: [String: IndexingIterator<[String]>] = [:]
            for environment in order {
                names[environment] = try await SessionRepository.nextNames(environment, count: counts[environment] ?? 0, on: db)
                    .makeIterator()
            }
            var rows: [(session: SessionRecord, parametersText: String)] = []
            for index in pending {
                var (session, nonce, parametersText) = creations[index]
                guard let name = names[session.environment]?.next() else {
                    throw StorageError.misuse("no name for a session made on demand")
                }
                session.name = name
                var token: String?
                if let nonce {
                    token = Secrets.activationToken(key: key, session: name, nonce: nonce)
                    session.tokenDigest = token.map(Secrets.digest)
                }
                rows.append((session, parametersText))
                created[index] = (session, token)
            }
            try await SessionRepository.insert(rows, on: db)
            flushedCreations = creations.count
        }
    }

    /// One allocation of a batch, seeing the ones before it. `fresh`: the user was made by this request, so holds
    /// nothing yet.
    static func allocate(
        _ pending: PendingAllocation, user: AuthenticatedUser, fresh: Bool, reads: inout BatchReads,
        writes: inout BatchWrites, on db: any SQLDatabase
    ) async throws -> Planned {
        let request = pending.request
        let now = pending.now
        let environment = request.environment
        let policy = AllocationPolicy(request)
        let key = writes.key

        // 1. and 2.: the user's live sessions answer both the reuse and the per-user cap (a user made now has none).
        var held: [SessionRecord] = []
        if !fresh {
            try await writes.flush(on: db)
            held = try await db.raw(
                """
                SELECT * FROM sessions WHERE owner_id = \(bind: user.id) AND state IN (\(binds: values(SessionState.live)))
                ORDER BY created_at, name
                """
            ).all().map(Self.decode)
        }
        switch policy.decide(user: user, held: held, environmentName: environment.name) {
        case .refuse:
            return .decided(.unavailable)
        case .cannotReacquire:
            return .decided(.cannotReacquire)
        case .reuse(var session, let restartActivation):
            guard let nonce = session.tokenNonce, request.withToken else {
                return .decided(.allocated(session, token: nil, via: .reused))
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
            return .decided(.allocated(session, token: token, via: .reused))
        case .allocate:
            break
        }

        let nonce = request.withToken ? Secrets.token(length: 24) : nil
        let grant = policy.grant(now: now)
        let parameters = AllocationPolicy.resolve(request.parameters, defaults: environment.workshop.parameters)

        // 3. A hot spare: a ready one, else one still starting. 4. Else on demand, within capacity and the portal
        // maximum. A refusal is only given once no spare was passed over for being locked (see `BatchReads`).
        var decision: AllocationPolicy.OnDemandDecision
        while true {
            if var session = try await reads.nextSpare(environment.name, on: db) {
                let from = session.state
                guard let claimed = from.after(policy.claimEvent) else {
                    throw StorageError.misuse("a spare cannot be claimed from \(from.rawValue)")
                }
                let token = nonce.map { Secrets.activationToken(key: key, session: session.name, nonce: $0) }
                session.ownerID = user.id
                session.ownerName = user.username
                session.state = claimed
                session.tokenNonce = nonce
                session.tokenDigest = token.map(Secrets.digest)
                session.pending = grant.pending
                session.indexURL = request.indexURL
                session.analyticsURL = request.analyticsURL
                session.parameters = parameters
                session.startedAt = grant.startedAt
                session.expiresAt = grant.expiresAt
                session.deadlineAt = grant.deadlineAt
                writes.claims.append(Claim(session: session, from: from, parametersText: pending.parametersText, now: now))
                return .decided(.allocated(session, token: token, via: .spare))
            }
            let active = try await reads.liveCount(environment.name, on: db)
            decision = try await policy.onDemand(
                environmentLive: active,
                portalAllocated: {
                    try await writes.flush(on: db)
                    return try await Self.count(environment: nil, owned: true, in: SessionState.live, on: db)
                },
                portalLive: {
                    try await writes.flush(on: db)
                    return try await Self.count(environment: nil, owned: nil, in: SessionState.live, on: db)
                })
            guard decision != .create, reads.mayHavePassedOver(environment.name) else { break }
            // The claims so far are written first, so that the second look does not find them again.
            try await writes.flush(on: db)
            reads.lookAgainWaitingForLocks(environment.name)
        }
        switch decision {
        case .refuse:
            return .decided(.unavailable)
        case .evictOldestSpareThenCreate:
            try await writes.flush(on: db)
            guard
                let oldest = try await db.raw(
                    """
                    SELECT name FROM sessions WHERE owner_id IS NULL AND state IN (\(binds: values(SessionState.spare)))
                    ORDER BY created_at, name LIMIT 1
                    """
                ).first()
            else { return .decided(.unavailable) }
            let name = try oldest.decode(column: "name", as: String.self)
            try await Self.stop([name], now: now, on: db)
            reads.forget(spare: name)
        case .create:
            break
        }
        let session = SessionRecord(
            name: "", environment: environment.name, workshop: environment.workshop.name,
            state: policy.onDemandState, ownerID: user.id, ownerName: user.username,
            tokenNonce: nonce, tokenDigest: nil, pending: grant.pending, indexURL: request.indexURL,
            analyticsURL: request.analyticsURL, parameters: parameters, provision: .pending, attempts: 0,
            nextAttemptAt: now, errorMessage: nil, url: nil, handle: nil, createdAt: now, startedAt: grant.startedAt,
            expiresAt: grant.expiresAt, deadlineAt: grant.deadlineAt, stoppedAt: nil)
        writes.creations.append((session, nonce, pending.parametersText))
        reads.live[environment.name, default: 0] += 1
        return .created(writes.creations.count - 1)
    }

    /// Claims spares in one statement. Each was read (and on PostgreSQL locked) by this transaction as an unowned
    /// spare in the state it is claimed from, so each must still be; the guard is checked anyway, and a claim that did not apply fails the batch
    /// rather than handing out a session twice.
    struct Claim {
        /// The session as it is once claimed.
        var session: SessionRecord
        /// The state it was read in.
        var from: SessionState
        var parametersText: String
        var now: Date
    }

    static func claim(_ claims: [Claim], on db: any SQLDatabase) async throws {
        // Casts tell PostgreSQL the type of a column whose binds are all NULL; SQLite takes the values as they are.
        let postgres = db.dialect.name == "postgresql"
        func column(_ name: String, _ type: String) -> SQLQueryString {
            postgres ? "CAST(claims.\(unsafeRaw: name) AS \(unsafeRaw: type))" : "claims.\(unsafeRaw: name)"
        }
        for start in stride(from: 0, to: claims.count, by: 200) {
            let chunk = claims[start..<min(start + 200, claims.count)]
            var rows: SQLQueryString = ""
            for (offset, claim) in chunk.enumerated() {
                let session = claim.session
                rows = rows + (offset == 0 ? "" : ", ") + """
                    (\(bind: session.name), \(bind: session.ownerID), \(bind: session.ownerName), \(bind: session.state.rawValue), \
                    \(bind: session.tokenNonce), \(bind: session.tokenDigest), \(bind: session.pending), \
                    \(bind: session.indexURL), \(bind: session.analyticsURL), \(bind: claim.parametersText), \
                    \(bind: session.startedAt), \(bind: session.expiresAt), \(bind: session.deadlineAt), \(bind: claim.now), \(bind: claim.from.rawValue))
                    """
            }
            let statement: SQLQueryString =
                """
                WITH claims (claim_name, claim_owner_id, claim_owner_name, claim_state, claim_token_nonce, claim_token_digest,
                    claim_pending, claim_index_url, claim_analytics_url, claim_parameters, claim_started_at, claim_expires_at,
                    claim_deadline_at, claim_updated_at, claim_from) AS (VALUES 
                """ + rows + """
                )
                UPDATE sessions SET owner_id = \(column("claim_owner_id", "TEXT")),
                    owner_name = \(column("claim_owner_name", "TEXT")), state = \(column("claim_state", "TEXT")),
                    token_nonce = \(column("claim_token_nonce", "TEXT")), token_digest = \(column("claim_token_digest", "TEXT")),
                    pending = \(column("claim_pending", "BOOLEAN")), index_url = \(column("claim_index_url", "TEXT")),
                    analytics_url = \(column("claim_analytics_url", "TEXT")), parameters = \(column("claim_parameters", "TEXT")),
                    started_at = \(column("claim_started_at", "TIMESTAMP")),
                    expires_at = \(column("claim_expires_at", "TIMESTAMP")),
                    deadline_at = \(column("claim_deadline_at", "TIMESTAMP")),
                    updated_at = \(column("claim_updated_at", "TIMESTAMP"))
                FROM claims
                WHERE sessions.name = claims.claim_name AND sessions.state = \(column("claim_from", "TEXT"))
                    AND sessions.owner_id IS NULL
                RETURNING name
                """
            let claimed = try await db.raw(statement).all().count
            guard claimed == chunk.count else {
                throw StorageError.misuse("\(chunk.count - claimed) of \(chunk.count) spares read as claimable could not be claimed")
            }
        }
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
