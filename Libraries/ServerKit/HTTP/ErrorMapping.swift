import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Wire

/// The one place where an `ErrorKind` becomes an HTTP status or a wire code.
extension ErrorKind {
    public var httpStatus: HTTPResponse.Status {
        switch self {
        case .badRequest, .parseError, .invalidRequest, .invalidParams: .badRequest
        case .invalid: .unprocessableContent
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .locked: HTTPResponse.Status(code: 423, reasonPhrase: "Locked")
        case .rateLimited: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .deadlineExceeded: .gatewayTimeout
        case .methodNotAllowed: .methodNotAllowed
        case .tooLarge: .contentTooLarge
        case .internal, .methodNotFound: .internalServerError
        }
    }

    public var wireCode: WireError.Code {
        switch self {
        case .badRequest, .invalidParams: .invalidParams
        case .invalid: .invalid
        case .unauthenticated, .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .locked, .rateLimited, .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        case .internal: .internal
        case .parseError: .parseError
        case .invalidRequest, .methodNotAllowed: .invalidRequest
        case .tooLarge: .invalidParams
        case .methodNotFound: .methodNotFound
        }
    }

    /// The kind an HTTP status stands for (used for Hummingbird's own errors).
    public init(status: HTTPResponse.Status) {
        switch status.code {
        case 401: self = .unauthenticated
        case 403: self = .forbidden
        case 404: self = .notFound
        case 405: self = .methodNotAllowed
        case 409: self = .conflict
        case 413: self = .tooLarge
        case 422: self = .invalid
        case 423: self = .locked
        case 429: self = .rateLimited
        case 503: self = .unavailable
        case 504: self = .deadlineExceeded
        case 400..<500: self = .badRequest
        default: self = .internal
        }
    }
}

public enum WireErrorMapping {
    /// Maps what a wire handler threw to the error sent to the caller; nil for unknown errors (logged, then
    /// answered as internal).
    @Sendable public static func map(_ error: any Error) -> WireError? {
        if let error = error as? WireError { return error }
        if let error = error as? any KindedError {
            return WireError(error.kind.wireCode, error.publicMessage, kind: error.kind.rawValue, field: error.field)
        }
        if StorageError.databaseUnavailable(error) {
            return WireError(
                ErrorKind.unavailable.wireCode, "the database is not reachable right now; try again shortly",
                kind: ErrorKind.unavailable.rawValue)
        }
        return nil
    }
}

/// A wire error coming back from a peer, seen as a `KindedError` so that REST renders it like any other.
extension WireError: KindedError {
    public var kind: ErrorKind {
        ErrorKind(rawValue: data?.kind ?? "") ?? ErrorKind(wireCode: code)
    }

    public var publicMessage: String { message }

    public var field: String? { data?.field }
}

extension ErrorKind {
    init(wireCode: Int) {
        switch WireError.Code(rawValue: wireCode) {
        case .forbidden: self = .forbidden
        case .notFound: self = .notFound
        case .conflict: self = .conflict
        case .unavailable: self = .unavailable
        case .deadlineExceeded: self = .deadlineExceeded
        case .invalid: self = .invalid
        case .invalidParams: self = .badRequest
        default: self = .internal
        }
    }
}

/// A cursor a keyset read did not give: the caller's input, so a 400 on `cursor` (REST) or invalid params (wire).
extension KeysetError: KindedError {
    public var kind: ErrorKind { .badRequest }
    public var publicMessage: String { description }
    public var field: String? { "cursor" }
}
