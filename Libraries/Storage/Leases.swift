import Foundation
import SQLKit

/// Named leases in the database: with several replicas, only the holder of a lease runs a background loop
/// (the session reaper, the class scheduler).
///
/// A lease is held until it expires; the holder renews it well before then. Taking one is a single portable upsert,
/// atomic on both backends.
public struct Leases: Sendable {
    public static let migrationStatements = [
        """
        CREATE TABLE IF NOT EXISTS leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at_ms BIGINT NOT NULL
        )
        """
    ]

    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Takes or renews `name` for `holder` until `now + ttl`. True if `holder` holds it afterwards.
    public func acquire(_ name: String, holder: String, ttl: Duration, now: Date) async throws -> Bool {
        let nowMS = Int64((now.timeIntervalSince1970 * 1000).rounded())
        let expires = nowMS + ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000
        return try await database.transaction { db in
            try await db.raw(
                """
                INSERT INTO leases (name, holder, expires_at_ms) VALUES (\(bind: name), \(bind: holder), \(bind: expires))
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
                WHERE leases.holder = excluded.holder OR leases.expires_at_ms < \(bind: nowMS)
                """
            ).run()
            let row = try await db.raw("SELECT holder FROM leases WHERE name = \(bind: name)").first()
            return try row?.decode(column: "holder", as: String.self) == holder
        }
    }

    /// Gives `name` up at once, if `holder` holds it.
    public func release(_ name: String, holder: String) async throws {
        try await database.sql.raw("DELETE FROM leases WHERE name = \(bind: name) AND holder = \(bind: holder)").run()
    }
}
