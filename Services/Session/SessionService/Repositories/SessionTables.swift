import Storage

/// The tables of session-service that shared mechanisms (the outboxes) read and write; their schema is in
/// `SessionMigrations`.
enum SessionTables {
    static let auditOutbox = OutboxStore.Table(name: "audit_outbox")
    static let analyticsOutbox = OutboxStore.Table(
        name: "analytics_outbox", destination: "url", label: "session", lastError: "last_error")
}
