import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

/// A JSON document built by hand, for responses whose shape is fixed by another system's API: members keep the
/// order they are given in, and `null` is written out (where `Codable` would drop the key).
public indirect enum JSONValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }

    public static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    public static func int(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
    public static func bool(_ value: Bool?) -> JSONValue { value.map { .bool($0) } ?? .null }
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
    public static func map(_ values: [String: String]) -> JSONValue {
        .object(values.keys.sorted().map { ($0, .string(values[$0]!)) })
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.serialized() == rhs.serialized()
    }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public func serialized() -> String {
        var output = ""
        write(to: &output)
        return output
    }

    func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .int(let value): output += String(value)
        case .double(let value): output += value.isFinite ? String(value) : "null"
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let values):
            output += "["
            for (index, value) in values.enumerated() {
                if index > 0 { output += ", " }
                value.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output += ", " }
                Self.writeString(key, to: &output)
                output += ": "
                value.write(to: &output)
            }
            output += "}"
        }
    }

    static func writeString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                output += "\\u" + String(format: "%04x", scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}

extension JSONResponse {
    /// A JSON response of a hand-built document.
    public static func make(json: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(
            status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: json.serialized())))
    }
}

/// Name–value pairs from a query string or an `application/x-www-form-urlencoded` body, in order, percent-decoded.
public struct FormParameters: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public var items: [Item]

    public init(items: [Item] = []) { self.items = items }

    /// Parses `a=1&b=2`. `plusAsSpace` decodes `+` as a space (forms and most query strings).
    public init(_ text: String?, plusAsSpace: Bool = true) {
        items = []
        guard let text, !text.isEmpty else { return }
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0], plusAsSpace: plusAsSpace)
            let value = parts.count > 1 ? Self.decode(parts[1], plusAsSpace: plusAsSpace) : ""
            items.append(Item(name: name, value: value))
        }
    }

    static func decode(_ text: Substring, plusAsSpace: Bool) -> String {
        let replaced = plusAsSpace ? text.replacingOccurrences(of: "+", with: " ") : String(text)
        return replaced.removingPercentEncoding ?? replaced
    }

    /// The first value of `name`.
    public subscript(_ name: String) -> String? { items.first { $0.name == name }?.value }

    /// The last value of `name` (the one Django's QueryDict answers).
    public func last(_ name: String) -> String? { items.last { $0.name == name }?.value }

    public func all(_ name: String) -> [String] { items.filter { $0.name == name }.map(\.value) }

    public func contains(_ name: String) -> Bool { items.contains { $0.name == name } }

    /// These parameters followed by `other`'s (earlier ones win for `subscript`).
    public func merging(_ other: FormParameters) -> FormParameters { FormParameters(items: items + other.items) }

    /// Percent-encodes a value for a query string.
    public static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

extension Request {
    /// The query string's parameters.
    public var query: FormParameters { FormParameters(uri.query) }

    /// The body, read up to `limit` bytes (413 beyond).
    public mutating func bodyData(limit: Int = 2 << 20) async throws -> Data {
        let buffer = try await collectBody(upTo: limit)
        return Data(buffer.readableBytesView)
    }
}
