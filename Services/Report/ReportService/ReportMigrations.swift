import Storage

/// The versioned schema of report-service. Released versions never change; add a new one instead.
enum ReportMigrations {
    static let all: [Migration] =
        [Migration(version: 1, name: "leases", statements: Leases.migrationStatements)]
        + ExportRepository.migrations + DatabaseBlobStore.migrations
}
