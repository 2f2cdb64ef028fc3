import Contracts
import Crypto
import Foundation
import ServerKit
import SQLKit
import Storage

/// A user as session-service keeps it.
public struct UserRecord: Sendable, Equatable {
    public var user: AuthenticatedUser
    public var passwordHash: String?
    public var createdAt: Date
}

/// The token kinds in the `tokens` table.
enum TokenKind: String, Sendable {
    case access
    case refresh
    /// For HTTP Basic `username:api_token` (the Skytap paths).
    case api
    /// The cookie of a browser that activated a session.
    case browser
}

/// What an OAuth2 grant produced.
/// An OAuth client, as it authenticated.
public struct OAuthClient: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Authenticates by its id alone (a browser or CLI cannot keep a secret).
        case `public`
        /// Needs its secret.
        case confidential
    }

    public var id: String
    public var kind: Kind
    /// The account the client_credentials grant issues tokens for; nil if the client has none.
    public var serviceUserID: String?
    /// Whether the client proved itself with its secret.
    public var secretChecked: Bool
}

public struct IssuedTokens: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String
    public var expiresIn: Int
}

/// Users, OAuth clients and tokens in session-service's database. One implementation for SQLite and PostgreSQL.
/// Tokens are kept only as SHA-256 digests.
public struct IdentityRepository: Sendable {
    /// Access tokens last 10 h and refresh tokens 30 days, as in Educates.
    public static let accessLifetime: TimeInterval = 36_000
    public static let refreshLifetime: TimeInterval = 30 * 86_400
    public static let browserLifetime: TimeInterval = 7 * 86_400

    let database: Database

    public init(database: Database) { self.database = database }

    static let userColumns = [
        "id", "username", "email", "first_name", "last_name", "role", "classrooms_access", "user_manager",
        "password_hash", "created_at",
    ]

