import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOFoundationCompat
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle

public struct WireServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; read it back from `WireServer.localAddress()`.
    public var port: Int
    public var tls: NIOSSLContext
    /// This process's name, returned by `wire.ping`.
    public var serviceName: String
    public var version: String
    /// A line longer than this gets an error with `id: null` and the connection is closed.
    public var maxLineBytes: Int = 1 << 20
    /// Requests running at once on one connection; beyond it the server stops reading from that connection.
    public var maxInFlightPerConnection: Int = 1024
    /// Applied when a request carries no `meta.deadline_ms`.
    public var defaultDeadline: TimeAmount = .seconds(30)
    /// No request runs longer than this, whatever it asks for.
    public var maxDeadline: TimeAmount = .minutes(5)
    /// A connection that has not finished its TLS handshake by then is closed.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// A connection that has sent nothing for this long, with nothing in flight, is closed. Clients close their own
    /// idle connections sooner (`WireClientConfiguration.idleTimeout`); this reclaims connections of dead peers.
    public var idleTimeout: TimeAmount = .minutes(10)

    public init(host: String, port: Int, tls: NIOSSLContext, serviceName: String, version: String) {
        self.host = host
        self.port = port
        self.tls = tls
        self.serviceName = serviceName
        self.version = version
    }
}

/// A JSON-RPC 2.0 server: one JSON object per line over mutual TLS.
///
/// It runs as a `Service`. On graceful shutdown it stops accepting connections and reading new requests, answers
/// the requests in flight, then closes.
public final class WireServer: Service, Sendable {
    /// Maps an error a handler threw to the error sent out. `nil` means unknown: it is logged at error level and
    /// answered with a generic internal error.
    public typealias ErrorMapper = @Sendable (any Error) -> WireError?

    private let configuration: WireServerConfiguration
    private let router: WireRouter
    private let errorMapper: ErrorMapper
    private let group: any EventLoopGroup
    private let logger: Logger
    private let bound: EventLoopPromise<SocketAddress>
    private let metrics: WireServerMetrics
    private let accepted = NIOLockedValueBox(0)
    /// Whether `bound` has been completed (a server that never ran must still complete it).
    private let boundSettled = NIOLockedValueBox(false)
    private let deadlines: DeadlineSweeper

    /// Connections accepted since start.
    public var acceptedConnections: Int { accepted.withLockedValue { $0 } }

    public init(
        configuration: WireServerConfiguration,
        router: WireRouter,
        errorMapper: @escaping ErrorMapper = { $0 as? WireError },
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        var router = router
        let serviceName = configuration.serviceName
        let version = configuration.version
        router.register("wire.ping", allowed: .any) { (_: PingParams, _) in
            PingResult(service: serviceName, version: version, time: Date().formatted(WireJSON.dateStyle))
        }
        self.configuration = configuration
        self.router = router
        self.errorMapper = errorMapper
        self.group = eventLoopGroup
        self.logger = logger
        self.bound = eventLoopGroup.any().makePromise(of: SocketAddress.self)
        self.deadlines = DeadlineSweeper(eventLoop: eventLoopGroup.any())
        self.metrics = WireServerMetrics(methods: router.methodNames)
    }

    deinit {
        if !boundSettled.withLockedValue({ $0 }) { bound.fail(WireServerNotStarted()) }
    }

