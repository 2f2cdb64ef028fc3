import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// One server connection, on its event loop: takes request lines as they are decoded and starts one task per
/// request, without a reader task in between.
///
/// - Blank lines are ignored. The caller's name is read from its certificate once, at the first line.
/// - At most `limit` requests run at once; beyond that reading stops (back-pressure on the peer) until half drain.
/// - An oversized line is answered with an error (`id: null`), then the connection drains and closes.
/// - `drainAndClose()` (graceful shutdown) stops reading, lets the requests in flight finish and answer, flushes,
///   then closes.
final class ServerConnectionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private struct State {
        var inFlight = 0
        var paused = false
        var draining = false
        var closing = false
        var caller: String?
        /// The connection's logger with the caller's name, made once.
        var callerLogger: Logger?
    }

    private let server: WireServer
    private let channel: any Channel
    private let writer: ChannelLineWriter
    private let limit: Int
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(server: WireServer, channel: any Channel, limit: Int, logger: Logger) {
        self.server = server
        self.channel = channel
        self.writer = ChannelLineWriter(channel: channel)
        self.limit = max(1, limit)
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if line.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }  // blank

        enum Step { case ignore, serve(caller: String, logger: Logger, pause: Bool) }
        let knownCaller = state.withLockedValue { $0.caller }
        var newLogger: Logger?
        if knownCaller == nil {
            let name = callerName(context)
            var callerLogger = logger
            callerLogger[metadataKey: "caller"] = "\(name)"
            callerLogger.debug("wire connection authenticated")
            newLogger = callerLogger
            state.withLockedValue { state in
                state.caller = name
                state.callerLogger = callerLogger
            }
        }
        let step: Step = state.withLockedValue { state in
            if state.draining { return .ignore }
            state.inFlight += 1
            let pause = state.inFlight >= limit && !state.paused
            if pause { state.paused = true }
            return .serve(caller: state.caller!, logger: newLogger ?? state.callerLogger!, pause: pause)
        }
        guard case .serve(let name, let requestLogger, let pause) = step else { return }
        if pause { context.channel.setOption(.autoRead, value: false).whenComplete { _ in } }
        Task {
            await self.server.process(line, caller: name, writer: self.writer, logger: requestLogger)
            self.finishedOne()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case IdleStateHandler.IdleStateEvent.read = event {
            let idle = state.withLockedValue { $0.inFlight == 0 }
            if idle {
                logger.debug("wire connection idle; closing it")
                drainAndClose()
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is ByteToMessageDecoderError.PayloadTooLargeError:
            let limit = server.maxLineBytes
            logger.warning("wire line too long; closing the connection", metadata: ["max_line_bytes": "\(limit)"])
            server.recordOversizedLine()
            server.respond(
                writer, id: nil,
                error: .invalidRequest("line exceeds the maximum of \(limit) bytes; closing the connection"))
            drainAndClose()
        case is NIOSSLError, is BoringSSLError:
            logger.warning("wire TLS failure; connection refused", metadata: ["error": "\(error)"])
            server.recordTLSFailure()
            context.close(promise: nil)
        default:
            logger.debug("wire connection ended", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Stops reading; once nothing is in flight, flushes and closes.
    func drainAndClose() {
        let closeNow: Bool = state.withLockedValue { state in
            state.draining = true
            return startClosingIfDrained(&state)
        }
        channel.setOption(.autoRead, value: false).whenComplete { _ in }
        if closeNow { close() }
    }

    private func finishedOne() {
        enum Step { case nothing, resume, close }
        let step: Step = state.withLockedValue { state in
            state.inFlight -= 1
            if startClosingIfDrained(&state) { return .close }
            if state.paused && !state.draining && state.inFlight <= limit / 2 {
                state.paused = false
                return .resume
            }
            return .nothing
        }
        switch step {
        case .nothing: break
        case .resume: channel.setOption(.autoRead, value: true).whenComplete { _ in }
        case .close: close()
        }
    }

    private func startClosingIfDrained(_ state: inout State) -> Bool {
        guard state.draining, state.inFlight == 0, !state.closing else { return false }
        state.closing = true
        return true
    }

    private func close() {
        let writer = self.writer
        let channel = self.channel
        Task {
            await writer.finish()
            try? await channel.close()
        }
    }

    private func callerName(_ context: ChannelHandlerContext) -> String {
        guard let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() else { return "unknown" }
        return WireTLS.name(of: certificate) ?? "unknown"
    }
}
