import Contracts
import Foundation
import ServerKit

/// The writable fields of a course, checked against the seed's rules. Every refusal is a 422 naming the field.
struct CourseInput {
    let parameters: SkytapParameters
    let templates: [String: Template]
    let ssoEnabled: Bool

    static let customContentLimit = 32 * 1024

    static func invalid(_ field: String, _ rule: String) -> ServiceFailure {
        ServiceFailure(.invalid, "\(field) \(rule)", field: field)
    }

    func apply(to course: inout CourseRecord, creating: Bool) throws {
        let p = parameters
        if let name = try p.string("name") {
            let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw Self.invalid("name", "must not be empty") }
            guard trimmed.count <= 64 else { throw Self.invalid("name", "must be at most 64 characters") }
            course.name = trimmed
        } else if creating {
            throw Self.invalid("name", "is required")
        }
        if let description = try p.string("description") {
            guard description.count <= 1000 else { throw Self.invalid("description", "must be at most 1000 characters") }
            course.description = description
        }
        var templateChanged = false
        if let ids = try p.array("template_ids") {
            let texts = ids.compactMap(\.text)
            guard texts.count == ids.count, texts.count == 1 else {
                throw Self.invalid("template_ids", "must hold exactly 1 template id")
            }
            guard templates[texts[0]] != nil else {
                throw Self.invalid("template_ids", "names no template: \(texts[0]) (GET /v2/templates lists them)")
            }
            templateChanged = texts[0] != course.templateID
            course.templateID = texts[0]
        } else if creating {
            throw Self.invalid("template_ids", "is required (an array with 1 template id)")
        }
        if let maxLabs = try intField("max_labs", 1...20) { course.maxLabs = maxLabs }
        if let access = try p.array("vm_access") {
            course.vmAccess = try vmAccess(access, template: course.templateID)
        } else if creating || templateChanged {
            // Omitted: every VM of the template gets full control; a template change resets it.
            course.vmAccess = (templates[course.templateID]?.vms ?? []).map { VMAccess(vm: $0.id, access: .runAndUse) }
        }
        if let flag = try boolField("anonymous_smart_rdp") { course.anonymousSmartRDP = flag }
        if let flag = try boolField("sso_required") {
            guard !flag || ssoEnabled else {
                throw Self.invalid("sso_required", "is only available for accounts with SSO enabled")
            }
            course.ssoRequired = flag
        }
        if p.has("support_url") {
            let url = try p.string("support_url") ?? ""
            if url.isEmpty {
                course.supportURL = nil
            } else {
                guard Self.isSupportURL(url) else {
                    throw Self.invalid(
                        "support_url", "must be one of http://example.com, https://example.com, mailto:support@example.com")
                }
                course.supportURL = url
            }
        }
        if let flag = try boolField("custom_content_enabled") { course.customContentEnabled = flag }
        if p.has("custom_title") {
            let title = try p.string("custom_title")
            guard (title?.count ?? 0) <= 32 else { throw Self.invalid("custom_title", "must be at most 32 characters") }
            course.customTitle = title
        }
        if p.has("custom_content") {
            let content = try p.string("custom_content")
            guard (content?.utf8.count ?? 0) <= Self.customContentLimit else {
                throw Self.invalid("custom_content", "must be at most 32 KB")
            }
            course.customContent = content
        }
        if let flag = try boolField("custom_content_is_default") { course.customContentIsDefault = flag }
        if course.customContentEnabled {
            guard course.customTitle?.isEmpty == false else {
                throw Self.invalid("custom_title", "is required when custom_content_enabled is true")
            }
            guard course.customContent?.isEmpty == false else {
                throw Self.invalid("custom_content", "is required when custom_content_enabled is true")
            }
        }
    }

    func intField(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
        do {
            return try parameters.int(name, in: range)
        } catch let failure as ServiceFailure {
            throw ServiceFailure(.invalid, failure.publicMessage, field: name)
        }
    }

    func boolField(_ name: String) throws -> Bool? {
        do {
            return try parameters.bool(name)
        } catch let failure as ServiceFailure {
            throw ServiceFailure(.invalid, failure.publicMessage, field: name)
        }
    }

    func vmAccess(_ items: [ParameterValue], template id: String) throws -> [VMAccess] {
        let vms = templates[id]?.vms ?? []
        var given: [String: VMAccessLevel] = [:]
        for item in items {
            guard case .object(let fields) = item, let reference = fields["vm_ref"]?.text else {
                throw Self.invalid("vm_access", "must be an array of {\"vm_ref\": <VM id>, \"access\": <level>}")
            }
            // The VM id goes in; a VM URI (what reads answer) is accepted too.
            let vm = reference.split(separator: "/").last.map(String.init) ?? reference
            guard vms.contains(where: { $0.id == vm }) else {
                throw Self.invalid(
                    "vm_access", "vm_ref \(reference) is not a VM of template \(id) (its VMs: \(vms.map(\.id).joined(separator: ", ")))")
            }
            guard given[vm] == nil else { throw Self.invalid("vm_access", "names VM \(vm) twice") }
            let levels = VMAccessLevel.allCases.map(\.rawValue).joined(separator: ", ")
            guard let text = fields["access"]?.text else {
                throw Self.invalid("vm_access", "access is required for VM \(vm) (one of \(levels))")
            }
            guard let level = VMAccessLevel(rawValue: text) else {
                throw Self.invalid("vm_access", "access must be one of \(levels), not \(text)")
            }
            given[vm] = level
        }
        return vms.map { VMAccess(vm: $0.id, access: given[$0.id] ?? .runAndUse) }
    }

    static func isSupportURL(_ text: String) -> Bool {
        guard !text.contains(where: \.isWhitespace) else { return false }
        let lower = text.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            guard let url = URL(string: text), let host = url.host, !host.isEmpty else { return false }
            return true
        }
        if lower.hasPrefix("mailto:") {
            let address = text.dropFirst(7)
            let parts = address.split(separator: "@")
            return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
        }
        return false
    }
}
