import Foundation
import Logging
import Storage

/// The backends the storage contract runs against: SQLite always; PostgreSQL when `POSTGRES_URL` is set (the
/// README's test command always sets it, by starting a throwaway server).
public enum TestBackends {
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// True when the run demands PostgreSQL (`LABPORTAL_REQUIRE_POSTGRES=1`, set by the test command and CI).
    public static var postgresRequired: Bool {
        ProcessInfo.processInfo.environment["LABPORTAL_REQUIRE_POSTGRES"] == "1"
    }

    public static var all: [DatabaseBackend] {
        postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
    }
}

public let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = ProcessInfo.processInfo.environment["LABPORTAL_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) }
        ?? .warning
    return logger
}()

/// A fresh, empty database of the given backend: a new SQLite file, or a new PostgreSQL schema.
public struct TestDatabase: Sendable {
    public let configuration: DatabaseConfiguration

    public init(_ backend: DatabaseBackend, label: String = "t") {
        let unique = "\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        switch backend {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("labportal-tests/\(unique).sqlite").path
            configuration = .sqlite(path: path)
        case .postgres:
            configuration = .postgres(url: TestBackends.postgresURL ?? "", schema: unique)
        }
    }

    /// Opens the database (a second call opens a second, independent pool on the same data), runs `body`, closes.
    public func with<T: Sendable>(_ body: @Sendable (Database) async throws -> T) async throws -> T {
        let database = try await Database.open(configuration, logger: quietLogger)
        return try await database.withRunning(body)
    }
}
