import Foundation

/// The JSON body of every REST error: `{"error": "<message>", "kind": "...", "field": "..."}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    /// A message a person can act on.
    public var error: String
    /// The shared error kind.
    public var kind: ErrorKind?
    /// The input field at fault, when there is one.
    public var field: String?

    public init(error: String, kind: ErrorKind? = nil, field: String? = nil) {
        self.error = error
        self.kind = kind
        self.field = field
    }
}
