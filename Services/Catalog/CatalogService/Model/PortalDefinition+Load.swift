import Foundation
import Yams

extension PortalDefinition {
    /// Reads and validates a portal file.
    public static func load(path: String) throws -> PortalDefinition {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PortalDefinitionError(field: path, problem: "cannot be read")
        }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    /// Parses and validates the YAML text of a portal file.
    public static func parse(_ yaml: String) throws -> PortalDefinition {
        let root: Any?
        do {
            root = try Yams.load(yaml: yaml)
        } catch {
            throw PortalDefinitionError(field: "(file)", problem: "is not valid YAML: \(error)")
        }
        let file = try Node(root ?? [String: Any](), path: "")
        try file.allowOnly(["portal", "workshops", "environments"])

        let portalNode = try file.object("portal")
        try portalNode.allowOnly(["name", "uid", "url", "labels", "sessions", "index_url", "capacity"])
        let portalName = try portalNode.slug("name")
        let sessionsNode = try portalNode.object("sessions", optional: true)
        try sessionsNode.allowOnly(["maximum", "registered", "anonymous"])
        let limits = SessionLimits(
            maximum: try sessionsNode.int("maximum", default: 0, min: 0),
            registered: try sessionsNode.int("registered", default: 0, min: 0),
            anonymous: try sessionsNode.int("anonymous", default: 0, min: 0))
        let url = try portalNode.string("url", default: "http://localhost:8080")
        let portal = Portal(
            name: portalName,
            uid: try portalNode.string("uid", default: Self.derivedUID(portalName)),
            url: url,
            labels: try portalNode.labels("labels"),
            sessions: limits,
            indexURL: try portalNode.string("index_url", default: url))
        let defaultCapacity = try portalNode.int("capacity", default: limits.maximum, min: 0)

        var workshops: [Workshop] = []
        for (index, node) in try file.list("workshops").enumerated() {
            try node.allowOnly([
                "name", "title", "description", "vendor", "authors", "difficulty", "duration", "tags", "logo", "url",
                "labels", "content", "session", "vms", "region", "request",
            ])
            let name = try node.slug("name")
            if workshops.contains(where: { $0.name == name }) {
                throw PortalDefinitionError(field: "workshops[\(index)].name", problem: "repeats the workshop '\(name)'")
            }
            let content = try node.object("content", optional: true)
            try content.allowOnly(["image", "files"])
            let session = try node.object("session", optional: true)
            try session.allowOnly(["command"])
            var vms: [VM] = []
            for vm in try node.list("vms", optional: true) {
                try vm.allowOnly(["id", "name"])
                let id = try vm.slug("id")
                if vms.contains(where: { $0.id == id }) {
                    throw PortalDefinitionError(field: vm.path + ".id", problem: "repeats the VM id '\(id)'")
                }
                vms.append(VM(id: id, name: try vm.string("name", default: id)))
            }
            let request = try node.object("request", optional: true)
            try request.allowOnly(["parameters"])
            var parameters: [Parameter] = []
            for parameter in try request.list("parameters", optional: true) {
                try parameter.allowOnly(["name", "value"])
                let parameterName = try parameter.string("name")
                guard !parameterName.isEmpty else {
                    throw PortalDefinitionError(field: parameter.path + ".name", problem: "must not be empty")
                }
                parameters.append(Parameter(name: parameterName, value: try parameter.string("value", default: "")))
            }
            workshops.append(
                Workshop(
                    name: name,
                    title: try node.string("title", default: name),
                    description: try node.string("description", default: ""),
                    vendor: try node.string("vendor", default: ""),
                    authors: try node.strings("authors"),
                    difficulty: try node.string("difficulty", default: ""),
                    duration: try node.string("duration", default: ""),
                    tags: try node.strings("tags"),
                    logo: try node.string("logo", default: ""),
                    url: try node.string("url", default: ""),
                    labels: try node.labels("labels"),
                    content: Content(
                        image: try content.string("image", default: ""), files: try content.string("files", default: "")),
                    command: try session.command("command"),
                    vms: vms,
                    region: try node.string("region", default: "local"),
                    parameters: parameters))
        }

        var environments: [Environment] = []
        for node in try file.list("environments") {
            try node.allowOnly([
                "workshop", "capacity", "reserved", "initial", "expires", "deadline", "overtime", "orphaned", "labels",
            ])
            let workshop = try node.slug("workshop")
            if environments.contains(where: { $0.workshop == workshop }) {
                throw PortalDefinitionError(
                    field: node.path + ".workshop", problem: "offers '\(workshop)' a second time; one environment per workshop")
            }
            guard workshops.contains(where: { $0.name == workshop }) else {
                throw PortalDefinitionError(field: node.path + ".workshop", problem: "names no workshop of this file: '\(workshop)'")
            }
            guard let capacity = try node.optionalInt("capacity", min: 0) ?? (defaultCapacity > 0 ? defaultCapacity : nil)
            else {
                throw PortalDefinitionError(
                    field: node.path + ".capacity", problem: "is required (or set portal.capacity or portal.sessions.maximum)")
            }
            // Educates' rules: reserved defaults to 1, initial to reserved; both clamp to [0, capacity]; a non-zero
            // initial is at least reserved.
            let reserved = min(try node.int("reserved", default: 1, min: 0), capacity)
            var initial = min(try node.int("initial", default: reserved, min: 0), capacity)
            if initial > 0 { initial = max(initial, reserved) }
            let expires = try node.duration("expires")
            var deadline = try node.duration("deadline")
            if let limit = expires { deadline = max(deadline ?? limit, limit) }
            environments.append(
                Environment(
                    workshop: workshop, capacity: capacity, reserved: reserved, initial: initial,
                    expires: expires, deadline: expires == nil ? nil : deadline,
                    overtime: try node.duration("overtime") ?? 0, orphaned: try node.duration("orphaned") ?? 0,
                    labels: try node.labels("labels")))
        }
        return PortalDefinition(portal: portal, workshops: workshops, environments: environments)
    }

