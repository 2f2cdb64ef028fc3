import Storage

/// The versioned schema of classroom-service, every table in version order. Released versions never change; add a new one at
/// the end instead.
enum ClassroomMigrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "leases", statements: Leases.migrationStatements),
        Migration(
            version: 2, name: "classrooms",
            statements: [
                "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO counters (name, value) VALUES ('courses', 0), ('classes', 0), ('labs', 0), ('audit', 0)",
                """
                CREATE TABLE courses (
                    id BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    template_id TEXT NOT NULL,
                    max_labs BIGINT NOT NULL,
                    vm_access TEXT NOT NULL,
                    anonymous_smart_rdp BOOLEAN NOT NULL,
                    sso_required BOOLEAN NOT NULL,
                    support_url TEXT,
                    custom_content_enabled BOOLEAN NOT NULL,
                    custom_title TEXT,
                    custom_content TEXT,
                    custom_content_is_default BOOLEAN NOT NULL,
                    owner_id TEXT NOT NULL,
                    owner_name TEXT NOT NULL,
                    updated_by_id TEXT NOT NULL,
                    updated_by_name TEXT NOT NULL,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL,
                    last_deployed TIMESTAMP,
                    class_count BIGINT NOT NULL
                )
                """,
                "CREATE INDEX courses_owner ON courses (owner_id, id)",
                "CREATE INDEX courses_created ON courses (created_at, id)",
                """
                CREATE TABLE classes (
                    id BIGINT PRIMARY KEY,
                    course_id BIGINT NOT NULL,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    owner_id TEXT NOT NULL,
                    owner_name TEXT NOT NULL,
                    start_at TIMESTAMP NOT NULL,
                    end_at TIMESTAMP,
                    time_zone TEXT NOT NULL,
                    provision_hours BIGINT NOT NULL,
                    run_hours BIGINT NOT NULL,
                    cleanup_hours BIGINT,
                    shutdown_hours BIGINT,
                    daily_startup_time TEXT,
                    daily_shutdown_time TEXT,
                    start_time TEXT,
                    end_time TEXT,
                    runtime_limit BIGINT,
                    expiration_date TIMESTAMP,
                    password_hash TEXT,
                    access_code TEXT NOT NULL,
                    state TEXT NOT NULL,
                    error_message TEXT,
                    lab_count BIGINT NOT NULL,
                    labs_created_at TIMESTAMP,
                    labs_run_at TIMESTAMP,
                    labs_shutdown_at TIMESTAMP,
                    labs_deleted_at TIMESTAMP,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL,
                    progress BIGINT NOT NULL,
                    lab_target TEXT,
                    next_due_at TIMESTAMP,
                    deleting BOOLEAN NOT NULL,
                    region TEXT NOT NULL
                )
                """,
                "CREATE INDEX classes_due ON classes (next_due_at)",
                "CREATE INDEX classes_course ON classes (course_id, id)",
                "CREATE INDEX classes_owner ON classes (owner_id, id)",
                "CREATE INDEX classes_state ON classes (state, id)",
                "CREATE INDEX classes_created ON classes (created_at, id)",
                """
                CREATE TABLE labs (
                    id BIGINT PRIMARY KEY,
                    class_id BIGINT NOT NULL,
                    name TEXT NOT NULL,
                    state TEXT NOT NULL,
                    configuration_id TEXT,
                    environment_url TEXT,
                    error_message TEXT,
                    target TEXT,
                    pushed BOOLEAN NOT NULL,
                    removed BOOLEAN NOT NULL,
                    access_token TEXT NOT NULL,
                    first_access_at TIMESTAMP,
                    created_at TIMESTAMP NOT NULL,
                    updated_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX labs_class ON labs (class_id, id)",
                "CREATE INDEX labs_pushed ON labs (pushed, id)",
                "CREATE INDEX labs_state ON labs (state, id)",
                "CREATE UNIQUE INDEX labs_token ON labs (access_token)",
                """
                CREATE TABLE audit_events (
                    id BIGINT PRIMARY KEY,
                    activity TEXT NOT NULL,
                    actor_id TEXT NOT NULL,
                    actor_name TEXT NOT NULL,
                    target_type TEXT NOT NULL,
                    target_id TEXT NOT NULL,
                    target_name TEXT NOT NULL,
                    details TEXT NOT NULL,
                    created_at TIMESTAMP NOT NULL
                )
                """,
                "CREATE INDEX audit_created ON audit_events (created_at, id)",
            ]),
        Migration(
            version: 3, name: "audit_external_ids",
            statements: [
                // Activities other services report carry their own id, so that a retried delivery is recorded once.
                "ALTER TABLE audit_events ADD COLUMN external_id TEXT",
                "CREATE UNIQUE INDEX audit_external ON audit_events (external_id)",
            ]),
        Migration(
            version: 4, name: "class_problem",
            statements: [
                // What a class's error_message is about (ClassProblem), instead of telling it by the message's prefix.
                "ALTER TABLE classes ADD COLUMN problem TEXT",
                """
                UPDATE classes SET problem = 'template_missing'
                WHERE error_message LIKE 'the course''s template%'
                """,
                "UPDATE classes SET problem = 'lab_failed' WHERE error_message LIKE 'lab %'",
                """
                UPDATE classes SET problem = 'session_service_unreachable'
                WHERE error_message LIKE 'session-service could not be reached%'
                """,
            ]),
    ]
}
