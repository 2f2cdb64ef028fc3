import Contracts
import Crypto
import Foundation
import ServerKit
import SQLKit
import Storage
import Synchronization

/// Workshop sessions in session-service's database. Allocation is one transaction that serialises on one lock row,
/// so that capacity, the portal maximum and the per-user caps are never exceeded, on SQLite (BEGIN IMMEDIATE) or on
/// PostgreSQL (FOR UPDATE) with any number of replicas.
public struct SessionRepository: Sendable {
    let database: Database
    let activationKey: ActivationKey
    /// Bumped by every write this process makes that can change the counts (see `OverviewCache`).
    let changes = ChangeCounter()
    let allocations: GroupCommit<PendingAllocation, (AllocationOutcome, AuthenticatedUser)>
    let labOutcomes: GroupCommit<LabOutcome, Void>

    public init(database: Database, key: ActivationKey) {
        self.database = database
        self.activationKey = key
        let allocationMetrics = GroupCommitMetrics(kind: "allocations")
        self.allocations = GroupCommit(
            database: database, prepare: { db in try await Self.lockAllocations(on: db) },
            observe: { allocationMetrics.record(calls: $0, elapsed: $1) },
            body: { batch, db in try await Self.allocate(batch, key: key.key, on: db) })
        let outcomeMetrics = GroupCommitMetrics(kind: "lab_outcomes")
        self.labOutcomes = GroupCommit(
            database: database, maxBatch: 256, observe: { outcomeMetrics.record(calls: $0, elapsed: $1) }
        ) { outcomes, db in
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
            state: try row.decodeEnum(column: "state", as: SessionState.self),
            ownerID: try row.decodeOptional(column: "owner_id", as: String.self),
            ownerName: try row.decodeOptional(column: "owner_name", as: String.self),
            tokenNonce: try row.decodeOptional(column: "token_nonce", as: String.self),
            tokenDigest: try row.decodeOptional(column: "token_digest", as: String.self),
            pending: try row.decode(column: "pending", as: Bool.self),
            indexURL: try row.decodeOptional(column: "index_url", as: String.self),
            analyticsURL: try row.decodeOptional(column: "analytics_url", as: String.self),
            parameters: try Self.decodeParameters(parameters),
            provision: try row.decodeEnum(column: "provision", as: ProvisionState.self),
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
            SELECT * FROM sessions WHERE owner_id = \(bind: ownerID) AND state IN (\(binds: Self.values(SessionState.usable)))
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
                   SUM(CASE WHEN owner_id IS NULL AND state = \(bind: SessionState.claimable.rawValue) THEN 1 ELSE 0 END) AS available,
                   COUNT(*) AS active
            FROM sessions WHERE state IN (\(binds: Self.values(SessionState.live))) GROUP BY environment
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
                SELECT * FROM sessions WHERE owner_id IS NOT NULL AND state IN (\(binds: Self.values(SessionState.live)))
                ORDER BY created_at, name
                """
            ).all().map(Self.decode)
        }
        return (total, counts, sessions)
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
            guard let current = try await db.raw("SELECT * FROM sessions WHERE name = \(bind: name)")
                .first().map(Self.decode)
            else { return nil }
            switch current.activation(settings: settings, now: now) {
            case .refused: return nil
            case .alreadyRunning: return current
            case .activate(let session): try await Self.writeActivation(session, now: now, on: db); return session
            }
        }
    }

    static func writeActivation(_ session: SessionRecord, now: Date, on db: any SQLDatabase) async throws {
        try await db.update("sessions").set("state", to: session.state.rawValue).set("pending", to: false)
                .set("started_at", to: now).set("expires_at", to: session.expiresAt)
                .set("deadline_at", to: session.deadlineAt).set("updated_at", to: now)
                .set("last_seen_at", to: now).set("last_active_at", to: now)
                .where("name", .equal, session.name).run()
    }

    /// Extends a running session by one step if it is extendable now. Answers the session and whether it was.
    public func extend(_ name: String, settings: EnvironmentSettings?, now: Date) async throws -> (SessionRecord, Bool)? {
        let now = EducatesTime.truncate(now)
        return try await database.transaction { db in
            guard let current = try await db.select().column("*").from("sessions").where("name", .equal, name)
                .lockingClause(ForUpdate()).first().map(Self.decode)
            else { return nil }
            guard let session = current.extended(settings: settings, now: now) else { return (current, false) }
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
            try await Self.stop([name], now: now, on: db)
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
                SELECT name FROM sessions WHERE owner_id IS NOT NULL
                AND state IN (\(binds: Self.values(SessionState.sources(of: .stop))))
                AND expires_at IS NOT NULL AND expires_at <= \(bind: now)
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            try await Self.stop(names, now: now, on: db)
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
                SELECT name FROM sessions WHERE environment = \(bind: environment)
                AND state = \(bind: SessionState.running.rawValue) AND pending = \(bind: false) AND owner_id IS NOT NULL
                AND (COALESCE(last_active_at, started_at) <= \(bind: idle) OR COALESCE(last_seen_at, started_at) <= \(bind: unseen))
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            try await Self.stop(names, now: now, on: db)
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
                AND state IN (\(binds: Self.values(SessionState.spare)))
                """
            ).all()
            let names = try rows.map { try $0.decode(column: "name", as: String.self) }
            try await Self.stop(names, now: now, on: db)
            return names
        })
    }

    /// Stops the spares an environment no longer wants after a reload lowered its numbers: those above
    /// `max(initial, reserved)` (so the spares made at start for `initial` stay), and those that keep it above its
    /// capacity. Spares still starting go first, then the newest ready ones. Sessions with an owner are never stopped
    /// here. Answers the names stopped.
    public func trimSpares(_ environment: CatalogEnvironment, now: Date) async throws -> [String] {
        let now = EducatesTime.truncate(now)
        let policy = SparePolicy(settings: environment.settings, maximum: 0)
        @Sendable func excess(on db: any SQLDatabase) async throws -> Int {
            let spares = try await Self.count(environment: environment.name, owned: false, in: SessionState.spare, on: db)
            guard spares > 0 else { return 0 }
            let active = try await Self.count(environment: environment.name, owned: nil, in: SessionState.live, on: db)
            return policy.excess(spares: spares, environmentLive: active)
        }
        // A glance without the lock first: almost every pass finds nothing to stop, and then it neither waits for
        // the allocation lock nor holds it (nor commits a write) while session requests wait.
        guard try await excess(on: database.sql) > 0 else { return [] }
        return try await changing(try await database.transaction { db in
            try await Self.lockAllocations(on: db)
            let excess = try await excess(on: db)
            guard excess > 0 else { return [] }
            let names = try await db.raw(
                """
                SELECT name FROM sessions WHERE environment = \(bind: environment.name) AND owner_id IS NULL
                AND state IN (\(binds: Self.values(SessionState.spare)))
                ORDER BY CASE WHEN state = \(bind: SessionState.starting.rawValue) THEN 0 ELSE 1 END,
                    created_at DESC, name DESC
                LIMIT \(bind: excess)
                """
            ).all().map { try $0.decode(column: "name", as: String.self) }
            try await Self.stop(names, now: now, on: db)
            return names
        })
    }

    /// At most this many spares are made in one transaction, so that a large top-up does not hold the allocation
    /// lock (and stall session requests) while it writes them all.
    static let sparesPerTransaction = 100

    /// Tops the spares of an environment up to `reserved` (to `initial` the first time), within its capacity and the
    /// portal maximum. `initial = 0` means no spares until the first request. Answers the names created.
    public func topUp(_ environment: CatalogEnvironment, limits: SessionLimits, now: Date) async throws
        -> (created: [String], target: Int)
    {
        let now = EducatesTime.truncate(now)
        let policy = SparePolicy(settings: environment.settings, maximum: limits.maximum)
        // A glance without the lock first: almost every pass finds nothing to make (see `trimSpares`).
        let glance = try await Self.spareNeed(environment.name, policy: policy, on: database.sql)
        if glance.initialized && glance.want <= 0 { return ([], glance.target) }
        var created: [String] = []
        var target = glance.target
        while true {
            let chunk = try await database.transaction { db -> (names: [String], target: Int, more: Bool) in
                try await Self.lockAllocations(on: db)
                let need = try await Self.spareNeed(environment.name, policy: policy, on: db)
                if !need.initialized {
                    try await db.raw(
                        """
                        INSERT INTO environment_tally (environment, tally, initialized) VALUES (\(bind: environment.name), 0, \(bind: true))
                        ON CONFLICT (environment) DO UPDATE SET initialized = \(bind: true)
                        """
                    ).run()
                }
                let count = min(need.want, Self.sparesPerTransaction)
                guard count > 0 else { return ([], need.target, false) }
                let names = try await Self.nextNames(environment.name, count: count, on: db)
                let sessions = names.map { name in
                    SessionRecord(
                        name: name, environment: environment.name, workshop: environment.workshop.name,
                        state: SessionState.initial(runsAtOnce: false),
                        ownerID: nil, ownerName: nil, tokenNonce: nil, tokenDigest: nil, pending: false, indexURL: nil,
                        analyticsURL: nil, parameters: [], provision: .pending, attempts: 0, nextAttemptAt: now,
                        errorMessage: nil, url: nil, handle: nil, createdAt: now, startedAt: nil, expiresAt: nil,
                        deadlineAt: nil, stoppedAt: nil)
                }
                try await Self.insert(sessions.map { ($0, "[]") }, on: db)
                return (names, need.target, need.want > count)
            }
            created += chunk.names
            target = chunk.target
            if !chunk.names.isEmpty { changed() }
            guard chunk.more else { break }
        }
        return (created, target)
    }

    /// How many spares an environment wants made now, from its tally and counts; `initialized` is false until its
    /// first top-up (which records it).
    static func spareNeed(_ environment: String, policy: SparePolicy, on db: any SQLDatabase) async throws
        -> (target: Int, want: Int, initialized: Bool)
    {
        let tally = try await db.raw(
            "SELECT tally, initialized FROM environment_tally WHERE environment = \(bind: environment)"
        ).first()
        let history = SparePolicy.History(
            initialized: try tally?.decode(column: "initialized", as: Bool.self) ?? false,
            everUsed: (try tally?.decode(column: "tally", as: Int.self) ?? 0) > 0)
        let target = policy.target(history)
        let spares = try await Self.count(environment: environment, owned: false, in: SessionState.spare, on: db)
        let active = try await Self.count(environment: environment, owned: nil, in: SessionState.live, on: db)
        let want = try await policy.toCreate(
            target: target, spares: spares, environmentLive: active,
            portalLive: { try await Self.count(environment: nil, owned: nil, in: SessionState.live, on: db) })
        return (target, want, history.initialized)
    }

    /// Sessions whose lab should be made now: not STOPPING or STOPPED, pending or failed and due.
    public func dueForProvisioning(now: Date, limit: Int) async throws -> [SessionRecord] {
        try await database.sql.raw(
            """
            SELECT * FROM sessions WHERE state IN (\(binds: Self.values(SessionState.usable)))
            AND provision IN (\(binds: Self.values(ProvisionState.due))) AND (next_attempt_at IS NULL OR next_attempt_at <= \(bind: now))
            ORDER BY created_at, name LIMIT \(bind: limit)
            """
        ).all().map(Self.decode)
    }

    /// Sessions in STOPPING whose lab is to be torn down.
    public func dueForTeardown(limit: Int) async throws -> [SessionRecord] {
        try await database.sql.raw(
            """
            SELECT * FROM sessions WHERE state IN (\(binds: Self.values(SessionState.sources(of: .tornDown))))
            ORDER BY updated_at, name LIMIT \(bind: limit)
            """
        ).all().map(Self.decode)
    }

    /// How many live sessions each environment has, by state and by whether a user owns them (the rest are spares).
    public struct LiveCount: Sendable, Equatable {
        public var environment: String
        public var state: SessionState
        public var owned: Bool
        public var count: Int
    }

    /// The live sessions counted by environment, state and ownership, in one statement (for /metrics).
    public func liveCounts() async throws -> [LiveCount] {
        try await database.sql.raw(
            """
            SELECT environment, state, owner_id IS NOT NULL AS owned, COUNT(*) AS n FROM sessions
            WHERE state IN (\(binds: Self.values(SessionState.live)))
            GROUP BY environment, state, owner_id IS NOT NULL
            """
        ).all().compactMap { row in
            guard let state = SessionState(rawValue: try row.decode(column: "state", as: String.self)) else { return nil }
            return LiveCount(
                environment: try row.decode(column: "environment", as: String.self), state: state,
                owned: try row.decode(column: "owned", as: Bool.self), count: try row.decode(column: "n", as: Int.self))
        }
    }

    /// Sessions whose lab is up (for re-adopting the local provisioner's processes after a restart).
    public func provisioned() async throws -> [SessionRecord] {
        try await database.sql.raw(
            """
            SELECT * FROM sessions WHERE state IN (\(binds: Self.values(SessionState.usable)))
            AND provision = \(bind: ProvisionState.ready.rawValue)
            """
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
                    UPDATE sessions SET provision = \(bind: ProvisionState.ready.rawValue), url = \(bind: url),
                        handle = \(bind: handle), error_message = NULL, next_attempt_at = NULL, updated_at = \(bind: now),
                        state = \(Self.transition(.labReady))
                    WHERE name = \(bind: name) AND state IN (\(binds: Self.values(SessionState.sources(of: .labReady))))
                    """
                ).run()
            case .stopped(let name, let now):
                try await db.raw(
                    """
                    UPDATE sessions SET state = \(Self.transition(.tornDown)),
                        provision = \(bind: ProvisionState.released.rawValue), stopped_at = \(bind: now),
                        updated_at = \(bind: now), pending = \(bind: false)
                    WHERE name = \(bind: name) AND state IN (\(binds: Self.values(SessionState.sources(of: .tornDown))))
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
            UPDATE sessions SET provision = \(bind: ProvisionState.failed.rawValue), error_message = \(bind: String(message.prefix(2000))),
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
            UPDATE sessions SET provision = \(bind: ProvisionState.pending.rawValue), next_attempt_at = \(bind: EducatesTime.truncate(now)),
                updated_at = \(bind: EducatesTime.truncate(now))
            WHERE name = \(bind: name) AND provision = \(bind: ProvisionState.ready.rawValue)
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

extension SessionRepository {
    // MARK: SQL helpers: states are bound as values, never spliced into SQL text

    /// The raw values of states (or other stored enums), to bind as `IN (\(binds: …))`.
    static func values<Value: RawRepresentable>(_ cases: [Value]) -> [any Encodable & Sendable]
    where Value.RawValue == String {
        cases.map(\.rawValue)
    }

    /// `CASE state WHEN <from> THEN <to> … ELSE state END` for the changes of `event` (the transition table, bound).
    static func transition(_ event: SessionEvent) -> SQLQueryString {
        var text: SQLQueryString = "CASE state"
        for (from, to) in SessionState.changes(of: event) {
            text = text + " WHEN \(bind: from.rawValue) THEN \(bind: to.rawValue)"
        }
        return text + " ELSE state END"
    }

    /// How many sessions are in `states`, of one environment or of all (nil), owned, unowned or either (nil).
    static func count(environment: String?, owned: Bool?, in states: [SessionState], on db: any SQLDatabase)
        async throws -> Int
    {
        var query = db.select().column(SQLFunction("COUNT", args: SQLLiteral.all), as: "n").from("sessions")
        if let environment { query = query.where("environment", .equal, environment) }
        switch owned {
        case true?: query = query.where("owner_id", .isNot, SQLLiteral.null)
        case false?: query = query.where("owner_id", .is, SQLLiteral.null)
        case nil: break
        }
        query = query.where("state", .in, states.map(\.rawValue))
        return try await query.first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Puts sessions in STOPPING (their expiry becomes now); the teardown makes them STOPPED. Only sessions the stop
    /// event applies to change.
    static func stop(_ names: [String], now: Date, on db: any SQLDatabase) async throws {
        for start in stride(from: 0, to: names.count, by: 500) {
            let chunk = names[start..<min(start + 500, names.count)].map { $0 as any Encodable & Sendable }
            try await db.raw(
                """
                UPDATE sessions SET state = \(transition(.stop)), expires_at = \(bind: now), updated_at = \(bind: now)
                WHERE name IN (\(binds: chunk)) AND state IN (\(binds: values(SessionState.sources(of: .stop))))
                """
            ).run()
        }
    }

    /// The stored parameters (JSON); a value that does not read throws rather than losing the parameters.
    static func decodeParameters(_ text: String) throws -> [RequestParameter] {
        try StorageError.json([RequestParameter].self, text, column: "parameters")
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
