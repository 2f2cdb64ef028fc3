import Contracts
import Crypto
import Foundation
import ServerKit
import SQLKit
import Storage
import Synchronization

/// Who a session request is for.
public enum RequestedUser: Sendable {
    /// An existing user.
    case existing(AuthenticatedUser)
    /// A user to create in the same transaction (a session request that names no known user).
    case new(IdentityRepository.NewUser)
}

/// A session request, as checked by the REST layer.
public struct AllocationRequest: Sendable {
    public var environment: CatalogEnvironment
    public var limits: SessionLimits
    public var user: RequestedUser
    /// `session=`: only reacquire this session, never create one.
    public var reacquire: String?
    /// REST requests get an activation token; the browser flow does not (the session runs at once).
    public var withToken: Bool
    /// Seconds to activate in; 0 means the workshop's duration.
    public var timeout: Int
    public var indexURL: String?
    public var analyticsURL: String?
    public var parameters: [RequestParameter]
}

public enum AllocationOutcome: Sendable, Equatable {
    /// The session, with its activation token when it has one.
    case allocated(SessionRecord, token: String?, reused: Bool)
    /// No capacity, a cap, or nothing to reacquire.
    case unavailable
    /// The user's session was made by the browser flow and has no token to hand out.
    case cannotReacquire
}

