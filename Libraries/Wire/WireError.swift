import Foundation

/// A JSON-RPC 2.0 error object, with LabPortal's `data.kind` extension.
///
/// The wire library knows the codes and their kind names; it knows nothing of any domain. Services map their own
/// errors to a `WireError` through the server's error mapper.
public struct WireError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public struct ErrorData: Codable, Sendable, Equatable {
        /// The shared error kind's raw value (`not_found`, `unavailable`, …).
        public var kind: String
        /// The input field at fault, when there is one.
        public var field: String?

        public init(kind: String, field: String? = nil) {
            self.kind = kind
            self.field = field
        }
    }

    public var code: Int
    public var message: String
    public var data: ErrorData?

    public init(code: Int, message: String, kind: String? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.data = kind.map { ErrorData(kind: $0, field: field) }
    }

    /// The kind name, from `data.kind`, or derived from the code.
    public var kind: String { data?.kind ?? Code(rawValue: code)?.defaultKind ?? "internal" }

    public var description: String { "wire error \(code) (\(kind)): \(message)" }

    /// The codes of DESIGN §2.
    public enum Code: Int, Sendable, CaseIterable {
        case parseError = -32700
        case invalidRequest = -32600
        case methodNotFound = -32601
        case invalidParams = -32602
        case `internal` = -32603
        case forbidden = -32001
        case notFound = -32002
        case conflict = -32003
        case unavailable = -32004
        case deadlineExceeded = -32005
        case invalid = -32006

        public var defaultKind: String {
            switch self {
            case .parseError: "parse_error"
            case .invalidRequest: "invalid_request"
            case .methodNotFound: "method_not_found"
            case .invalidParams: "invalid_params"
            case .internal: "internal"
            case .forbidden: "forbidden"
            case .notFound: "not_found"
            case .conflict: "conflict"
            case .unavailable: "unavailable"
            case .deadlineExceeded: "deadline_exceeded"
            case .invalid: "invalid"
            }
        }
    }

    public init(_ code: Code, _ message: String, kind: String? = nil, field: String? = nil) {
        self.init(code: code.rawValue, message: message, kind: kind ?? code.defaultKind, field: field)
    }

    public static func parseError(_ message: String) -> WireError { .init(.parseError, message) }
    public static func invalidRequest(_ message: String) -> WireError { .init(.invalidRequest, message) }
    public static func methodNotFound(_ method: String) -> WireError {
        .init(.methodNotFound, "unknown method '\(method)'")
    }
    public static func invalidParams(_ message: String) -> WireError { .init(.invalidParams, message) }
    public static func `internal`(_ message: String = "internal error") -> WireError { .init(.internal, message) }
    public static func forbidden(_ message: String) -> WireError { .init(.forbidden, message) }
    public static func unavailable(_ message: String) -> WireError { .init(.unavailable, message) }
    public static func deadlineExceeded(_ message: String) -> WireError { .init(.deadlineExceeded, message) }
}