    /// A UUID-shaped, stable id from the portal's name.
    static func derivedUID(_ name: String) -> String {
        let hex = md5Hex("labportal-portal:\(name)")
        let characters = Array(hex)
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }
        return parts.joined(separator: "-")
    }
}

/// A position in the parsed YAML, so that every error names its field.
struct Node {
    let value: Any
    let path: String

    init(_ value: Any, path: String) throws {
        self.value = value
        self.path = path
    }

    private func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private var dictionary: [String: Any] { value as? [String: Any] ?? [:] }

    func allowOnly(_ keys: Set<String>) throws {
        for key in dictionary.keys.sorted() where !keys.contains(key) {
            throw PortalDefinitionError(
                field: field(key), problem: "is not a known field (known: \(keys.sorted().joined(separator: ", ")))")
        }
    }

    func object(_ key: String, optional: Bool = false) throws -> Node {
        switch dictionary[key] {
        case nil where optional, is NSNull where optional: return try Node([String: Any](), path: field(key))
        case let object as [String: Any]: return try Node(object, path: field(key))
        case nil: throw PortalDefinitionError(field: field(key), problem: "is required")
        default: throw PortalDefinitionError(field: field(key), problem: "must be a mapping")
        }
    }

    func list(_ key: String, optional: Bool = true) throws -> [Node] {
        switch dictionary[key] {
        case nil, is NSNull:
            if optional { return [] }
            throw PortalDefinitionError(field: field(key), problem: "is required")
        case let items as [Any]:
            return try items.enumerated().map { index, item in
                guard item is [String: Any] else {
                    throw PortalDefinitionError(field: "\(field(key))[\(index)]", problem: "must be a mapping")
                }
                return try Node(item, path: "\(field(key))[\(index)]")
            }
        default:
            throw PortalDefinitionError(field: field(key), problem: "must be a list")
        }
    }

