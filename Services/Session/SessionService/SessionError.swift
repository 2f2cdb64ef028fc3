import Contracts

/// The errors session-service's rules raise more than once, each with its kind, message and field in one place.
/// The Educates messages are the real portal's.
enum SessionError: KindedError, Equatable {
    case noSuchUser(String)
    /// `field`: whether the session came from a path parameter the client named (`session`).
    case noSuchSession(String, field: Bool)
    case environmentDoesNotExist
    case noSessionAvailable
    case cannotBeReacquired
    case sessionNotInUse
    /// `user=` names a staff or robot account: sessions are requested for students, not for them.
    case requestsNotPermittedForUser

    var kind: ErrorKind {
        switch self {
        case .noSuchUser, .noSuchSession, .environmentDoesNotExist: .notFound
        case .noSessionAvailable, .cannotBeReacquired: .unavailable
        case .sessionNotInUse, .requestsNotPermittedForUser: .badRequest
        }
    }

    var publicMessage: String {
        switch self {
        case .noSuchUser(let id): "no such user: \(id)"
        case .noSuchSession(let name, _): "no such session: \(name)"
        case .environmentDoesNotExist: "Environment does not exist"
        case .noSessionAvailable: "No session available"
        case .cannotBeReacquired: "Cannot be reacquired"
        case .sessionNotInUse: "Session is not currently in use"
        case .requestsNotPermittedForUser: "Session requests not permitted for user"
        }
    }

    var field: String? {
        switch self {
        case .noSuchUser: "id"
        case .noSuchSession(_, let field): field ? "session" : nil
        case .environmentDoesNotExist: "env"
        case .requestsNotPermittedForUser: "user"
        default: nil
        }
    }
}
