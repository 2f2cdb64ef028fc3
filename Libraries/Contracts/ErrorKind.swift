import Foundation

/// The one classification of failures shared by REST and the wire protocol.
///
/// A service's domain error names a kind; each transport maps the kind to its own code in exactly one place
/// (HTTP status in ServerKit, JSON-RPC error code in ServerKit's wire bridge). The raw value travels as
/// `data.kind` in wire errors and as `kind` in REST error bodies.
public enum ErrorKind: String, Codable, Sendable, CaseIterable {
    /// Malformed input: a field is missing, has the wrong type or breaks a syntactic rule (HTTP 400).
    case badRequest = "bad_request"
    /// Input that is well formed but breaks a domain rule (HTTP 422, wire -32006).
    case invalid
    /// No valid credentials (HTTP 401).
    case unauthenticated
    /// Credentials are valid but the caller may not do this (HTTP 403, wire -32001).
    case forbidden
    /// No such thing (HTTP 404, wire -32002).
    case notFound = "not_found"
    /// The thing is in a state that does not allow this (HTTP 409, wire -32003).
    case conflict
    /// Busy: try again after `Retry-After` (HTTP 423).
    case locked
    /// Rate limited (HTTP 429).
    case rateLimited = "rate_limited"
    /// No capacity or a peer is down: retry later (HTTP 503, wire -32004).
    case unavailable
    /// The call's deadline passed before it finished (HTTP 504, wire -32005).
    case deadlineExceeded = "deadline_exceeded"
    /// The path exists, but not with this method (HTTP 405, with `Allow`). REST only.
    case methodNotAllowed = "method_not_allowed"
    /// The request body is larger than the endpoint takes (HTTP 413). REST only.
    case tooLarge = "too_large"
    /// A bug. Logged at error level; the message sent out is generic (HTTP 500, wire -32603).
    case `internal`

    // Kinds that only the wire protocol produces (JSON-RPC's own errors).
    case parseError = "parse_error"
    case invalidRequest = "invalid_request"
    case methodNotFound = "method_not_found"
    case invalidParams = "invalid_params"
}

/// An error that knows its kind and a message a person can act on.
///
/// Services define their own error enums and conform them; transports render them.
public protocol KindedError: Error, Sendable {
    var kind: ErrorKind { get }
    /// A message that is safe to show to a client: no type names, no stack traces.
    var publicMessage: String { get }
    /// The input field at fault, when there is one.
    var field: String? { get }
}

extension KindedError {
    public var field: String? { nil }
}

/// A ready-made `KindedError` for code that has no richer error type.
public struct ServiceFailure: KindedError, Equatable, CustomStringConvertible {
    public var kind: ErrorKind
    public var publicMessage: String
    public var field: String?

    public init(_ kind: ErrorKind, _ message: String, field: String? = nil) {
        self.kind = kind
        self.publicMessage = message
        self.field = field
    }

    public var description: String { "\(kind.rawValue): \(publicMessage)" }
}
