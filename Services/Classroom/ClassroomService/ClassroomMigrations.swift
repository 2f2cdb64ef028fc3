import Storage

/// The versioned schema of classroom-service. Released versions never change; add a new one instead.
enum ClassroomMigrations {
    static let all: [Migration] =
        [Migration(version: 1, name: "leases", statements: Leases.migrationStatements)] + ClassroomRepository.migrations
}
