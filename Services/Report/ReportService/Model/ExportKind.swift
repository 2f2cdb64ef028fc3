import Contracts
import Foundation
import ServerKit

/// The reports: what each lists, where it lives, who may ask for it, and its CSV columns (the resource's fields in
/// the seed's order).
public enum ExportKind: String, Sendable, Codable, CaseIterable {
    case courses
    case classes
    case labs
    case audit
    case sessions

    /// The path of a report of this kind, before `/<id>`.
    public var path: String {
        switch self {
        case .courses: "/v2/courses/exports"
        case .classes: "/v2/classes/exports"
        case .labs: "/v2/labs/exports"
        case .audit: "/auditing/exports"
        case .sessions: "/workshops/sessions/exports"
        }
    }

    /// The service whose rows a report of this kind holds, for messages.
    public var peer: String { self == .sessions ? "session-service" : "classroom-service" }

    /// Whether its rows come in the compact row form (`RowPage`), whose pages may be larger.
    public var readsRowPages: Bool { self == .labs }

    /// The CSV header.
    public var columns: [String] {
        switch self {
        case .courses:
            [
                "id", "name", "description", "template_ids", "template_missing", "max_labs", "vm_access",
                "anonymous_smart_rdp", "sso_required", "custom_content_enabled", "custom_title", "custom_content",
                "custom_content_is_default", "class_count", "created_at", "last_deployed", "owner_id", "owner_name",
                "owner_url", "last_updated_by_id", "last_updated_by_name", "storage",
            ]
        case .classes:
            [
                "id", "name", "description", "course_id", "start_at", "end_at", "time_zone", "provision_hours",
                "run_hours", "cleanup_hours", "shutdown_hours", "delete_at_end", "daily_startup_time",
                "daily_shutdown_time", "start_time", "end_time", "runtime_limit", "expiration_date", "access_code",
                "state", "created_at", "owner_id", "owner_name", "owner_url", "lab_count", "labs_created_at",
                "labs_run_at", "labs_deleted_at", "labs_shutdown_at", "error_message", "regions",
            ]
        case .labs:
            [
                "id", "class_id", "name", "template_name", "template_id", "region", "configuration_id", "desktops_url",
                "state",
            ]
        case .audit:
            ["id", "activity", "created_at", "user_id", "user_name", "target_type", "target_id", "target_name", "details"]
        case .sessions:
            [
                "name", "environment", "workshop", "state", "user", "created_at", "started_at", "expires_at",
                "stopped_at", "url", "error_message",
            ]
        }
    }
}

/// Cells: text as is, numbers in decimal, booleans `true`/`false`, null empty, times in the seed's format
/// (`YYYY/MM/DD HH:MM:SS ±hhmm`: a class's in its time zone, the others in UTC), arrays of strings joined with `|`,
/// and `vm_access` as `<vm_ref>=<access>` per VM joined with `|`.
enum Cells {
    static func time(_ date: Date?, _ zone: TimeZone = SkytapTime.utc) -> String? {
        date.map { SkytapTime.string($0, in: zone) }
    }

    static func int(_ value: Int?) -> String? { value.map(String.init) }

    static func bool(_ value: Bool) -> String { value ? "true" : "false" }

    static func list(_ values: [String]) -> String { values.joined(separator: "|") }

    static func row(_ course: CourseItem) -> [String?] {
        [
            course.id, course.name, course.description, list(course.templateIDs), bool(course.templateMissing),
            int(course.maxLabs), list(course.vmAccess.map { "\($0.vmRef)=\($0.access)" }),
            bool(course.anonymousSmartRDP), bool(course.ssoRequired), bool(course.customContentEnabled),
            course.customTitle, course.customContent, bool(course.customContentIsDefault), int(course.classCount),
            time(course.createdAt), time(course.lastDeployed), course.ownerID, course.ownerName, course.ownerURL,
            course.lastUpdatedByID, course.lastUpdatedByName, int(course.storage),
        ]
    }

    static func row(_ item: ClassItem) -> [String?] {
        let zone = SkytapTime.zone(named: item.timeZone) ?? SkytapTime.utc
        return [
            item.id, item.name, item.description, item.courseID, time(item.startAt, zone), time(item.endAt, zone),
            item.timeZone, int(item.provisionHours), int(item.runHours), int(item.cleanupHours),
            int(item.shutdownHours), bool(item.deleteAtEnd), item.dailyStartupTime, item.dailyShutdownTime,
            item.startTime, item.endTime, int(item.runtimeLimit), time(item.expirationDate, zone), item.accessCode,
            item.state, time(item.createdAt, zone), item.ownerID, item.ownerName, item.ownerURL, int(item.labCount),
            time(item.labsCreatedAt, zone), time(item.labsRunAt, zone), time(item.labsDeletedAt, zone),
            time(item.labsShutdownAt, zone), item.errorMessage, list(item.regions),
        ]
    }

    static func row(_ lab: LabItem) -> [String?] {
        [
            lab.id, lab.classID, lab.name, lab.templateName, lab.templateID, lab.region, lab.configurationID,
            lab.desktopsURL, lab.state,
        ]
    }

    static func row(_ event: AuditItem) -> [String?] {
        [
            event.id, event.activity, time(event.createdAt), event.userID, event.userName, event.targetType,
            event.targetID, event.targetName, event.details,
        ]
    }

    static func row(_ session: SessionItem) -> [String?] {
        [
            session.name, session.environment, session.workshop, session.state.rawValue, session.user,
            time(session.createdAt), time(session.startedAt), time(session.expiresAt), time(session.stoppedAt),
            session.url, session.errorMessage,
        ]
    }
}

/// The filters a report was asked with: the matching list's (`query`, `created_at`, `last_deployed`, `sort`) and, for
/// a class's labs, the class — the same as the `*.page` methods take.
public typealias ExportFilters = ListFilters
