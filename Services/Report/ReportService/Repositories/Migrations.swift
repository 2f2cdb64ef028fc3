import Storage

/// The versioned schema of report-service, every table in version order. Released versions never change; add a new one at
/// the end instead.
enum ReportMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "leases", statements: Leases.migrationStatements),
        Migration(
            version: 2, name: "exports",
            statements: [
                "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO counters (name, value) VALUES ('exports', 0)",
                """
                CREATE TABLE exports (
                    id BIGINT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    owner_id TEXT NOT NULL,
                    owner_email TEXT NOT NULL,
                    filters TEXT NOT NULL,
                    notify_by_email BOOLEAN NOT NULL,
                    state TEXT NOT NULL,
                    rows BIGINT NOT NULL,
                    bytes BIGINT NOT NULL,
                    error TEXT,
                    attempts BIGINT NOT NULL,
                    holder TEXT,
                    lease_until TIMESTAMP,
                    next_attempt_at TIMESTAMP NOT NULL,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL,
                    ready_at TIMESTAMP,
                    expires_at TIMESTAMP,
                    emailed_at TIMESTAMP
                )
                """,
                "CREATE INDEX exports_work ON exports (state, next_attempt_at)",
                "CREATE INDEX exports_owner ON exports (owner_id, state)",
                "CREATE INDEX exports_expiry ON exports (expires_at)",
            ]),
        Migration(
            version: 3, name: "export_blobs",
            statements: [
                """
                CREATE TABLE export_blobs (
                    blob_key TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    data TEXT NOT NULL,
                    complete BOOLEAN NOT NULL,
                    PRIMARY KEY (blob_key, seq)
                )
                """
            ]),
    ]
}
