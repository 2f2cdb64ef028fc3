import Contracts

/// The errors catalog-service's rules raise, each with its kind, message and field in one place.
enum CatalogError: KindedError, Equatable {
    case environmentDoesNotExist
    case portalNotLoaded

    var kind: ErrorKind {
        switch self {
        case .environmentDoesNotExist: .notFound
        case .portalNotLoaded: .unavailable
        }
    }

    var publicMessage: String {
        switch self {
        case .environmentDoesNotExist: "Environment does not exist"
        case .portalNotLoaded: "the portal has not been loaded yet"
        }
    }

    var field: String? { self == .environmentDoesNotExist ? "env" : nil }
}