    /// The address the server listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await bound.futureResult.get()
    }

    public func run() async throws {
        let configuration = self.configuration
        // Accepted channels get their request handler from the task that serves them, not here: a connection
        // accepted while the listener closes is then simply dropped (an NIOAsyncChannel would trap: swift-nio#2813).
        let listener: NIOAsyncChannel<any Channel, Never>
        do {
            listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                // Nothing is read until the serving task has installed its handler (see serve(_:)).
                .childChannelOption(.autoRead, value: false)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        // First, so that any bytes (a handshake, a partial line) count as activity.
                        try sync.addHandler(IdleStateHandler(readTimeout: configuration.idleTimeout))
                        try sync.addHandler(NIOSSLServerHandler(context: configuration.tls))
                        try sync.addHandler(HandshakeTimeoutHandler(timeout: configuration.handshakeTimeout))
                        try sync.addHandler(
                            ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: configuration.maxLineBytes))
                        return channel
                    }
                }
        } catch {
            boundSettled.withLockedValue { $0 = true }
            bound.fail(error)
            throw error
        }
        let address = listener.channel.localAddress!
        boundSettled.withLockedValue { $0 = true }
        bound.succeed(address)
        logger.info(
            "wire server listening",
            metadata: ["address": "\(address)", "methods": "\(router.methodNames.joined(separator: ","))"])

        try await withGracefulShutdownHandler {
            try await listener.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            self.accepted.withLockedValue { $0 += 1 }
                            group.addTask { await self.serve(connection) }
                        }
                    } catch is CancellationError {
                        // The service is stopping: not a failure.
                        self.logger.debug("wire accept loop cancelled")
                    } catch {
                        self.logger.error("wire accept loop failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("wire server shutting down: no new connections, draining requests in flight")
            listener.channel.close(promise: nil)
        }
        deadlines.stop()
        logger.info("wire server stopped")
    }

    // MARK: - One connection

    /// Serves one connection until the peer leaves, the line limit is broken or the server shuts down. Never
    /// throws, so that one bad peer cannot stop the accept loop.
    ///
    /// Lines are taken off the event loop by `ServerConnectionHandler`, which starts one task per request; this task
    /// only waits for the connection to end, and on graceful shutdown asks it to drain.
    private func serve(_ channel: any Channel) async {
        let remote = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(remote)"
        let handler = ServerConnectionHandler(
            server: self, channel: channel, limit: configuration.maxInFlightPerConnection, logger: logger)
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(handler)
                try channel.syncOptions?.setOption(.autoRead, value: true)
            }.get()
        } catch {
            channel.close(promise: nil)
            return
        }
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            handler.drainAndClose()
        }
    }

    var maxLineBytes: Int { configuration.maxLineBytes }

    func recordOversizedLine() { metrics.oversizedLine() }

    func recordTLSFailure() { metrics.handshakeFailed() }

    // MARK: - One request

    func process(_ line: ByteBuffer, caller: String, writer: ChannelLineWriter, logger: Logger) async {
        let started = NIODeadline.now()
        var head: RequestLine
        if let read = RequestLine.read(line) {
            head = read
        } else {
            do {
                let decoded = try WireJSON.decoder.decode(RequestHead.self, from: line)
                head = RequestLine(jsonrpc: decoded.jsonrpc, id: decoded.id, method: decoded.method, meta: decoded.meta)
                head.params = decoded.hasParams ? JSONMembers.range(of: "params", in: line) : nil
            } catch {
                // Not JSON at all, or JSON that is not a request object.
                var isParseError = false
                if case DecodingError.dataCorrupted(let context) = error, context.codingPath.isEmpty { isParseError = true }
                let wireError: WireError =
                    isParseError
                    ? .parseError("the line is not valid JSON")
                    : .invalidRequest("the line is not a JSON-RPC 2.0 request object")
                metrics.record(method: nil, code: wireError.code, since: started)
                respond(writer, id: nil, error: wireError)
                return
            }
        }
        let id = head.id ?? nil
        let isNotification = head.id == nil
        guard head.jsonrpc == "2.0", let name = head.method, !name.isEmpty else {
            let error = WireError.invalidRequest(
                head.jsonrpc == "2.0" ? "a request needs a method" : "jsonrpc must be \"2.0\"")
            metrics.record(method: nil, code: error.code, since: started)
            if !isNotification { respond(writer, id: id, error: error) }
            return
        }
        guard let method = router.methods[name] else {
            metrics.record(method: nil, code: WireError.Code.methodNotFound.rawValue, since: started)
            if !isNotification { respond(writer, id: id, error: .methodNotFound(name)) }
            return
        }
        guard method.allowed.allows(caller) else {
            logger.warning("wire call refused", metadata: ["method": "\(name)"])
            metrics.record(method: name, code: WireError.Code.forbidden.rawValue, since: started)
            if !isNotification {
                respond(writer, id: id, error: .forbidden("caller '\(caller)' may not call \(name)"))
            }
            return
        }

        let budget = head.meta?.deadlineMS.map { TimeAmount.milliseconds(Int64(max(0, $0))) }
            ?? configuration.defaultDeadline
        let deadline = started + min(budget, configuration.maxDeadline)
        var requestLogger = logger
        requestLogger[metadataKey: "method"] = "\(name)"
        if let requestID = head.meta?.requestID { requestLogger[metadataKey: "request_id"] = "\(requestID)" }
        let callLogger = requestLogger
        let context = WireCallContext(
            caller: caller, method: name, deadline: deadline, meta: head.meta ?? WireMeta(), logger: callLogger)

        // The deadline: a timer answers -32005 on time and cancels the handler; whichever of the two comes first
        // answers, the other is dropped.
        let outcome = CallOutcome()
        let timer: UInt64? = withUnsafeCurrentTask { task in
            guard let task else { return nil }
            let handle = UnsafeTaskHandle(task: task)
            return deadlines.add(deadline) {
                guard outcome.claim(cancelling: handle) else { return }
                self.metrics.record(method: name, code: WireError.Code.deadlineExceeded.rawValue, since: started)
                callLogger.notice("wire call exceeded its deadline")
                if !isNotification {
                    self.respond(writer, id: id, error: .deadlineExceeded("\(name) did not finish within its deadline"))
                }
            }
        }
        let answer: Result<ByteBuffer, WireError>
        do {
            // Calls the handler makes carry the same request id.
            answer = .success(
                try await WireMeta.$currentRequestID.withValue(context.meta.requestID) {
                    try await method.invoke(line, head.params, id, context)
                })
        } catch {
            answer = .failure(map(error, method: name, logger: callLogger))
        }
        if let timer { deadlines.remove(timer) }
        guard outcome.claim(cancelling: nil) else { return }
        switch answer {
        case .success(let line):
            metrics.record(method: name, code: 0, since: started)
            if !isNotification { writer.enqueue(line) }
        case .failure(let error):
            metrics.record(method: name, code: error.code, since: started)
            if !isNotification { respond(writer, id: id, error: error) }
        }
    }

    private func map(_ error: any Error, method: String, logger: Logger) -> WireError {
        if let mapped = errorMapper(error) {
            if mapped.code == WireError.Code.internal.rawValue {
                logger.error("wire handler failed", metadata: ["error": "\(error)"])
            }
            return mapped
        }
        if error is CancellationError {
            return .unavailable("\(method) was cancelled")
        }
        logger.error("wire handler failed with an unexpected error", metadata: ["error": "\(error)"])
        return .internal()
    }

    func respond(_ writer: ChannelLineWriter, id: JSONRPCID?, error: WireError) {
        if let line = try? encodeLine(ErrorEnvelope(id: id, error: error)) {
            writer.enqueue(line)
        }
    }
}

