import CompressNIO
import NIOCore

/// gzip as concatenated members: each block of CSV is compressed on its own (so that blocks compress in parallel,
/// as pigz does); a file of several members is valid gzip (RFC 1952 §2.2), which `gzip -t`, browsers and
/// `Content-Encoding: gzip` all accept.
enum Gzip {
    /// One block as one complete gzip member.
    static func member(_ block: ByteBuffer, level: Int32) throws -> ByteBuffer {
        var block = block
        return try block.compress(
            with: .gzip, configuration: ZlibConfiguration(windowSize: 15, compressionLevel: level, memoryLevel: 8))
    }
}

/// Inflates a gzip stream of any number of members, chunk by chunk, into bounded output buffers.
final class GzipInflater {
    private let decompressor: ZlibDecompressor
    static let outputSize = 256 * 1024

    init() throws {
        decompressor = try ZlibDecompressor(algorithm: .gzip)
    }

    /// Inflates `input`, handing each filled output buffer to `emit`.
    func inflate(_ input: ByteBuffer, emit: (ByteBuffer) async throws -> Void) async throws {
        var input = input
        var output = ByteBufferAllocator().buffer(capacity: Self.outputSize)
        var stalled = 0
        while input.readableBytes > 0 {
            let before = input.readableBytes
            do {
                try decompressor.inflate(from: &input, to: &output)
                if input.readableBytes > 0 {
                    // The member ended inside this chunk: the next one starts here.
                    if input.readableBytes == before { stalled += 1 } else { stalled = 0 }
                    guard stalled < 2 else { throw CompressNIOError.corruptData }
                    try decompressor.reset()
                }
            } catch let error as CompressNIOError where error == .bufferOverflow {
                try await emit(output)
                output = ByteBufferAllocator().buffer(capacity: Self.outputSize)
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                break  // needs the next chunk
            }
        }
        if output.readableBytes > 0 { try await emit(output) }
    }
}