    func string(_ key: String, default fallback: String? = nil) throws -> String {
        switch dictionary[key] {
        case let text as String: return text
        case let number as Int: return String(number)
        case let number as Double: return String(number)
        case let flag as Bool: return flag ? "true" : "false"
        case nil, is NSNull:
            if let fallback { return fallback }
            throw PortalDefinitionError(field: field(key), problem: "is required")
        default:
            throw PortalDefinitionError(field: field(key), problem: "must be text")
        }
    }

    /// A name used in URLs and session names: `[-A-Za-z0-9_]+`.
    func slug(_ key: String) throws -> String {
        let text = try string(key)
        guard !text.isEmpty, text.range(of: #"^[-A-Za-z0-9_]+$"#, options: .regularExpression) != nil else {
            throw PortalDefinitionError(field: field(key), problem: "must be letters, digits, '-' or '_' (got '\(text)')")
        }
        return text
    }

    func optionalInt(_ key: String, min minimum: Int) throws -> Int? {
        switch dictionary[key] {
        case nil, is NSNull: return nil
        case let number as Int:
            guard number >= minimum else {
                throw PortalDefinitionError(field: field(key), problem: "must be at least \(minimum) (got \(number))")
            }
            return number
        default:
            throw PortalDefinitionError(field: field(key), problem: "must be a whole number")
        }
    }

    func int(_ key: String, default fallback: Int, min minimum: Int) throws -> Int {
        try optionalInt(key, min: minimum) ?? fallback
    }

    func strings(_ key: String) throws -> [String] {
        switch dictionary[key] {
        case nil, is NSNull: return []
        case let items as [Any]:
            return try items.enumerated().map { index, item in
                guard let text = item as? String else {
                    throw PortalDefinitionError(field: "\(field(key))[\(index)]", problem: "must be text")
                }
                return text
            }
        default: throw PortalDefinitionError(field: field(key), problem: "must be a list of text")
        }
    }

    func labels(_ key: String) throws -> [String: String] {
        switch dictionary[key] {
        case nil, is NSNull: return [:]
        case let object as [String: Any]:
            var labels: [String: String] = [:]
            for (name, value) in object {
                guard name.range(of: #"^\w+$"#, options: .regularExpression) != nil else {
                    throw PortalDefinitionError(field: "\(field(key)).\(name)", problem: "must be a word (letters, digits, _)")
                }
                switch value {
                case let text as String: labels[name] = text
                case let number as Int: labels[name] = String(number)
                case let flag as Bool: labels[name] = flag ? "true" : "false"
                default: throw PortalDefinitionError(field: "\(field(key)).\(name)", problem: "must be text")
                }
            }
            return labels
        default: throw PortalDefinitionError(field: field(key), problem: "must be a mapping of text")
        }
    }

    /// A command as a list of arguments, or one string run by `/bin/sh -c`.
    func command(_ key: String) throws -> [String]? {
        switch dictionary[key] {
        case nil, is NSNull: return nil
        case let text as String where !text.isEmpty: return ["/bin/sh", "-c", text]
        case is [Any]:
            let arguments = try strings(key)
            guard !arguments.isEmpty else { throw PortalDefinitionError(field: field(key), problem: "must not be empty") }
            return arguments
        default: throw PortalDefinitionError(field: field(key), problem: "must be text or a list of text")
        }
    }

    /// Seconds, from a whole number or a number with an `s`, `m` or `h` suffix; nil when absent (or 0 ⇒ none).
    func duration(_ key: String) throws -> Int? {
        let seconds: Int
        switch dictionary[key] {
        case nil, is NSNull: return nil
        case let number as Int: seconds = number
        case let text as String:
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600]
            if let last = trimmed.last, let unit = units[last], let number = Int(trimmed.dropLast()) {
                seconds = number * unit
            } else if let number = Int(trimmed) {
                seconds = number
            } else {
                throw PortalDefinitionError(
                    field: field(key), problem: "must be seconds or a number with s, m or h (got '\(text)')")
            }
        default:
            throw PortalDefinitionError(field: field(key), problem: "must be seconds or a number with s, m or h")
        }
        guard seconds >= 0 else { throw PortalDefinitionError(field: field(key), problem: "must not be negative") }
        return seconds == 0 ? nil : seconds
    }
}
