import Foundation

/// A JSON-RPC id: a number or a string. `null` is modelled as `Optional.none` by the envelopes.
public enum JSONRPCID: Codable, Sendable, Hashable, CustomStringConvertible {
    case number(Int64)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .number(let value): String(value)
        case .string(let value): "\"\(value)\""
        }
    }
}

/// The `meta` extension member of a request.
public struct WireMeta: Codable, Sendable, Equatable {
    /// The request id of the work this task does (a REST request, or a wire call being served): calls made from
    /// the task carry it as `meta.request_id`, so that logs of several services line up.
    @TaskLocal public static var currentRequestID: String?

    /// The caller's remaining budget for this call, in milliseconds.
    public var deadlineMS: Int?
    /// W3C trace context, passed through for logs.
    public var traceparent: String?
    /// The id of the REST request that caused this call, for correlating logs.
    public var requestID: String?

    public init(deadlineMS: Int? = nil, traceparent: String? = nil, requestID: String? = nil) {
        self.deadlineMS = deadlineMS
        self.traceparent = traceparent
        self.requestID = requestID
    }

    enum CodingKeys: String, CodingKey {
        case deadlineMS = "deadline_ms"
        case traceparent
        case requestID = "request_id"
    }
}

/// The envelope of a request line that `RequestLine` does not read by hand: everything but the params.
struct RequestHead: Decodable {
    var jsonrpc: String?
    /// `.none` when the member is absent (a notification); `.some(nil)` when it is `null`.
    var id: JSONRPCID??
    var method: String?
    var meta: WireMeta?
    /// Whether the line has params that are not `null`.
    var hasParams: Bool

    enum CodingKeys: String, CodingKey { case jsonrpc, id, method, meta, params }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        jsonrpc = try container.decodeIfPresent(String.self, forKey: .jsonrpc)
        if container.contains(.id) {
            id = .some(try container.decodeNil(forKey: .id) ? nil : container.decode(JSONRPCID.self, forKey: .id))
        } else {
            id = .none
        }
        method = try container.decodeIfPresent(String.self, forKey: .method)
        meta = try container.decodeIfPresent(WireMeta.self, forKey: .meta)
        hasParams = try container.contains(.params) && !container.decodeNil(forKey: .params)
    }
}

struct ErrorEnvelope: Encodable {
    var jsonrpc = "2.0"
    var id: JSONRPCID?
    var error: WireError

    enum CodingKeys: String, CodingKey { case jsonrpc, id, error }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jsonrpc, forKey: .jsonrpc)
        try container.encode(id, forKey: .id)
        try container.encode(error, forKey: .error)
    }
}

/// What the client reads first from every line: the id, to route the answer to its caller.
struct ResponseHead: Decodable {
    var id: JSONRPCID?
}

/// The answer, decoded by the caller that knows its result type.
struct ResponseBody<Result: Decodable>: Decodable {
    var result: Result?
    var error: WireError?

    enum CodingKeys: String, CodingKey { case result, error }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        error = try container.decodeIfPresent(WireError.self, forKey: .error)
        if error == nil {
            result = try container.decode(Result.self, forKey: .result)
        }
    }
}

/// Shared coders. Foundation's JSON coders are safe to use from many threads once configured. `package` so that the
/// contract tests read and write golden messages exactly as the wire does.
package enum WireJSON {
    package static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(WireJSON.dateStyle))
        }
        return encoder
    }()
    package static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? WireJSON.dateStyle.parse(text) { return date }
            if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected an ISO-8601 date, got '\(text)'")
        }
        return decoder
    }()
    /// Dates cross the wire as ISO-8601 UTC with milliseconds and `Z`.
    package static let dateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

