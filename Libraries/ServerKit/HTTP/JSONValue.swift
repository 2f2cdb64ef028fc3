import Contracts
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
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        write(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    func write(to output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value): output.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                value.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &output)
                output.append(UInt8(ascii: ":"))
                value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ value: String, to output: inout [UInt8]) { JSONString.write(value, to: &output) }
}

extension JSONResponse {
    /// A JSON response of a hand-built document.
    public static func make(json: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        make(body: body(json), status: status, headers: headers)
    }

    /// A JSON response of a body rendered before (see `body(_:)`).
    public static func make(body: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: body))
    }

    /// The rendered bytes of a document.
    public static func body(_ json: JSONValue) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1024)
        json.write(to: &bytes)
        return ByteBuffer(bytes: bytes)
    }
}

/// Name–value pairs from a query string or an `application/x-www-form-urlencoded` body, in order, percent-decoded.
public struct FormParameters: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
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

/// Times as the Educates API writes them: UTC, milliseconds, `Z` (`2020-07-31T03:57:33.942Z`).
public enum EducatesTime {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)

    public static func string(_ date: Date?) -> String? {
        date.map { $0.formatted(style) }
    }

    /// To millisecond precision, so that what a database returns equals what was stored.
    public static func truncate(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}
