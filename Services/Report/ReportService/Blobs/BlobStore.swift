import Foundation
import NIOCore
import Storage

/// Where finished export files live: a directory (the default), or the database (chunked) when replicas share
/// nothing else. A blob is written once, in order, and becomes visible only when `finish` succeeds.
public protocol BlobStore: Sendable {
    /// Starts writing `key` (anything left from an earlier attempt is discarded).
    func create(_ key: String) async throws -> any BlobWriter
    /// The blob's bytes in order, in chunks; nil when there is no such blob.
    func read(_ key: String) async throws -> AsyncThrowingStream<ByteBuffer, any Error>?
    /// Its size in bytes, if it exists.
    func size(_ key: String) async throws -> Int?
    func delete(_ key: String) async throws
}

public protocol BlobWriter: Sendable {
    func write(_ bytes: ByteBuffer) async throws
    /// Makes the blob durable and visible.
    func finish() async throws
    /// Throws away what was written.
    func abort() async
}

/// A failure to store a blob, worded for a person (disk full, permissions).
public struct BlobError: Error, CustomStringConvertible {
    public var description: String
}

/// Files under a directory: `<key>.csv.gz`, written as `<key>.csv.gz.partial`, synced, then renamed.
public struct DirectoryBlobStore: BlobStore {
    let directory: String
    static let chunkSize = 256 * 1024

    public init(directory: String) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw BlobError(description: "cannot create the export directory \(directory): \(error.localizedDescription)")
        }
    }

    func path(_ key: String) -> String { "\(directory)/\(key).csv.gz" }

    public func create(_ key: String) async throws -> any BlobWriter {
        try FileBlobWriter(final: path(key))
    }

    public func read(_ key: String) async throws -> AsyncThrowingStream<ByteBuffer, any Error>? {
        guard let handle = FileHandle(forReadingAtPath: path(key)) else { return nil }
        return AsyncThrowingStream { continuation in
            let task = Task {
                defer { try? handle.close() }
                do {
                    while !Task.isCancelled {
                        guard let data = try handle.read(upToCount: Self.chunkSize), !data.isEmpty else { break }
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

    public func size(_ key: String) async throws -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path(key)))?[.size] as? Int
    }

    public func delete(_ key: String) async throws {
        for path in [path(key), path(key) + ".partial"] where FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }
}

final class FileBlobWriter: BlobWriter, @unchecked Sendable {
    // @unchecked: one job writes it, one call at a time.
    let final: String
    let partial: String
    let handle: FileHandle

    init(final: String) throws {
        self.final = final
        partial = final + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial)
        else { throw BlobError(description: "cannot create the export file \(partial) (is the disk full or read-only?)") }
        self.handle = handle
    }

    func write(_ bytes: ByteBuffer) async throws {
        do {
            try handle.write(contentsOf: Data(bytes.readableBytesView))
        } catch {
            throw BlobError(description: "cannot write the export file \(partial): \(Self.reason(error))")
        }
    }

    func finish() async throws {
        do {
            try handle.synchronize()
            try handle.close()
            if FileManager.default.fileExists(atPath: final) { try FileManager.default.removeItem(atPath: final) }
            try FileManager.default.moveItem(atPath: partial, toPath: final)
        } catch {
            throw BlobError(description: "cannot finish the export file \(final): \(Self.reason(error))")
        }
    }

    func abort() async {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: partial)
    }

    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("ENOSPC") || text.contains("No space left") || (error as NSError).code == 28 {
            return "no space left on the device"
        }
        return (error as NSError).localizedDescription
    }
}
