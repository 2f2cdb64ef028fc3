import Contracts
import Foundation
import ServerKit

/// The JSON bodies of the Classrooms resources, fields in the seed's order.
struct Representations: Sendable {
    let base: String

    init(_ settings: ClassroomDependencies.Settings) { base = settings.publicURL }

    func userURL(_ id: String) -> String { "\(base)/users/\(id)" }

    func vmURL(_ id: String) -> String { "\(base)/vms/\(id)" }

    func template(_ template: Template) -> JSONValue {
        .object([
            ("id", .string(template.id)),
            ("url", .string("\(base)/v2/templates/\(template.id)")),
            ("name", .string(template.name)),
            ("description", .string(template.description)),
            ("region", .string(template.region)),
            ("vms", .array(template.vms.map { .object([("id", .string($0.id)), ("name", .string($0.name))]) })),
            ("storage", .int(template.storage)),
        ])
    }

    func course(_ course: CourseRecord, templates: [String: Template], caller: AuthenticatedUser) -> JSONValue {
        let template = templates[course.templateID]
        let names = Dictionary(template?.vms.map { ($0.id, $0.name) } ?? [], uniquingKeysWith: { first, _ in first })
        return .object([
            ("id", .string(String(course.id))),
            ("url", .string("\(base)/v2/courses/\(course.id)")),
            ("name", .string(course.name)),
            ("description", .string(course.description)),
            ("template_ids", .strings([course.templateID])),
            ("template_missing", .bool(template == nil)),
            ("max_labs", .int(course.maxLabs)),
            ("vm_access", .array(course.vmAccess.map {
                .object([("vm_ref", .string(vmURL($0.vm))), ("name", .string(names[$0.vm] ?? "")),
                         ("access", .string($0.access.rawValue))])
            })),
            ("anonymous_smart_rdp", .bool(course.anonymousSmartRDP)),
            ("sso_required", .bool(course.ssoRequired)),
            ("custom_content_enabled", .bool(course.customContentEnabled)),
            ("custom_title", .string(course.customTitle)),
            ("custom_content", .string(course.customContent)),
            ("custom_content_is_default", .bool(course.customContentIsDefault)),
            ("class_count", .int(course.classCount)),
            ("created_at", .string(SkytapTime.string(course.createdAt))),
            ("last_deployed", .string(SkytapTime.string(course.lastDeployed))),
            ("can_edit", .bool(caller.isAdmin || caller.id == course.owner.id)),
            ("owner_id", .string(course.owner.id)),
            ("owner_name", .string(course.owner.name)),
            ("owner_url", .string(userURL(course.owner.id))),
            ("last_updated_by", .object([
                ("id", .string(course.lastUpdatedBy.id)), ("name", .string(course.lastUpdatedBy.name)),
                ("url", .string(userURL(course.lastUpdatedBy.id))),
            ])),
            ("storage", .int(template?.storage ?? 0)),
            ("templates", .array(template.map { [self.template($0)] } ?? [])),
        ])
    }

    func klass(_ record: ClassRecord, caller: AuthenticatedUser) -> JSONValue {
        let zone = record.zone
        return .object([
            ("id", .string(String(record.id))),
            ("url", .string("\(base)/v2/classes/\(record.id)")),
            ("name", .string(record.name)),
            ("description", .string(record.description)),
            ("course_id", .string(String(record.courseID))),
            ("start_at", .string(SkytapTime.string(record.startAt, in: zone))),
            ("end_at", .string(SkytapTime.string(record.endAt, in: zone))),
            ("time_zone", .string(record.timeZone)),
            ("provision_hours", .int(record.provisionHours)),
            ("run_hours", .int(record.runHours)),
            ("cleanup_hours", .int(record.cleanupHours)),
            ("shutdown_hours", .int(record.shutdownHours)),
            ("delete_at_end", .bool(record.deleteAtEnd)),
            ("daily_startup_time", .string(record.dailyStartupTime)),
            ("daily_shutdown_time", .string(record.dailyShutdownTime)),
            ("start_time", .string(record.startTime)),
            ("end_time", .string(record.endTime)),
            ("runtime_limit", .int(record.runtimeLimit)),
            ("expiration_date", .string(SkytapTime.string(record.expirationDate, in: zone))),
            ("access_code", .string(record.accessCode)),
            ("instructor_url", .string("\(base)/instructor/\(record.id)?access_code=\(record.accessCode)")),
            ("state", .string(record.state.rawValue)),
            ("created_at", .string(SkytapTime.string(record.createdAt, in: zone))),
            ("can_edit", .bool(caller.isAdmin || caller.id == record.owner.id)),
            ("owner_id", .string(record.owner.id)),
            ("owner_name", .string(record.owner.name)),
            ("owner_url", .string(userURL(record.owner.id))),
            ("lab_count", .int(record.labCount)),
            ("labs_created_at", .string(SkytapTime.string(record.labsCreatedAt, in: zone))),
            ("labs_run_at", .string(SkytapTime.string(record.labsRunAt, in: zone))),
            ("labs_deleted_at", .string(SkytapTime.string(record.labsDeletedAt, in: zone))),
            ("labs_shutdown_at", .string(SkytapTime.string(record.labsShutdownAt, in: zone))),
            ("error_message", .string(record.errorMessage)),
            ("regions", .strings(record.region.isEmpty ? [] : [record.region])),
        ])
    }

    func desktopsURL(_ lab: LabRecord) -> String? {
        desktopsURL(configurationID: lab.configurationID, accessToken: lab.accessToken)
    }

    func desktopsURL(configurationID: String?, accessToken: String) -> String? {
        configurationID == nil ? nil : desktopsPrefix + accessToken
    }

    /// A lab's desktops URL without its access token.
    var desktopsPrefix: String { "\(base)/desktops/" }

    func lab(_ lab: LabRecord, template: Template?, templateID: String) -> JSONValue {
        .object([
            ("id", .string(String(lab.id))),
            ("url", .string("\(base)/v2/labs/\(lab.id)")),
            ("class_id", .string(String(lab.classID))),
            ("name", .string(lab.name)),
            ("template_name", .string(template?.name ?? templateID)),
            ("template_id", .string(templateID)),
            ("region", .string(template?.region ?? "")),
            ("configuration_id", .string(lab.configurationID)),
            ("desktops_url", .string(desktopsURL(lab))),
            ("state", .string(lab.state.rawValue)),
            ("error_message", .string(lab.errorMessage)),
        ])
    }

    /// A class's lab environment, in the shape of a Skytap v2 environment.
    func configuration(_ lab: LabRecord, template: Template?, templateID: String) -> JSONValue {
        let runstate: String
        switch lab.state {
        case .started: runstate = "running"
        case .provisioned, .shutDown: runstate = "stopped"
        case .provisioning, .starting, .shuttingDown, .deleting: runstate = "busy"
        default: runstate = lab.state.isError ? "error" : "stopped"
        }
        return .object([
            ("id", .string(lab.configurationID)),
            ("url", .string(lab.environmentURL)),
            ("name", .string(lab.name)),
            ("runstate", .string(runstate)),
            ("lab_id", .string(String(lab.id))),
            ("template_id", .string(templateID)),
            ("region", .string(template?.region ?? "")),
            ("desktops_url", .string(desktopsURL(lab))),
            ("errors", .strings(lab.errorMessage.map { [$0] } ?? [])),
        ])
    }
}
