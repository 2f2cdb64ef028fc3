import Wire

/// report-service's wire methods: none of its own. It calls classroom-service and session-service for rows, and
/// answers only the wire library's `wire.ping` (liveness, for its peers and operators).
extension ReportApplication {
    public static func wireRouter() -> WireRouter { WireRouter() }
}