/// Workshop sessions in session-service's database. Allocation is one transaction that serialises on one lock row,
/// so that capacity, the portal maximum and the per-user caps are never exceeded, on SQLite (BEGIN IMMEDIATE) or on
/// PostgreSQL (FOR UPDATE) with any number of replicas.
public struct SessionRepository: Sendable {
    static let migrations: [Migration] = [
        Migration(
            version: 3, name: "sessions",
            statements: [
                "CREATE TABLE allocation_lock (id BIGINT PRIMARY KEY)",
                "INSERT INTO allocation_lock (id) VALUES (1)",
                """
                CREATE TABLE environment_tally (
                    environment TEXT PRIMARY KEY,
                    tally BIGINT NOT NULL,
                    initialized BOOLEAN NOT NULL
                )
                """,
                """
                CREATE TABLE sessions (
                    name TEXT PRIMARY KEY,
                    environment TEXT NOT NULL,
                    workshop TEXT NOT NULL,
                    state TEXT NOT NULL,
                    owner_id TEXT,
                    owner_name TEXT,
                    token_nonce TEXT,
                    token_digest TEXT,
                    pending BOOLEAN NOT NULL,
                    index_url TEXT,
                    analytics_url TEXT,
                    parameters TEXT NOT NULL,
                    provision TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP,
                    error_message TEXT,
                    url TEXT,
                    handle TEXT,
                    created_at TIMESTAMP NOT NULL,
                    started_at TIMESTAMP,
                    expires_at TIMESTAMP,
                    deadline_at TIMESTAMP,
                    stopped_at TIMESTAMP,
                    updated_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX sessions_environment ON sessions (environment, state)",
                "CREATE INDEX sessions_owner ON sessions (owner_id, state)",
                "CREATE INDEX sessions_state ON sessions (state)",
            ]),
        Migration(
            version: 4, name: "sessions_covering_indexes",
            statements: [
                // Spare lookup and the per-environment counts read the index alone.
                "CREATE INDEX sessions_env_state_owner ON sessions (environment, state, owner_id)",
                "CREATE INDEX sessions_state_env_owner ON sessions (state, environment, owner_id)",
                "DROP INDEX sessions_environment",
                "DROP INDEX sessions_state",
            ]),
        Migration(
            version: 7, name: "sessions_activity",
            statements: [
                // The session page reports that it is open (seen) and that its user works in it (active); a session
                // of an environment with `orphaned` set ends when nobody does for long enough.
                "ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMP",
                "ALTER TABLE sessions ADD COLUMN last_active_at TIMESTAMP",
            ]),
    ]

    static let liveStates = "('STARTING', 'WAITING', 'RUNNING', 'STOPPING')"
    static let allocatableStates = "('STARTING', 'WAITING', 'RUNNING')"

    let database: Database
    let activationKey: ActivationKey
    /// Bumped by every write this process makes that can change the counts (see `OverviewCache`).
    let changes = ChangeCounter()
    let allocations: GroupCommit<PendingAllocation, (AllocationOutcome, AuthenticatedUser)>
    let labOutcomes: GroupCommit<LabOutcome, Void>

    public init(database: Database, key: ActivationKey) {
        self.database = database
        self.activationKey = key
        self.allocations = GroupCommit(
            database: database, prepare: { db in try await Self.lockAllocations(on: db) },
            body: { batch, db in try await Self.allocate(batch, key: key.key, on: db) })
        self.labOutcomes = GroupCommit(database: database, maxBatch: 256) { outcomes, db in
            try await Self.record(outcomes, on: db)
        }
    }

    /// How many count-changing writes this process has made.
    public var changeCount: Int { changes.value }

    func changed() { changes.bump() }

    /// Runs a write that answers the sessions it changed, and counts it as a change only when there were some (the
    /// background passes run every interval and mostly change nothing; they must not drop the cached counts).
    func changing(_ write: @autoclosure () async throws -> [String]) async throws -> [String] {
        let names = try await write()
        if !names.isEmpty { changed() }
        return names
    }

    var key: SymmetricKey { activationKey.key }

    // MARK: Reading

    static func decode(_ row: any SQLRow) throws -> SessionRecord {
        let parameters = try row.decode(column: "parameters", as: String.self)
        return SessionRecord(
            name: try row.decode(column: "name", as: String.self),
            environment: try row.decode(column: "environment", as: String.self),
            workshop: try row.decode(column: "workshop", as: String.self),
            state: SessionState(rawValue: try row.decode(column: "state", as: String.self)) ?? .stopped,
            ownerID: try row.decodeOptional(column: "owner_id", as: String.self),
            ownerName: try row.decodeOptional(column: "owner_name", as: String.self),
            tokenNonce: try row.decodeOptional(column: "token_nonce", as: String.self),
            tokenDigest: try row.decodeOptional(column: "token_digest", as: String.self),
            pending: try row.decode(column: "pending", as: Bool.self),
            indexURL: try row.decodeOptional(column: "index_url", as: String.self),
            analyticsURL: try row.decodeOptional(column: "analytics_url", as: String.self),
            parameters: (try? JSONDecoder().decode([RequestParameter].self, from: Data(parameters.utf8))) ?? [],
            provision: ProvisionState(rawValue: try row.decode(column: "provision", as: String.self)) ?? .pending,
            attempts: try row.decode(column: "attempts", as: Int.self),
            nextAttemptAt: try row.decodeOptional(column: "next_attempt_at", as: Date.self),
            errorMessage: try row.decodeOptional(column: "error_message", as: String.self),
            url: try row.decodeOptional(column: "url", as: String.self),
            handle: try row.decodeOptional(column: "handle", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Date.self),
            startedAt: try row.decodeOptional(column: "started_at", as: Date.self),
            expiresAt: try row.decodeOptional(column: "expires_at", as: Date.self),
            deadlineAt: try row.decodeOptional(column: "deadline_at", as: Date.self),
            stoppedAt: try row.decodeOptional(column: "stopped_at", as: Date.self))
    }

    public func session(named name: String) async throws -> SessionRecord? {
        try await database.sql.raw("SELECT * FROM sessions WHERE name = \(bind: name)").first().map(Self.decode)
    }

    /// The sessions a user holds in any environment, excluding STOPPING and STOPPED ones.
    public func sessions(ownerID: String) async throws -> [SessionRecord] {
        try await database.sql.raw(
            """
            SELECT * FROM sessions WHERE owner_id = \(bind: ownerID) AND state IN \(unsafeRaw: Self.allocatableStates)
            ORDER BY created_at, name
            """
        ).all().map(Self.decode)
    }

    /// Sessions in any of `states`, oldest first, at most `limit`.
    public func sessions(in states: [SessionState], limit: Int = 10_000) async throws -> [SessionRecord] {
        guard !states.isEmpty else { return [] }
        return try await database.sql.select().column("*").from("sessions")
            .where("state", .in, states.map(\.rawValue)).orderBy("created_at").orderBy("name").limit(limit)
            .all().map(Self.decode)
    }

    /// Counts per environment and portal-wide, with the allocated sessions when asked for.
    public func overview(includeSessions: Bool) async throws -> (allocated: Int, counts: [String: SessionsOverview.EnvironmentCounts], sessions: [SessionRecord]) {
        let rows = try await database.sql.raw(
            """
            SELECT environment,
                   SUM(CASE WHEN owner_id IS NOT NULL THEN 1 ELSE 0 END) AS allocated,
                   SUM(CASE WHEN owner_id IS NULL AND state = 'WAITING' THEN 1 ELSE 0 END) AS available,
                   COUNT(*) AS active
            FROM sessions WHERE state IN \(unsafeRaw: Self.liveStates) GROUP BY environment
            """
        ).all()
        var counts: [String: SessionsOverview.EnvironmentCounts] = [:]
        var total = 0
        for row in rows {
            let allocated = try row.decode(column: "allocated", as: Int.self)
            total += allocated
            counts[try row.decode(column: "environment", as: String.self)] = .init(
                allocated: allocated, available: try row.decode(column: "available", as: Int.self),
                active: try row.decode(column: "active", as: Int.self))
        }
        var sessions: [SessionRecord] = []
        if includeSessions {
            sessions = try await database.sql.raw(
                """
                SELECT * FROM sessions WHERE owner_id IS NOT NULL AND state IN \(unsafeRaw: Self.liveStates)
                ORDER BY created_at, name
                """
            ).all().map(Self.decode)
        }
        return (total, counts, sessions)
    }

    // MARK: Allocation (reference §4.3)

    /// Allocates a session for `request` (the order of the reference, §4.3). Concurrent requests are written together
    /// (group commit: one transaction, one fsync, one lock wait for a whole batch), each seeing the ones before it,
    /// so capacity and caps hold exactly as if they ran one by one.
    public func allocate(_ request: AllocationRequest, now: Date) async throws -> (AllocationOutcome, AuthenticatedUser) {
        defer { changed() }
        let parametersText = String(
            decoding: try JSONEncoder().encode(
                Self.resolve(request.parameters, defaults: request.environment.workshop.parameters)), as: UTF8.self)
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
        var spares = BatchReads(wanted: batch.reduce(into: [:]) { $0[$1.request.environment.name, default: 0] += 1 })
        var outputs: [(AllocationOutcome, AuthenticatedUser)] = []
        outputs.reserveCapacity(batch.count)
        for pending in batch {
            let user: AuthenticatedUser?
            if case .existing(let existing) = pending.request.user { user = existing } else { user = made.next() }
            guard let user else { throw StorageError.misuse("a new user of the batch was not inserted") }
            outputs.append(try await allocate(pending, user: user, spares: &spares, key: key, on: db))
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
            let counted = try await SessionRepository.count(
                "environment = \(environment.sqlLiteral) AND state IN \(SessionRepository.liveStates)", on: db)
            live[environment] = counted
            return counted
        }

        mutating func next(_ environment: String, on db: any SQLDatabase) async throws -> String? {
            if names[environment] == nil {
                let rows = try await db.raw(
                    """
                    SELECT name FROM sessions WHERE environment = \(bind: environment) AND state = 'WAITING'
                    AND owner_id IS NULL LIMIT \(bind: wanted[environment] ?? 1)
                    """
                ).all()
                names[environment] = ArraySlice(try rows.map { try $0.decode(column: "name", as: String.self) })
            }
            return names[environment]?.popFirst()
        }
    }

    /// One allocation of a batch, seeing the ones before it.
    static func allocate(
        _ pending: PendingAllocation, user: AuthenticatedUser, spares: inout BatchReads, key: SymmetricKey,
        on db: any SQLDatabase
    ) async throws -> (AllocationOutcome, AuthenticatedUser) {
        let request = pending.request
        let now = pending.now
        let parametersText = pending.parametersText
        let environment = request.environment
        if case .existing = request.user {
            // The user's live sessions answer both the reuse (1.) and the per-user cap (2.).
            let held = try await db.raw(
                """
                SELECT * FROM sessions WHERE owner_id = \(bind: user.id) AND state IN \(unsafeRaw: Self.liveStates)
                ORDER BY created_at, name
                """
            ).all().map(Self.decode)

            // 1. The user's existing session in this environment.
            if let existing = held.first(where: {
                $0.environment == environment.name && $0.state != .stopping && $0.state != .stopped
            }) {
                if let wanted = request.reacquire, wanted != existing.name { return (.unavailable, user) }
                if request.withToken {
                    guard let nonce = existing.tokenNonce else { return (.cannotReacquire, user) }
                    var session = existing
                    if session.pending {
                        // The activation window starts again; the token stays the same.
                        session.startedAt = now
                        session.expiresAt = Self.pendingExpiry(now: now, timeout: request.timeout, settings: environment.settings)
                        try await db.update("sessions").set("started_at", to: session.startedAt)
                            .set("expires_at", to: session.expiresAt).set("updated_at", to: now)
                            .where("name", .equal, session.name).run()
                    }
                    let token = Secrets.activationToken(key: key, session: session.name, nonce: nonce)
                    return (.allocated(session, token: token, reused: true), user)
                }
                return (.allocated(existing, token: nil, reused: true), user)
            }
            if request.reacquire != nil { return (.unavailable, user) }

            // 2. The per-user cap.
            if user.role != .admin {
                let cap = user.role == .anonymous
                    ? (request.limits.anonymous != 0 ? request.limits.anonymous : request.limits.registered)
                    : request.limits.registered
                if cap > 0 && held.count >= cap { return (.unavailable, user) }
            }
        } else if request.reacquire != nil {
            // A user made now holds no session: nothing to reuse (and no cap reached).
            return (.unavailable, user)
        }

        let nonce = request.withToken ? Secrets.token(length: 24) : nil
        func assignment(_ name: String) -> (token: String?, digest: String?) {
            guard let nonce else { return (nil, nil) }
            let token = Secrets.activationToken(key: key, session: name, nonce: nonce)
            return (token, Secrets.digest(token))
        }

        // 3. A ready hot spare. (An earlier allocation of the batch may have evicted a spare read for it: the guard
        // in the update skips it.)
        let state: SessionState = request.withToken ? .waiting : .running
        let expires = request.withToken
            ? Self.pendingExpiry(now: now, timeout: request.timeout, settings: environment.settings)
            : environment.settings.expires.map { now.addingTimeInterval(TimeInterval($0)) }
        let deadline = request.withToken ? nil : Self.deadline(now: now, settings: environment.settings)
        while let name = try await spares.next(environment.name, on: db) {
            let (token, digest) = assignment(name)
            if let session = try await db.raw(
                """
                UPDATE sessions SET owner_id = \(bind: user.id), owner_name = \(bind: user.username),
                    state = \(bind: state.rawValue), token_nonce = \(bind: nonce), token_digest = \(bind: digest),
                    pending = \(bind: request.withToken), index_url = \(bind: request.indexURL),
                    analytics_url = \(bind: request.analyticsURL), parameters = \(bind: parametersText),
                    started_at = \(bind: now), expires_at = \(bind: expires), deadline_at = \(bind: deadline),
                    updated_at = \(bind: now)
                WHERE name = \(bind: name) AND state = 'WAITING' AND owner_id IS NULL
                RETURNING *
                """
            ).first().map(Self.decode) {
                return (.allocated(session, token: token, reused: false), user)
            }
        }

        // 4. On demand, within capacity and the portal maximum.
        let active = try await spares.liveCount(environment.name, on: db)
        if active >= environment.settings.capacity { return (.unavailable, user) }
        let maximum = request.limits.maximum
        if maximum > 0 {
            let allocated = try await Self.count("owner_id IS NOT NULL AND state IN \(Self.liveStates)", on: db)
            if allocated >= maximum { return (.unavailable, user) }
            let portalActive = try await Self.count("state IN \(Self.liveStates)", on: db)
            if portalActive >= maximum {
                // Only spares stand in the way: the oldest goes.
                guard
                    let oldest = try await db.raw(
                        """
                        SELECT name FROM sessions WHERE owner_id IS NULL AND state IN ('STARTING', 'WAITING')
                        ORDER BY created_at, name LIMIT 1
                        """
                    ).first()
                else { return (.unavailable, user) }
                try await Self.stop(try oldest.decode(column: "name", as: String.self), now: now, on: db)
            }
        }
        let name = try await Self.nextNames(environment.name, count: 1, on: db)[0]
        let (token, digest) = assignment(name)
        let session = SessionRecord(
            name: name, environment: environment.name, workshop: environment.workshop.name,
            state: request.withToken ? .starting : .running, ownerID: user.id, ownerName: user.username,
            tokenNonce: nonce, tokenDigest: digest, pending: request.withToken, indexURL: request.indexURL,
            analyticsURL: request.analyticsURL, parameters: [], provision: .pending, attempts: 0,
            nextAttemptAt: now, errorMessage: nil, url: nil, handle: nil, createdAt: now, startedAt: now,
            expiresAt: expires, deadlineAt: deadline, stoppedAt: nil)
        try await Self.insert([(session, parametersText)], on: db)
        spares.live[environment.name] = active + 1
        var stored = session
        stored.parameters = Self.resolve(request.parameters, defaults: environment.workshop.parameters)
        return (.allocated(stored, token: token, reused: false), user)
    }

    /// Request parameters merged over the workshop's defaults; names the workshop does not define are dropped.
    static func resolve(_ given: [RequestParameter], defaults: [RequestParameter]) -> [RequestParameter] {
        var values: [String: String] = [:]
        for parameter in given { values[parameter.name] = parameter.value }
        return defaults.map { RequestParameter(name: $0.name, value: values[$0.name] ?? $0.value) }
    }

    /// An unactivated allocation expires after `timeout` seconds, or after the workshop's duration when it is 0.
    static func pendingExpiry(now: Date, timeout: Int, settings: EnvironmentSettings) -> Date? {
        if timeout > 0 { return now.addingTimeInterval(TimeInterval(timeout)) }
        return settings.expires.map { now.addingTimeInterval(TimeInterval($0)) }
    }

    static func deadline(now: Date, settings: EnvironmentSettings) -> Date? {
        guard let expires = settings.expires else { return nil }
        return now.addingTimeInterval(TimeInterval(max(settings.deadline ?? expires, expires)))
    }

    static func count(_ condition: String, on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM sessions WHERE \(unsafeRaw: condition)").first()?
            .decode(column: "n", as: Int.self) ?? 0
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

    /// Puts a session in STOPPING (its expiry becomes now); the teardown makes it STOPPED.
    static func stop(_ name: String, now: Date, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            UPDATE sessions SET state = 'STOPPING', expires_at = \(bind: now), updated_at = \(bind: now)
            WHERE name = \(bind: name) AND state IN \(unsafeRaw: allocatableStates)
            """
        ).run()
    }

    // MARK: Activation, extension, termination

    /// Checks an activation token against the session's digest, in constant time.
    public func tokenMatches(_ token: String, session: SessionRecord) -> Bool {
        guard let digest = session.tokenDigest else { return false }
        return Secrets.constantTimeEquals(Secrets.digest(token), digest)
    }

    /// Marks an allocated session as running: its lifetime starts now.
    public func activate(_ name: String, settings: EnvironmentSettings?, now: Date) async throws -> SessionRecord? {
        defer { changed() }
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            guard var session = try await db.raw("SELECT * FROM sessions WHERE name = \(bind: name)")
                .first().map(Self.decode), session.state != .stopping, session.state != .stopped
            else { return nil }
            if session.state == .running && !session.pending { return session }
            session.state = .running
            session.pending = false
            session.startedAt = now
            session.expiresAt = settings?.expires.map { now.addingTimeInterval(TimeInterval($0)) }
            session.deadlineAt = settings.flatMap { Self.deadline(now: now, settings: $0) }
            try await db.update("sessions").set("state", to: session.state.rawValue).set("pending", to: false)
                .set("started_at", to: now).set("expires_at", to: session.expiresAt)
                .set("deadline_at", to: session.deadlineAt).set("updated_at", to: now)
                .set("last_seen_at", to: now).set("last_active_at", to: now)
                .where("name", .equal, name).run()
            return session
        }
    }

