import Contracts

/// Rules every stored text obeys, whatever the endpoint.
public enum TextRules {
    /// A text with U+0000 is refused (422, naming the field): SQLite would keep it cut at the NUL and PostgreSQL
    /// cannot store it at all, so what a client was told it stored would differ from what every later read answers.
    public static func refuseNUL(_ text: String, field: String) throws {
        if text.utf8.contains(0) {
            throw ServiceFailure(.invalid, "\(field) must not contain the NUL character (U+0000)", field: field)
        }
    }
}

extension FormParameters {
    /// Refuses the parameters if a name or a value holds U+0000.
    public func refusingNUL() throws -> FormParameters {
        for item in items {
            try TextRules.refuseNUL(item.name, field: item.name)
            try TextRules.refuseNUL(item.value, field: item.name)
        }
        return self
    }
}

extension ParameterValue {
    /// The path (`name`, `name[2]`, `name.key`) of the first string in this value that holds U+0000.
    func pathOfNUL(_ path: String) -> String? {
        switch self {
        case .string(let text): return text.utf8.contains(0) ? path : nil
        case .array(let items):
            for (index, item) in items.enumerated() {
                if let found = item.pathOfNUL("\(path)[\(index)]") { return found }
            }
            return nil
        case .object(let members):
            for key in members.keys.sorted() {
                if key.utf8.contains(0) { return path }
                if let found = members[key]!.pathOfNUL("\(path).\(key)") { return found }
            }
            return nil
        case .null, .bool, .number: return nil
        }
    }
}