    static func decodeUser(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            user: AuthenticatedUser(
                id: try row.decode(column: "id", as: String.self),
                username: try row.decode(column: "username", as: String.self),
                email: try row.decode(column: "email", as: String.self),
                firstName: try row.decode(column: "first_name", as: String.self),
                lastName: try row.decode(column: "last_name", as: String.self),
                role: try row.decodeEnum(column: "role", as: UserRole.self),
                classroomsAccess: try row.decode(column: "classrooms_access", as: Bool.self),
                userManager: try row.decode(column: "user_manager", as: Bool.self)),
            passwordHash: try row.decode(column: "password_hash", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: Date.self))
    }

    // MARK: Users

    public struct NewUser: Sendable {
        public var username: String
        public var email: String = ""
        public var firstName: String = ""
        public var lastName: String = ""
        public var role: UserRole
        public var classroomsAccess: Bool = false
        public var userManager: Bool = false
        public var passwordHash: String? = nil

        public init(
            username: String, email: String = "", firstName: String = "", lastName: String = "", role: UserRole,
            classroomsAccess: Bool = false, userManager: Bool = false, passwordHash: String? = nil
        ) {
            self.username = username
            self.email = email
            self.firstName = firstName
            self.lastName = lastName
            self.role = role
            self.classroomsAccess = classroomsAccess
            self.userManager = userManager
            self.passwordHash = passwordHash
        }
    }

    /// Inserts a user inside a transaction the caller holds; ids are decimal and increasing.
    static func insertUser(_ new: NewUser, now: Date, on db: any SQLDatabase) async throws -> AuthenticatedUser {
        guard let user = try await insertUsers([(new, now)], on: db).first else {
            throw StorageError.misuse("no user was inserted")
        }
        return user
    }

    /// Inserts users with consecutive ids, in two statements whatever their number (session requests of a batch).
    static func insertUsers(_ users: [(user: NewUser, now: Date)], on db: any SQLDatabase) async throws
        -> [AuthenticatedUser]
    {
        guard !users.isEmpty else { return [] }
        guard
            let row = try await db.raw(
                "UPDATE counters SET value = value + \(bind: users.count) WHERE name = 'users' RETURNING value"
            ).first()
        else { throw StorageError.misuse("the users counter is missing") }
        let first = try row.decode(column: "value", as: Int.self) - users.count + 1
        var insert = db.insert(into: "users").columns(
            "id", "username", "email", "first_name", "last_name", "role", "classrooms_access", "user_manager",
            "password_hash", "created_at")
        var made: [AuthenticatedUser] = []
        for (offset, (new, now)) in users.enumerated() {
            let id = String(first + offset)
            insert = insert.values(
                SQLBind(id), SQLBind(new.username), SQLBind(new.email), SQLBind(new.firstName), SQLBind(new.lastName),
                SQLBind(new.role.rawValue), SQLBind(new.classroomsAccess), SQLBind(new.userManager),
                SQLBind(new.passwordHash), SQLBind(now))
            made.append(
                AuthenticatedUser(
                    id: id, username: new.username, email: new.email, firstName: new.firstName, lastName: new.lastName,
                    role: new.role, classroomsAccess: new.classroomsAccess, userManager: new.userManager))
        }
        try await insert.run()
        return made
    }

    /// Creates a user; a taken username is a conflict.
    public func createUser(_ new: NewUser, now: Date) async throws -> AuthenticatedUser {
        let taken = ServiceFailure(.conflict, "a user named \(new.username) already exists", field: "login_name")
        do {
            return try await database.transaction { db in
                if try await Self.user(username: new.username, on: db) != nil { throw taken }
                return try await Self.insertUser(new, now: now, on: db)
            }
        } catch where StorageError.isUniqueViolation(error) {
            // Made by another writer since the check (PostgreSQL transactions may run side by side).
            throw taken
        }
    }

    static func user(username: String, on db: any SQLDatabase) async throws -> UserRecord? {
        try await db.select().columns(userColumns).from("users").where("username", .equal, username).first()
            .map(decodeUser)
    }

    public func user(username: String) async throws -> UserRecord? {
        try await Self.user(username: username, on: database.sql)
    }

    public func user(id: String) async throws -> UserRecord? {
        try await database.sql.select().columns(Self.userColumns).from("users").where("id", .equal, id).first()
            .map(Self.decodeUser)
    }

    /// Users in id order (ids compare as numbers): `limit` of them after skipping `offset`.
    public func users(offset: Int, limit: Int) async throws -> [UserRecord] {
        let rows = try await database.sql.raw(
            """
            SELECT id, username, email, first_name, last_name, role, classrooms_access, user_manager, password_hash,
                   created_at
            FROM users ORDER BY CAST(id AS BIGINT) LIMIT \(bind: limit) OFFSET \(bind: offset)
            """
        ).all()
        return try rows.map(Self.decodeUser)
    }

    public func userCount() async throws -> Int {
        try await database.sql.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Sets `classrooms_access`; a change queues its audit activity (grant or revoke) in the same transaction.
    public func setClassroomsAccess(id: String, to value: Bool, by actor: AuthenticatedUser, now: Date) async throws
        -> AuthenticatedUser?
    {
        try await database.transaction { db in
            guard let before = try await db.select().columns(Self.userColumns).from("users").where("id", .equal, id)
                .lockingClause(ForUpdate()).first().map(Self.decodeUser)?.user
            else { return nil }
            guard before.classroomsAccess != value else { return before }
            try await db.update("users").set("classrooms_access", to: value).where("id", .equal, id).run()
            let activity = AuditActivities.classroomsAccess(of: before, to: value, by: actor, now: now)
            try await OutboxStore(database: database, table: SessionTables.auditOutbox).enqueue(
                id: activity.id, payload: String(decoding: try JSONEncoder().encode(activity), as: UTF8.self),
                at: activity.at, on: db)
            var after = before
            after.classroomsAccess = value
            return after
        }
    }

    public func setPassword(username: String, hash: String) async throws {
        try await database.sql.update("users").set("password_hash", to: hash).where("username", .equal, username).run()
    }

    // MARK: Clients

    public func ensureClient(
        id: String, secret: String, name: String, type: OAuthClient.Kind = .confidential, serviceUserID: String? = nil,
        now: Date
    ) async throws {
        try await database.sql.raw(
            """
            INSERT INTO oauth_clients (client_id, secret_digest, name, created_at, client_type, service_user_id)
            VALUES (\(bind: id), \(bind: Secrets.digest(secret)), \(bind: name), \(bind: now), \(bind: type.rawValue),
                \(bind: serviceUserID))
            ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                client_type = excluded.client_type, service_user_id = excluded.service_user_id
            """
        ).run()
    }

    /// The client `id`, if it authenticates: with `secret` when one is given (a wrong one never passes), by its id
    /// alone when it is public. Nil otherwise.
    public func authenticateClient(id: String, secret: String?) async throws -> OAuthClient? {
        guard
            let row = try await database.sql.select().columns("secret_digest", "client_type", "service_user_id")
                .from("oauth_clients").where("client_id", .equal, id).first()
        else {
            _ = Secrets.constantTimeEquals(Secrets.digest(secret ?? ""), Secrets.digest(id))
            return nil
        }
        let client = OAuthClient(
            id: id, kind: try row.decodeEnum(column: "client_type", as: OAuthClient.Kind.self),
            serviceUserID: try row.decodeOptional(column: "service_user_id", as: String.self), secretChecked: secret != nil)
        if let secret {
            guard Secrets.constantTimeEquals(try row.decode(column: "secret_digest", as: String.self), Secrets.digest(secret))
            else { return nil }
            return client
        }
        return client.kind == .public ? client : nil
    }

    /// True when the client exists and `secret` is its secret.
    public func checkClient(id: String, secret: String) async throws -> Bool {
        try await authenticateClient(id: id, secret: secret) != nil
    }

    // MARK: Tokens

    /// Stores a token's digest. `expires` nil means it lasts until revoked (API tokens).
    static func storeToken(
        _ token: String, kind: TokenKind, userID: String, clientID: String?, grantID: String?, expires: Date?,
        now: Date, on db: any SQLDatabase
    ) async throws {
        try await db.raw(
            """
            INSERT INTO tokens (digest, kind, user_id, client_id, grant_id, expires_at, created_at)
            VALUES (\(bind: Secrets.digest(token)), \(bind: kind.rawValue), \(bind: userID), \(bind: clientID),
                    \(bind: grantID), \(bind: expires), \(bind: now))
            """
        ).run()
    }

    /// A new access and refresh token pair for `userID`, issued to `clientID`.
    public func issueGrant(userID: String, clientID: String, now: Date) async throws -> IssuedTokens {
        let access = Secrets.token(length: 30)
        let refresh = Secrets.token(length: 30)
        let grant = Secrets.token(length: 24)
        try await database.transaction { db in
            try await Self.storeToken(
                access, kind: .access, userID: userID, clientID: clientID, grantID: grant,
                expires: now.addingTimeInterval(Self.accessLifetime), now: now, on: db)
            try await Self.storeToken(
                refresh, kind: .refresh, userID: userID, clientID: clientID, grantID: grant,
                expires: now.addingTimeInterval(Self.refreshLifetime), now: now, on: db)
        }
        return IssuedTokens(accessToken: access, refreshToken: refresh, expiresIn: Int(Self.accessLifetime))
    }

    /// Trades a refresh token of `clientID` for a new pair; the old pair stops working. Nil if the refresh token
    /// is unknown, expired, revoked, or belongs to another client.
    public func refresh(_ refreshToken: String, clientID: String, now: Date) async throws -> (IssuedTokens, String)? {
        let digest = Secrets.digest(refreshToken)
        let access = Secrets.token(length: 30)
        let refresh = Secrets.token(length: 30)
        let grant = Secrets.token(length: 24)
        return try await database.transaction { db in
            guard
                let row = try await db.select().columns("user_id", "client_id", "grant_id", "expires_at")
                    .from("tokens").where("digest", .equal, digest).where("kind", .equal, TokenKind.refresh.rawValue)
                    .lockingClause(ForUpdate()).first(),
                try row.decode(column: "client_id", as: String?.self) == clientID,
                let expires = try row.decode(column: "expires_at", as: Date?.self), expires > now
            else { return nil }
            let userID = try row.decode(column: "user_id", as: String.self)
            if let old = try row.decode(column: "grant_id", as: String?.self) {
                try await db.delete(from: "tokens").where("grant_id", .equal, old).run()
            }
            try await Self.storeToken(
                access, kind: .access, userID: userID, clientID: clientID, grantID: grant,
                expires: now.addingTimeInterval(Self.accessLifetime), now: now, on: db)
            try await Self.storeToken(
                refresh, kind: .refresh, userID: userID, clientID: clientID, grantID: grant,
                expires: now.addingTimeInterval(Self.refreshLifetime), now: now, on: db)
            return (IssuedTokens(accessToken: access, refreshToken: refresh, expiresIn: Int(Self.accessLifetime)), userID)
        }
    }

    /// Revokes a token of `clientID` (access or refresh) and the rest of its grant. Unknown tokens are ignored, as
    /// RFC 7009 asks.
    public func revoke(_ token: String, clientID: String) async throws {
        let digest = Secrets.digest(token)
        try await database.transaction { db in
            guard
                let row = try await db.select().columns("client_id", "grant_id").from("tokens")
                    .where("digest", .equal, digest).first(),
                try row.decode(column: "client_id", as: String?.self) == clientID
            else { return }
            if let grant = try row.decode(column: "grant_id", as: String?.self) {
                try await db.delete(from: "tokens").where("grant_id", .equal, grant).run()
            } else {
                try await db.delete(from: "tokens").where("digest", .equal, digest).run()
            }
        }
    }

    /// A new API token for HTTP Basic.
    public func issueAPIToken(userID: String, now: Date) async throws -> String {
        let token = Secrets.token(length: 40)
        try await Self.storeToken(
            token, kind: .api, userID: userID, clientID: nil, grantID: nil, expires: nil, now: now, on: database.sql)
        return token
    }

    /// Stores a given API token (the one in the credentials file), unless it is already there.
    public func ensureAPIToken(_ token: String, userID: String, now: Date) async throws {
        try await database.sql.raw(
            """
            INSERT INTO tokens (digest, kind, user_id, client_id, grant_id, expires_at, created_at)
            VALUES (\(bind: Secrets.digest(token)), \(bind: TokenKind.api.rawValue), \(bind: userID), NULL, NULL,
                    NULL, \(bind: now))
            ON CONFLICT (digest) DO NOTHING
            """
        ).run()
    }

    /// A browser cookie for `userID`, made when it activates a session.
    public func issueBrowserToken(userID: String, now: Date) async throws -> String {
        let token = Secrets.token(length: 32)
        try await Self.storeToken(
            token, kind: .browser, userID: userID, clientID: nil, grantID: nil,
            expires: now.addingTimeInterval(Self.browserLifetime), now: now, on: database.sql)
        return token
    }

    /// The user a token of one of `kinds` belongs to, if it is known and not expired.
    func user(token: String, kinds: [TokenKind], now: Date) async throws -> AuthenticatedUser? {
        guard
            let row = try await database.sql.raw(
                """
                SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.role, u.classrooms_access,
                       u.user_manager, u.password_hash, u.created_at, t.kind AS token_kind, t.expires_at AS token_expires
                FROM tokens t JOIN users u ON u.id = t.user_id
                WHERE t.digest = \(bind: Secrets.digest(token))
                """
            ).first()
        else { return nil }
        guard kinds.contains(try row.decodeEnum(column: "token_kind", as: TokenKind.self)) else { return nil }
        if let expires = try row.decode(column: "token_expires", as: Date?.self), expires <= now { return nil }
        return try Self.decodeUser(row).user
    }

    /// Deletes expired tokens; answers how many.
    @discardableResult
    public func purgeExpiredTokens(now: Date) async throws -> Int {
        let rows = try await database.sql.raw(
            "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= \(bind: now) RETURNING digest"
        ).all()
        return rows.count
    }

    // MARK: Secrets

    /// A named 256-bit key, made once and shared by every replica through the database.
    public func key(named name: String) async throws -> SymmetricKey {
        let fresh = Secrets.hex(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        try await database.sql.raw(
            "INSERT INTO secrets (name, value) VALUES (\(bind: name), \(bind: fresh)) ON CONFLICT (name) DO NOTHING"
        ).run()
        guard
            let row = try await database.sql.select().column("value").from("secrets").where("name", .equal, name)
                .first(),
            let bytes = Secrets.unhex(try row.decode(column: "value", as: String.self))
        else { throw StorageError.misuse("secret \(name) is missing") }
        return SymmetricKey(data: bytes)
    }
}
