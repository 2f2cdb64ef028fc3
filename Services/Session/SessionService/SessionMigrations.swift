import Storage

/// The versioned schema of session-service. Released versions never change; add a new one instead.
enum SessionMigrations {
    static let all: [Migration] =
        [Migration(version: 1, name: "leases", statements: Leases.migrationStatements)]
        + IdentityRepository.migrations + SessionRepository.migrations
        + LabEnvironmentRepository.migrations + AuditOutbox.migrations + AnalyticsOutbox.migrations
}
