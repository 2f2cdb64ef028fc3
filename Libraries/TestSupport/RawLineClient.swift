import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// A bare TLS line client for tests: sends exactly the bytes it is given and reads lines back, so that framing,
/// limits and protocol errors can be exercised below the level of `WireClient`.
public final class RawLineClient: Sendable {
    public let channel: any Channel
    private let lines: AsyncThrowingStream<String, any Error>
    private let iterator: IteratorBox

    public static func connect(port: Int, tls: NIOSSLContext, serverName: String) async throws -> RawLineClient {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try sync.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try sync.addHandler(LineCollector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawLineClient(channel: channel, lines: stream)
    }

    init(channel: any Channel, lines: AsyncThrowingStream<String, any Error>) {
        self.channel = channel
        self.lines = lines
        self.iterator = IteratorBox(lines.makeAsyncIterator())
    }

    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// The next line, or nil when the connection closed. Fails after `timeout`.
    public func readLine(timeout: Duration = .seconds(10)) async throws -> String? {
        try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { try await self.iterator.next() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw RawLineClientError.timeout
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    /// The next line parsed as a JSON object.
    public func readJSON(timeout: Duration = .seconds(10)) async throws -> [String: Any]? {
        guard let line = try await readLine(timeout: timeout) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    public func close() async {
        try? await channel.close()
    }
}

public enum RawLineClientError: Error { case timeout }

private final class IteratorBox: @unchecked Sendable {
    // One reader at a time, by construction of the tests.
    var iterator: AsyncThrowingStream<String, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<String, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> String? { try await iterator.next() }
}

private final class LineCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncThrowingStream<String, any Error>.Continuation

    init(continuation: AsyncThrowingStream<String, any Error>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(String(buffer: unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}