    /// Extends a running session by one step if it is extendable now. Answers the session and whether it was.
    public func extend(_ name: String, settings: EnvironmentSettings?, now: Date) async throws -> (SessionRecord, Bool)? {
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            guard var session = try await db.select().column("*").from("sessions").where("name", .equal, name)
                .lockingClause(ForUpdate()).first().map(Self.decode)
            else { return nil }
            let timing = SessionTiming(session: session, settings: settings, now: now)
            guard timing.extendable, let expires = session.expiresAt, let deadline = session.deadlineAt else {
                return (session, false)
            }
            session.expiresAt = min(expires.addingTimeInterval(TimeInterval(timing.step)), deadline)
            try await db.update("sessions").set("expires_at", to: session.expiresAt).set("updated_at", to: now)
                .where("name", .equal, name).run()
            return (session, true)
        }
    }

    /// Ends a session: STOPPING now, STOPPED once its lab is torn down.
    public func terminate(_ name: String, now: Date) async throws -> SessionRecord? {
        defer { changed() }
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            try await Self.stop(name, now: now, on: db)
            return try await db.raw("SELECT * FROM sessions WHERE name = \(bind: name)").first().map(Self.decode)
        }
    }

    // MARK: Background work

    /// Allocated sessions whose time is up (unactivated ones included) go to STOPPING. Answers their names.
    public func expire(now: Date) async throws -> [String] {
        let now = EducatesTime.truncate(now)
        return try await changing(try await database.transaction { db in
            let rows = try await db.raw(
                """
                SELECT name FROM sessions WHERE owner_id IS NOT NULL AND state IN \(unsafeRaw: Self.allocatableStates)
                AND expires_at IS NOT NULL AND expires_at <= \(bind: now)
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            for name in names { try await Self.stop(name, now: now, on: db) }
            return names
        })
    }

    /// The session page of a running session is open (`active`: and its user works in it).
    public func recordActivity(_ name: String, active: Bool, now: Date) async throws {
        let now = EducatesTime.truncate(now)
        var update = database.sql.update("sessions").set("last_seen_at", to: now)
        if active { update = update.set("last_active_at", to: now) }
        try await update.where("name", .equal, name).where("state", .equal, SessionState.running.rawValue).run()
    }

    /// Ends the activated sessions of an environment that nobody uses (Educates' `orphaned`): idle for `orphaned`
    /// seconds, or with no page open for three times that. Answers their names.
    public func stopOrphaned(environment: String, orphaned: Int, now: Date) async throws -> [String] {
        guard orphaned > 0 else { return [] }
        let now = EducatesTime.truncate(now)
        let idle = now.addingTimeInterval(-TimeInterval(orphaned))
        let unseen = now.addingTimeInterval(-TimeInterval(3 * orphaned))
        return try await changing(try await database.transaction { db in
            let rows = try await db.raw(
                """
                SELECT name FROM sessions WHERE environment = \(bind: environment) AND state = 'RUNNING'
                AND pending = \(bind: false) AND owner_id IS NOT NULL
                AND (COALESCE(last_active_at, started_at) <= \(bind: idle) OR COALESCE(last_seen_at, started_at) <= \(bind: unseen))
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            for name in names { try await Self.stop(name, now: now, on: db) }
            return names
        })
    }

    /// Stops every unowned spare of an environment (it is STOPPING or gone from the portal).
    public func stopSpares(environment: String, now: Date) async throws -> [String] {
        let now = EducatesTime.truncate(now)
        return try await changing(try await database.transaction { db in
            let rows = try await db.raw(
                """
                SELECT name FROM sessions WHERE environment = \(bind: environment) AND owner_id IS NULL
                AND state IN ('STARTING', 'WAITING')
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            for name in names { try await Self.stop(name, now: now, on: db) }
            return names
        })
    }

    /// Stops the spares an environment no longer wants after a reload lowered its numbers: those above
    /// `max(initial, reserved)` (so the spares made at start for `initial` stay), and those that keep it above its
    /// capacity. Spares still starting go first, then the newest ready ones. Sessions with an owner are never stopped
    /// here. Answers the names stopped.
    public func trimSpares(_ environment: CatalogEnvironment, now: Date) async throws -> [String] {
        let now = EducatesTime.truncate(now)
        let settings = environment.settings
        return try await changing(try await database.transaction { db in
            try await Self.lockAllocations(on: db)
            let spares = try await Self.count(
                "environment = \(environment.name.sqlLiteral) AND owner_id IS NULL AND state IN ('STARTING', 'WAITING')",
                on: db)
            guard spares > 0 else { return [] }
            let active = try await Self.count(
                "environment = \(environment.name.sqlLiteral) AND state IN \(Self.liveStates)", on: db)
            let excess = min(spares, max(spares - max(settings.initial, settings.reserved), active - settings.capacity, 0))
            guard excess > 0 else { return [] }
            let names = try await db.raw(
                """
                SELECT name FROM sessions WHERE environment = \(bind: environment.name) AND owner_id IS NULL
                AND state IN ('STARTING', 'WAITING')
                ORDER BY CASE WHEN state = 'STARTING' THEN 0 ELSE 1 END, created_at DESC, name DESC
                LIMIT \(bind: excess)
                """
            ).all().map { try $0.decode(column: "name", as: String.self) }
            for name in names { try await Self.stop(name, now: now, on: db) }
            return names
        })
    }

    /// Tops the spares of an environment up to `reserved` (to `initial` the first time), within its capacity and the
    /// portal maximum. `initial = 0` means no spares until the first request. Answers the names created.
    public func topUp(_ environment: CatalogEnvironment, limits: SessionLimits, now: Date) async throws -> [String] {
        let now = EducatesTime.truncate(now)
        let settings = environment.settings
        return try await changing(try await database.transaction { db in
            try await Self.lockAllocations(on: db)
            let tally = try await db.raw(
                "SELECT tally, initialized FROM environment_tally WHERE environment = \(bind: environment.name)"
            ).first()
            let initialized = try tally?.decode(column: "initialized", as: Bool.self) ?? false
            let everUsed = (try tally?.decode(column: "tally", as: Int.self) ?? 0) > 0
            let target: Int
            if !initialized {
                target = settings.initial
            } else if settings.initial == 0 && !everUsed {
                target = 0
            } else {
                target = settings.reserved
            }
            if !initialized {
                try await db.raw(
                    """
                    INSERT INTO environment_tally (environment, tally, initialized) VALUES (\(bind: environment.name), 0, \(bind: true))
                    ON CONFLICT (environment) DO UPDATE SET initialized = \(bind: true)
                    """
                ).run()
            }
            let spares = try await Self.count(
                "environment = \(environment.name.sqlLiteral) AND owner_id IS NULL AND state IN ('STARTING', 'WAITING')",
                on: db)
            let active = try await Self.count(
                "environment = \(environment.name.sqlLiteral) AND state IN \(Self.liveStates)", on: db)
            var want = min(target - spares, settings.capacity - active)
            if limits.maximum > 0 {
                let portalActive = try await Self.count("state IN \(Self.liveStates)", on: db)
                want = min(want, limits.maximum - portalActive)
            }
            guard want > 0 else { return [] }
            let names = try await Self.nextNames(environment.name, count: want, on: db)
            let sessions = names.map { name in
                SessionRecord(
                    name: name, environment: environment.name, workshop: environment.workshop.name, state: .starting,
                    ownerID: nil, ownerName: nil, tokenNonce: nil, tokenDigest: nil, pending: false, indexURL: nil,
                    analyticsURL: nil, parameters: [], provision: .pending, attempts: 0, nextAttemptAt: now,
                    errorMessage: nil, url: nil, handle: nil, createdAt: now, startedAt: nil, expiresAt: nil,
                    deadlineAt: nil, stoppedAt: nil)
            }
            try await Self.insert(sessions.map { ($0, "[]") }, on: db)
            return names
        })
    }

    /// Sessions whose lab should be made now: not STOPPING or STOPPED, pending or failed and due.
    public func dueForProvisioning(now: Date, limit: Int) async throws -> [SessionRecord] {
        try await database.sql.raw(
            """
            SELECT * FROM sessions WHERE state IN \(unsafeRaw: Self.allocatableStates)
            AND provision IN ('pending', 'failed') AND (next_attempt_at IS NULL OR next_attempt_at <= \(bind: now))
            ORDER BY created_at, name LIMIT \(bind: limit)
            """
        ).all().map(Self.decode)
    }

    /// Sessions in STOPPING whose lab is to be torn down.
    public func dueForTeardown(limit: Int) async throws -> [SessionRecord] {
        try await database.sql.raw(
            "SELECT * FROM sessions WHERE state = 'STOPPING' ORDER BY updated_at, name LIMIT \(bind: limit)"
        ).all().map(Self.decode)
    }

    /// Sessions whose lab is up (for re-adopting the local provisioner's processes after a restart).
    public func provisioned() async throws -> [SessionRecord] {
        try await database.sql.raw(
            "SELECT * FROM sessions WHERE state IN \(unsafeRaw: Self.allocatableStates) AND provision = 'ready'"
        ).all().map(Self.decode)
    }

    /// What the lab runtime writes when a lab is up or torn down. Many labs finish at once under load, so these go
    /// through a group commit: one transaction (one fsync) for all that finished while the last one was written.
    enum LabOutcome: Sendable {
        /// The lab is up: a STARTING session becomes WAITING.
        case provisioned(name: String, url: String, handle: String?, now: Date)
        /// The lab is torn down: the session is STOPPED.
        case stopped(name: String, now: Date)
    }

    static func record(_ outcomes: [LabOutcome], on db: any SQLDatabase) async throws -> [Void] {
        for outcome in outcomes {
            switch outcome {
            case .provisioned(let name, let url, let handle, let now):
                try await db.raw(
                    """
                    UPDATE sessions SET provision = 'ready', url = \(bind: url), handle = \(bind: handle),
                        error_message = NULL, next_attempt_at = NULL, updated_at = \(bind: now),
                        state = CASE WHEN state = 'STARTING' THEN 'WAITING' ELSE state END
                    WHERE name = \(bind: name) AND state IN \(unsafeRaw: Self.allocatableStates)
                    """
                ).run()
            case .stopped(let name, let now):
                try await db.raw(
                    """
                    UPDATE sessions SET state = 'STOPPED', provision = 'released', stopped_at = \(bind: now),
                        updated_at = \(bind: now), pending = \(bind: false)
                    WHERE name = \(bind: name) AND state = 'STOPPING'
                    """
                ).run()
            }
        }
        return outcomes.map { _ in () }
    }

    /// The lab is up: a STARTING session becomes WAITING.
    public func markProvisioned(_ name: String, url: String, handle: String?, now: Date) async throws {
        defer { changed() }
        try await labOutcomes.run(.provisioned(name: name, url: url, handle: handle, now: EducatesTime.truncate(now)))
    }

    /// The attempt failed: say why, and try again at `retryAt`.
    public func markProvisionFailed(_ name: String, message: String, retryAt: Date, now: Date) async throws {
        try await database.sql.raw(
            """
            UPDATE sessions SET provision = 'failed', error_message = \(bind: String(message.prefix(2000))),
                attempts = attempts + 1, next_attempt_at = \(bind: EducatesTime.truncate(retryAt)),
                updated_at = \(bind: EducatesTime.truncate(now))
            WHERE name = \(bind: name)
            """
        ).run()
    }

    /// The lab is gone (a restart lost it): make it again.
    public func markNeedsProvisioning(_ name: String, now: Date) async throws {
        try await database.sql.raw(
            """
            UPDATE sessions SET provision = 'pending', next_attempt_at = \(bind: EducatesTime.truncate(now)),
                updated_at = \(bind: EducatesTime.truncate(now))
            WHERE name = \(bind: name) AND provision = 'ready'
            """
        ).run()
    }

    /// The lab is torn down: the session is STOPPED.
    public func markStopped(_ name: String, now: Date) async throws {
        defer { changed() }
        try await labOutcomes.run(.stopped(name: name, now: EducatesTime.truncate(now)))
    }

    /// The teardown failed; keep the session STOPPING and say why.
    public func markTeardownFailed(_ name: String, message: String, now: Date) async throws {
        try await database.sql.raw(
            """
            UPDATE sessions SET error_message = \(bind: String(message.prefix(2000))), updated_at = \(bind: EducatesTime.truncate(now))
            WHERE name = \(bind: name)
            """
        ).run()
    }
}

/// The key activation tokens are derived with. It lives in the database (shared by replicas) and is loaded once
/// the database is migrated, before the service serves.
public final class ActivationKey: Sendable {
    private let bytes = Mutex<[UInt8]?>(nil)

    public init() {}

    public func load(from identity: IdentityRepository) async throws {
        let key = try await identity.key(named: "activation")
        bytes.withLock { $0 = key.withUnsafeBytes { Array($0) } }
    }

    var key: SymmetricKey {
        guard let bytes = bytes.withLock({ $0 }) else {
            preconditionFailure("the activation key is used before it was loaded")
        }
        return SymmetricKey(data: bytes)
    }
}

extension String {
    /// A single-quoted SQL string literal. Only for values that are already restricted to safe characters (user
    /// ids, environment names); everything a client sends goes through binds.
    var sqlLiteral: String { "'" + replacingOccurrences(of: "'", with: "''") + "'" }
}
