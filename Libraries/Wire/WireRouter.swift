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
        /// Decodes params from the request line, runs the handler and encodes the result line.
        var invoke: @Sendable (_ line: ByteBuffer, _ id: JSONRPCID?, _ context: WireCallContext) async throws -> ByteBuffer
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
        methods[name] = Method(allowed: allowed) { line, id, context in
            let result = try await handler(try decodeParams(line), context)
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
        methods[name] = Method(allowed: allowed) { line, id, context in
            try answerLine(id: id, result: try await handler(try decodeParams(line), context))
        }
    }
}

/// The params of a request line; a mismatch is `invalid_params` naming the member.
func decodeParams<Params: Decodable>(_ line: ByteBuffer) throws -> Params {
    do {
        return try WireJSON.decoder.decode(RequestParams<Params>.self, from: line).params
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
    case .string(let text): buffer.writeBytes(try WireJSON.encoder.encode(text))
    case nil: buffer.writeString("null")
    }
    buffer.writeString(#","result":"#)
    buffer.writeBytes(result)
    buffer.writeString("}\n")
    return buffer
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
