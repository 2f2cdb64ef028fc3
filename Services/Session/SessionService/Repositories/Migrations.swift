import Storage

/// The versioned schema of session-service, every table in version order. Released versions never change; add a new
/// one at the end instead.
enum SessionMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "leases", statements: Leases.migrationStatements),
        Migration(
            version: 2, name: "identity",
            statements: [
                "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO counters (name, value) VALUES ('users', 0)",
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    username TEXT NOT NULL UNIQUE,
                    email TEXT NOT NULL,
                    first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    classrooms_access BOOLEAN NOT NULL,
                    user_manager BOOLEAN NOT NULL,
                    password_hash TEXT,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                """
                CREATE TABLE oauth_clients (
                    client_id TEXT PRIMARY KEY,
                    secret_digest TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                """
                CREATE TABLE tokens (
                    digest TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    client_id TEXT,
                    grant_id TEXT,
                    expires_at TIMESTAMP,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX tokens_grant ON tokens (grant_id)",
                "CREATE INDEX tokens_user ON tokens (user_id)",
                "CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            ]),
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
            version: 5, name: "lab_environments",
            statements: [
                """
                CREATE TABLE lab_environments (
                    name TEXT PRIMARY KEY,
                    lab TEXT NOT NULL,
                    workshop TEXT NOT NULL,
                    owner TEXT,
                    target TEXT NOT NULL,
                    phase TEXT NOT NULL,
                    error_message TEXT,
                    url TEXT,
                    handle TEXT,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX lab_environments_lab ON lab_environments (lab, created_at)",
                "CREATE INDEX lab_environments_phase ON lab_environments (phase, target)",
            ]),
        Migration(
            version: 6, name: "audit_outbox",
            statements: [
                """
                CREATE TABLE audit_outbox (
                    id TEXT PRIMARY KEY,
                    seq BIGINT NOT NULL,
                    payload TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP NOT NULL,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX audit_outbox_due ON audit_outbox (next_attempt_at)",
            ]),
        Migration(
            version: 7, name: "sessions_activity",
            statements: [
                // The session page reports that it is open (seen) and that its user works in it (active); a session
                // of an environment with `orphaned` set ends when nobody does for long enough.
                "ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMP",
                "ALTER TABLE sessions ADD COLUMN last_active_at TIMESTAMP",
            ]),
        Migration(
            version: 8, name: "analytics_outbox",
            statements: [
                """
                CREATE TABLE analytics_outbox (
                    id TEXT PRIMARY KEY,
                    seq BIGINT NOT NULL,
                    session TEXT NOT NULL,
                    url TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    next_attempt_at TIMESTAMP NOT NULL,
                    created_at TIMESTAMP NOT NULL,
                    last_error TEXT
                )
                """,
                "CREATE INDEX analytics_outbox_due ON analytics_outbox (next_attempt_at, seq)",
            ]),
        Migration(
            version: 9, name: "oauth_client_types",
            statements: [
                // A public client authenticates by its id alone (Educates' robot client); a confidential one needs its
                // secret, and may have a service account for the client_credentials grant.
                "ALTER TABLE oauth_clients ADD COLUMN client_type TEXT NOT NULL DEFAULT 'confidential'",
                "ALTER TABLE oauth_clients ADD COLUMN service_user_id TEXT",
            ]),
    ]
}
