import Storage

/// The versioned schema of catalog-service, every table in version order. Released versions never change; add a new one at
/// the end instead.
enum CatalogMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "leases", statements: Leases.migrationStatements),
        Migration(
            version: 2, name: "portal",
            statements: [
                """
                CREATE TABLE portal (
                    id BIGINT PRIMARY KEY,
                    generation BIGINT NOT NULL,
                    next_environment BIGINT NOT NULL,
                    digest TEXT NOT NULL,
                    definition TEXT NOT NULL,
                    updated_at TIMESTAMP NOT NULL
                )
                """,
                """
                CREATE TABLE environments (
                    name TEXT PRIMARY KEY,
                    position BIGINT NOT NULL,
                    workshop_name TEXT NOT NULL,
                    state TEXT NOT NULL,
                    workshop TEXT NOT NULL,
                    settings TEXT NOT NULL,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL
                )
                """,
            ]),
    ]
}
