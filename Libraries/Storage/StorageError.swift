import Foundation
import PostgresNIO
import SQLiteNIO

/// Failures of the storage layer itself (not of a domain rule).
public enum StorageError: Error, CustomStringConvertible, Sendable {
    case configuration(String)
    case migration(String)
    case misuse(String)
    /// A stored value that the code does not know (a newer version wrote it, or the row was edited by hand). Reading
    /// it as some default could destroy data, so the read fails instead.
    case unknownValue(column: String, value: String)

    public var description: String {
        switch self {
        case .configuration(let message): "database configuration: \(message)"
        case .migration(let message): "database migration: \(message)"
        case .misuse(let message): "database misuse: \(message)"
        case .unknownValue(let column, let value): "database: \(column) holds \"\(value)\", which this version does not know"
        }
    }
}

extension StorageError {
    /// The value of `T` stored as `raw` in `column`; `unknownValue` when this version has no such value.
    public static func known<T: RawRepresentable>(_ type: T.Type, _ raw: T.RawValue, column: String) throws -> T
    where T.RawValue: CustomStringConvertible {
        guard let value = T(rawValue: raw) else { throw StorageError.unknownValue(column: column, value: raw.description) }
        return value
    }

    /// A JSON column read as `T`; text that does not read throws `unknownValue` (never an empty default, which would
    /// be written back over what was stored).
    public static func json<T: Decodable>(_ type: T.Type, _ text: String, column: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw StorageError.unknownValue(column: column, value: String(text.prefix(200)))
        }
    }

    /// Whether `error` is the database refusing a row whose unique key another row already has (SQLite's UNIQUE or
    /// PRIMARY KEY constraint, PostgreSQL's SQLSTATE 23505): two writers that both checked first, then both inserted.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        if let error = error as? SQLiteError {
            switch error.reason {
            case .constraintUniqueFailed, .constraintPrimaryKeyFailed: return true
            case .constraint: return error.message.hasPrefix("UNIQUE constraint failed")
            default: return false
            }
        }
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] == "23505" }
        return false
    }
}
