/// Failures of the storage layer itself (not of a domain rule).
public enum StorageError: Error, CustomStringConvertible, Sendable {
    case configuration(String)
    case migration(String)
    case misuse(String)

    public var description: String {
        switch self {
        case .configuration(let message): "database configuration: \(message)"
        case .migration(let message): "database migration: \(message)"
        case .misuse(let message): "database misuse: \(message)"
        }
    }
}
