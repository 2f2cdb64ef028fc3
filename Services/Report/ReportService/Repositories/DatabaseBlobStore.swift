import Foundation
import NIOCore
import SQLKit
import Storage

/// Chunks in the service's database (`export_blobs`), base64 text so that one schema serves SQLite and PostgreSQL.
/// A blob is readable only once its last chunk is marked.
public struct DatabaseBlobStore: BlobStore {
    let database: Database

    public init(database: Database) { self.database = database }

    public func create(_ key: String) async throws -> any BlobWriter {
        try await delete(key)
        return DatabaseBlobWriter(database: database, key: key)
    }

    public func read(_ key: String) async throws -> AsyncThrowingStream<ByteBuffer, any Error>? {
        guard try await isComplete(key) else { return nil }
        let database = database
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var seq: Int64 = -1
                    while !Task.isCancelled {
                        guard
                            let row = try await database.sql.select().columns("seq", "data").from("export_blobs")
                                .where("blob_key", .equal, key).where("seq", .greaterThan, seq).orderBy("seq").limit(1)
                                .first()
                        else { break }
                        seq = try row.decode(column: "seq", as: Int64.self)
                        guard let data = Data(base64Encoded: try row.decode(column: "data", as: String.self)) else {
                            throw BlobError(description: "export blob \(key) is damaged (chunk \(seq))")
                        }
                        continuation.yield(ByteBuffer(bytes: data))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func isComplete(_ key: String) async throws -> Bool {
        try await database.sql.select().column("seq").from("export_blobs").where("blob_key", .equal, key)
            .where("complete", .equal, true).first() != nil
    }

    public func size(_ key: String) async throws -> Int? {
        guard try await isComplete(key) else { return nil }
        // Base64 length → bytes (close enough for Content-Length is not needed: the reader streams).
        let rows = try await database.sql.select().column("data").from("export_blobs").where("blob_key", .equal, key).all()
        return try rows.reduce(0) { total, row in
            let text = try row.decode(column: "data", as: String.self)
            return total + Data(base64Encoded: text).map(\.count)!
        }
    }

    public func delete(_ key: String) async throws {
        try await database.sql.delete(from: "export_blobs").where("blob_key", .equal, key).run()
    }
}

final class DatabaseBlobWriter: BlobWriter, @unchecked Sendable {
    // @unchecked: one job writes it, one call at a time.
    let database: Database
    let key: String
    var seq: Int64 = 0

    init(database: Database, key: String) {
        self.database = database
        self.key = key
    }

    func write(_ bytes: ByteBuffer) async throws {
        let text = Data(bytes.readableBytesView).base64EncodedString()
        try await database.sql.insert(into: "export_blobs").columns("blob_key", "seq", "data", "complete")
            .values(SQLBind(key), SQLBind(seq), SQLBind(text), SQLBind(false)).run()
        seq += 1
    }

    func finish() async throws {
        // An empty blob still gets a (complete) chunk.
        try await database.sql.insert(into: "export_blobs").columns("blob_key", "seq", "data", "complete")
            .values(SQLBind(key), SQLBind(seq), SQLBind(""), SQLBind(true)).run()
    }

    func abort() async {
        try? await database.sql.delete(from: "export_blobs").where("blob_key", .equal, key).run()
    }
}
