import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// Who may call a method: any caller whose certificate chains to the CA, or only the named ones.
public enum WireCallers: Sendable, Equatable {
    case any
    case only(Set<String>)

    func allows(_ caller: String) -> Bool {
        switch self {
        case .any: true
        case .only(let names): names.contains(caller)
        }
    }
}

/// What a handler knows about the call it serves.
public struct WireCallContext: Sendable {
    /// The caller's name, from its certificate.
    public let caller: String
    public let method: String
    /// When the caller stops waiting.
    public let deadline: NIODeadline
    public let meta: WireMeta
    public var logger: Logger
}

/// The methods a server offers. Each is generic over its `Codable` params and result; the wire library decodes,
/// checks callers, runs the handler and encodes, and never sees a domain type.
public struct WireRouter: Sendable {
    struct Method: Sendable {
        var allowed: WireCallers
        /// Decodes params from the request line (their range in it; nil when absent), runs the handler and encodes
        /// the result line.
        var invoke: @Sendable (_ line: ByteBuffer, _ params: Range<Int>?, _ id: JSONRPCID?, _ context: WireCallContext)
            async throws -> ByteBuffer
    }

    private(set) var methods: [String: Method] = [:]

    public init() {}

    public var methodNames: [String] { methods.keys.sorted() }

    /// Registers a method. Registering a name twice replaces the first handler.
    public mutating func register<Params: Decodable & Sendable, Result: Encodable & Sendable>(
        _ name: String,
        allowed: WireCallers,
        params: Params.Type = Params.self,
        _ handler: @escaping @Sendable (Params, WireCallContext) async throws -> Result
    ) {
        methods[name] = Method(allowed: allowed) { line, params, id, context in
            let result = try await handler(try decodeParams(line, params), context)
            return try answerLine(id: id, result: WireJSON.encoder.encode(result))
        }
    }

    /// Registers a method whose handler writes its result's JSON itself (bulk reads that encode faster by hand than
    /// through `Codable`). The bytes must be one complete JSON value; they are sent as the `result` member as is.
    public mutating func registerRaw<Params: Decodable & Sendable>(
        _ name: String,
        allowed: WireCallers,
        params: Params.Type = Params.self,
        _ handler: @escaping @Sendable (Params, WireCallContext) async throws -> [UInt8]
    ) {
        methods[name] = Method(allowed: allowed) { line, params, id, context in
            try answerLine(id: id, result: try await handler(try decodeParams(line, params), context))
        }
    }
}

/// The params of a request line, decoded from their own bytes (`range`, offsets from the reader index; absent params
/// decode as an empty object, so that all-optional types work). Bytes that are not JSON are a parse error; a
/// mismatch is `invalid_params` naming the member.
func decodeParams<Params: Decodable>(_ line: ByteBuffer, _ range: Range<Int>?) throws -> Params {
    do {
        guard let range, let params = line.getSlice(at: line.readerIndex + range.lowerBound, length: range.count) else {
            return try WireJSON.decoder.decode(Params.self, from: ByteBuffer(string: "{}"))
        }
        return try WireJSON.decoder.decode(Params.self, from: params)
    } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
        throw WireError.parseError("the params are not valid JSON")
    } catch let error as DecodingError {
        throw WireError.invalidParams(describe(error))
    }
}

/// An answer line, `{"jsonrpc":"2.0","id":<id>,"result":<result>}` and a newline, written in this order (Foundation's
/// encoder orders an object's keys by hash, so a whole envelope encoded by it comes out in any order). The client
/// reads the id of such a line without decoding it.
func answerLine(id: JSONRPCID?, result: some Collection<UInt8>) throws -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(result.count + 48)
    buffer.writeString(#"{"jsonrpc":"2.0","id":"#)
    switch id {
    case .number(let number): buffer.writeString(String(number))
    case .string(let text): try writeJSONString(text, to: &buffer)
    case nil: buffer.writeString("null")
    }
    buffer.writeString(#","result":"#)
    buffer.writeBytes(result)
    buffer.writeString("}\n")
    return buffer
}

/// A request line, `{"jsonrpc":"2.0","id":<id>,"method":…,"params":…,"meta":…}` and a newline: the envelope
/// written by hand, the params by the JSON encoder. No id for a notification.
func requestLine(id: Int64?, method: String, params: some Encodable, meta: WireMeta) throws -> ByteBuffer {
    let encoded = try WireJSON.encoder.encode(params)
    var buffer = ByteBuffer()
    buffer.reserveCapacity(encoded.count + method.utf8.count + 96)
    buffer.writeString(#"{"jsonrpc":"2.0","#)
    if let id { buffer.writeString(#""id":\#(id),"#) }
    buffer.writeString(#""method":"#)
    try writeJSONString(method, to: &buffer)
    buffer.writeString(#","params":"#)
    buffer.writeBytes(encoded)
    buffer.writeString(#","meta":{"#)
    var separator = ""
    if let deadline = meta.deadlineMS {
        buffer.writeString(#""deadline_ms":\#(deadline)"#)
        separator = ","
    }
    for (key, value) in [("traceparent", meta.traceparent), ("request_id", meta.requestID)] {
        guard let value else { continue }
        buffer.writeString(#"\#(separator)"\#(key)":"#)
        try writeJSONString(value, to: &buffer)
        separator = ","
    }
    buffer.writeString("}}\n")
    return buffer
}

/// `text` as a JSON string: as it is when it needs no escape (the common case: method names, ids), else through
/// the encoder.
private func writeJSONString(_ text: String, to buffer: inout ByteBuffer) throws {
    if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeString(text)
        buffer.writeInteger(UInt8(ascii: "\""))
    } else {
        buffer.writeBytes(try WireJSON.encoder.encode(text))
    }
}

/// Encodes a message as one line ending in `\n`.
func encodeLine(_ message: some Encodable) throws -> ByteBuffer {
    let data = try WireJSON.encoder.encode(message)
    var buffer = ByteBuffer()
    buffer.reserveCapacity(data.count + 1)
    buffer.writeBytes(data)
    buffer.writeInteger(UInt8(ascii: "\n"))
    return buffer
}

/// A decoding failure described for a person: which member, and what was wrong, without Swift type names.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let parts = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
        let joined = parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        return joined.isEmpty ? "params" : "params.\(joined)"
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])) is required"
    case .typeMismatch(_, let context):
        return "\(path(context.codingPath)) has the wrong type"
    case .valueNotFound(_, let context):
        return "\(path(context.codingPath)) must not be null"
    case .dataCorrupted(let context):
        return "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "params are invalid"
    }
}
