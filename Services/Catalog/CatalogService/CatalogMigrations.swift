import Storage

/// The versioned schema of catalog-service. Released versions never change; add a new one instead.
enum CatalogMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "leases", statements: Leases.migrationStatements)
    ] + PortalRepository.migrations
}