struct PingParams: Decodable, Sendable {}

struct PingResult: Codable, Sendable {
    var service: String
    var version: String
    var time: String
}

/// Which of the handler and the deadline timer answers a request.
private final class CallOutcome: Sendable {
    private let done = NIOLockedValueBox(false)

    /// True for the first caller only. The timer passes the task to cancel; cancelling under the lock is safe because
    /// the task cannot finish (it must claim first) while the lock is held.
    func claim(cancelling handle: UnsafeTaskHandle?) -> Bool {
        done.withLockedValue { done in
            guard !done else { return false }
            done = true
            handle?.task.cancel()
            return true
        }
    }
}

private struct UnsafeTaskHandle: @unchecked Sendable {
    let task: UnsafeCurrentTask
}

/// Closes a connection whose TLS handshake has not finished in time.
final class HandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        scheduled = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        scheduled?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            scheduled?.cancel()
            scheduled = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Request counts and latencies per method and outcome (`code` 0 is success).
final class WireServerMetrics: Sendable {
    private let known: Set<String>
    private struct Key: Hashable {
        var method: String
        var code: Int
    }

    private let counters = NIOLockedValueBox([Key: Counter]())
    private let timers: [String: Metrics.Timer]
    private let otherTimer = Metrics.Timer(
        label: "labportal_wire_server_request_duration_seconds", dimensions: [("method", "unknown")],
        preferredDisplayUnit: .seconds)
    private let oversized = Counter(label: "labportal_wire_oversized_lines_total")
    private let handshakes = Counter(label: "labportal_wire_tls_failures_total")

    init(methods: [String]) {
        known = Set(methods)
        var timers: [String: Metrics.Timer] = [:]
        for method in methods {
            timers[method] = Metrics.Timer(
                label: "labportal_wire_server_request_duration_seconds", dimensions: [("method", method)],
                preferredDisplayUnit: .seconds)
        }
        self.timers = timers
    }

    func record(method: String?, code: Int, since start: NIODeadline) {
        let name = method.flatMap { known.contains($0) ? $0 : nil } ?? "unknown"
        let key = Key(method: name, code: code)
        let counter = counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "labportal_wire_server_requests_total", dimensions: [("method", name), ("code", String(code))])
            counters[key] = counter
            return counter
        }
        counter.increment()
        (timers[name] ?? otherTimer).recordNanoseconds((NIODeadline.now() - start).nanoseconds)
    }

    func oversizedLine() { oversized.increment() }
    func handshakeFailed() { handshakes.increment() }
}

/// `localAddress()` of a server that was dropped without ever running.
public struct WireServerNotStarted: Error, CustomStringConvertible {
    public var description: String { "the wire server never started" }
}
