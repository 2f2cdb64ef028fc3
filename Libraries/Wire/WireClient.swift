import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOFoundationCompat
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// One replica of a peer: `host:port`.
public struct WireEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (IPv6 as `[::1]:9102`).
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct WireClientConfiguration: Sendable {
    /// The peer's name. The server's certificate must carry it as a DNS SAN; it is also sent as SNI.
    public var peerName: String
    /// One per replica. Calls spread over them and fail over between them.
    public var endpoints: [WireEndpoint]
    public var tls: NIOSSLContext
    /// A call's deadline when the caller gives none.
    public var defaultDeadline: TimeAmount = .seconds(5)
    /// Connecting gives up after this (or the call's deadline, if sooner).
    public var connectTimeout: TimeAmount = .seconds(2)
    /// After a failed connect the endpoint is left alone for a backoff that doubles from `backoffInitial` up to
    /// `backoffMax`, with ±20% jitter. Calls in that time fail fast with `unavailable`.
    public var backoffInitial: TimeAmount = .milliseconds(100)
    public var backoffMax: TimeAmount = .seconds(5)
    /// Answers can be large (pages of up to 1,000 items).
    public var maxLineBytes: Int = 64 << 20
    /// Calls waiting for an answer on one connection; beyond it calls fail with `unavailable`.
    public var maxPendingPerConnection: Int = 10_000
    /// A connection with no call waiting and no traffic for this long is closed; the next call opens a new one.
    /// Keep it below the server's idle timeout so that it is the client, which knows when it is idle, that closes.
    public var idleTimeout: TimeAmount = .minutes(5)

    public init(peerName: String, endpoints: [WireEndpoint], tls: NIOSSLContext) {
        self.peerName = peerName
        self.endpoints = endpoints
        self.tls = tls
    }
}

/// A JSON-RPC 2.0 client for one peer, with one lazily opened connection per endpoint.
///
/// - Many calls share a connection; answers are matched by id.
/// - Every call has a deadline. A peer that is down fails fast with `unavailable`; nothing hangs.
/// - Idempotent calls are retried once, on another endpoint when there is one.
/// - It runs as a `Service` so that graceful shutdown closes its connections after the services that use it.
public final class WireClient: Service, Sendable {
    public let configuration: WireClientConfiguration
    private let endpoints: [EndpointConnector]
    private let cursor = NIOLockedValueBox(0)
    private let logger: Logger
    private let metrics: WireClientMetrics

    public init(
        configuration: WireClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        precondition(!configuration.endpoints.isEmpty, "a wire client needs at least one endpoint")
        var logger = logger
        logger[metadataKey: "peer"] = "\(configuration.peerName)"
        self.configuration = configuration
        self.logger = logger
        self.metrics = WireClientMetrics(peer: configuration.peerName)
        self.endpoints = configuration.endpoints.map {
            EndpointConnector(endpoint: $0, configuration: configuration, group: eventLoopGroup, logger: logger)
        }
    }

    /// Calls `method` and decodes its result.
    ///
    /// - Parameters:
    ///   - deadline: how long the caller waits; the server is told the same budget in `meta.deadline_ms`.
    ///   - idempotent: a read that may safely run twice. It is retried once when the peer is unavailable.
    public func call<Params: Encodable & Sendable, Result: Decodable & Sendable>(
        _ method: String,
        _ params: Params,
        returning: Result.Type = Result.self,
        deadline: TimeAmount? = nil,
        idempotent: Bool = false,
        meta: WireMeta = WireMeta()
    ) async throws -> Result {
        try await perform(method, params, deadline: deadline, idempotent: idempotent, meta: meta) { line in
            // An answer as this library writes it: the result's own bytes are decoded, not the envelope.
            if let result = Self.result(of: line, anyShape: false) {
                return try WireJSON.decoder.decode(Result.self, from: result)
            }
            let body = try WireJSON.decoder.decode(ResponseBody<Result>.self, from: line)
            if let error = body.error { throw error }
            return body.result!
        }
    }

    /// Calls `method` and answers the bytes of its `result` member as they came, for the caller to read (bulk reads
    /// with their own compact reader; see `WireRouter.registerRaw`).
    public func callRaw<Params: Encodable & Sendable>(
        _ method: String,
        _ params: Params,
        deadline: TimeAmount? = nil,
        idempotent: Bool = false,
        meta: WireMeta = WireMeta()
    ) async throws -> ByteBuffer {
        try await perform(method, params, deadline: deadline, idempotent: idempotent, meta: meta) { line in
            if let result = Self.result(of: line, anyShape: true) { return result }
            let body = try WireJSON.decoder.decode(ResponseBody<Empty?>.self, from: line)
            if let error = body.error { throw error }
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "an answer with no result"))
        }
    }

    private struct Empty: Decodable {}

    /// The bytes of an answer's `result`: found without a parse in an answer as this library writes it, else (with
    /// `anyShape`) by walking the object; nil when there is none that way.
    private static func result(of line: ByteBuffer, anyShape: Bool) -> ByteBuffer? {
        guard let range = JSONMembers.canonicalResult(in: line) ?? (anyShape ? JSONMembers.range(of: "result", in: line) : nil)
        else { return nil }
        return line.getSlice(at: line.readerIndex + range.lowerBound, length: range.count)
    }

    private func perform<Params: Encodable & Sendable, Result>(
        _ method: String, _ params: Params, deadline: TimeAmount?, idempotent: Bool, meta: WireMeta,
        decode: (ByteBuffer) throws -> Result
    ) async throws -> Result {
        var meta = meta
        if meta.requestID == nil { meta.requestID = WireMeta.currentRequestID }
        let started = NIODeadline.now()
        let due = started + (deadline ?? configuration.defaultDeadline)
        var attemptsLeft = idempotent ? 2 : 1
        var unsentRetries = 3
        var tried: Set<Int> = []
        while true {
            attemptsLeft -= 1
            let index = pickEndpoint(excluding: tried)
            tried.insert(index)
            do {
                let connection = try await endpoints[index].connection(deadline: due)
                let line = try await connection.send(method: method, params: params, meta: meta, deadline: due)
                let result = try decode(line)
                metrics.record(method: method, code: 0, since: started)
                return result
            } catch let error as WireError {
                let retry = attemptsLeft > 0 && error.code == WireError.Code.unavailable.rawValue
                    && NIODeadline.now() < due
                if retry {
                    logger.debug(
                        "retrying idempotent wire call",
                        metadata: ["method": "\(method)", "error": "\(error.message)"])
                    continue
                }
                metrics.record(method: method, code: error.code, since: started)
                throw error
            } catch is WireConnection.ClosedBeforeSend {
                // Nothing was sent: try again on a fresh connection, whatever the call.
                unsentRetries -= 1
                attemptsLeft += 1
                tried.remove(index)
                if unsentRetries > 0 && NIODeadline.now() < due { continue }
                metrics.record(method: method, code: WireError.Code.unavailable.rawValue, since: started)
                throw WireError.unavailable("connection to \(configuration.peerName) closed before \(method) was sent")
            } catch is DecodingError {
                metrics.record(method: method, code: WireError.Code.internal.rawValue, since: started)
                throw WireError.internal("the answer of \(configuration.peerName) to \(method) could not be decoded")
            }
        }
    }

    /// Sends a notification: no id, no answer. Fails only if no connection can be had.
    public func notify<Params: Encodable & Sendable>(
        _ method: String, _ params: Params, meta: WireMeta = WireMeta()
    ) async throws {
        let due = NIODeadline.now() + configuration.defaultDeadline
        let connection = try await endpoints[pickEndpoint(excluding: [])].connection(deadline: due)
        try connection.notify(method: method, params: params, meta: meta)
    }

    /// Closes every connection; calls in flight fail with `unavailable`.
    public func shutdown() async {
        for endpoint in endpoints { await endpoint.shutdown() }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Round robin over the endpoints, preferring those not in backoff and not yet tried for this call.
    private func pickEndpoint(excluding tried: Set<Int>) -> Int {
        let start = cursor.withLockedValue { value in
            defer { value = (value + 1) % endpoints.count }
            return value
        }
        let order = (0..<endpoints.count).map { (start + $0) % endpoints.count }
        let now = NIODeadline.now()
        return order.first { !tried.contains($0) && endpoints[$0].isAvailable(at: now) }
            ?? order.first { !tried.contains($0) }
            ?? start
    }
}

// MARK: - One endpoint

/// Owns the connection to one endpoint: opens it lazily, shares it, and backs off after failures.
final class EndpointConnector: Sendable {
    private enum State {
        case idle(failures: Int, retryAt: NIODeadline?)
        case connecting(failures: Int, waiters: [CheckedContinuation<WireConnection, any Error>])
        case connected(WireConnection, Task<Void, Never>)
        case shutDown
    }

    let endpoint: WireEndpoint
    private let configuration: WireClientConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State.idle(failures: 0, retryAt: nil))

    init(endpoint: WireEndpoint, configuration: WireClientConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.endpoint = endpoint
        self.configuration = configuration
        self.group = group
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(endpoint)"
        self.logger = logger
    }

    func isAvailable(at now: NIODeadline) -> Bool {
        state.withLockedValue { state in
            if case .idle(_, let retryAt?) = state { return retryAt <= now }
            if case .shutDown = state { return false }
            return true
        }
    }

    func connection(deadline: NIODeadline) async throws -> WireConnection {
        enum Step {
            case ready(WireConnection)
            case fail(WireError)
            case connect(failures: Int)
            case wait
        }
        let now = NIODeadline.now()
        let step: Step = state.withLockedValue { state in
            switch state {
            case .connected(let connection, _) where !connection.isClosed:
                return .ready(connection)
            case .connected:
                // Closed (idle, or lost) but its task has not wound down yet: open a new one now.
                state = .connecting(failures: 0, waiters: [])
                return .connect(failures: 0)
            case .idle(let failures, let retryAt):
                if let retryAt, retryAt > now {
                    let wait = (retryAt - now).nanoseconds / 1_000_000
                    return .fail(.unavailable(
                        "\(configuration.peerName) at \(endpoint) is unavailable; next connection attempt in \(wait) ms"))
                }
                state = .connecting(failures: failures, waiters: [])
                return .connect(failures: failures)
            case .connecting:
                return .wait
            case .shutDown:
                return .fail(.unavailable("the client of \(configuration.peerName) is shut down"))
            }
        }
        switch step {
        case .ready(let connection): return connection
        case .fail(let error): throw error
        case .wait:
            do {
                return try await waitForAttempt()
            } catch is AttemptAbandoned {
                guard NIODeadline.now() < deadline else {
                    throw WireError.deadlineExceeded("no connection to \(configuration.peerName) at \(endpoint) within the call's deadline")
                }
                return try await connection(deadline: deadline)
            }
        case .connect(let failures):
            return try await connect(failures: failures, deadline: deadline)
        }
    }

    /// A connection attempt that another call's deadline cut short: whoever waited for it tries on their own.
    private struct AttemptAbandoned: Error {}

    private func waitForAttempt() async throws -> WireConnection {
        try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<WireConnection, any Error>? = state.withLockedValue { state in
                switch state {
                case .connecting(let failures, var waiters):
                    waiters.append(continuation)
                    state = .connecting(failures: failures, waiters: waiters)
                    return nil
                case .connected(let connection, _):
                    return .success(connection)
                case .idle(_, nil):
                    return .failure(AttemptAbandoned())
                default:
                    return .failure(WireError.unavailable("\(configuration.peerName) at \(endpoint) is unavailable"))
                }
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    private func connect(failures: Int, deadline: NIODeadline) async throws -> WireConnection {
        let remaining = deadline - NIODeadline.now()
        let timeout = max(.milliseconds(1), min(configuration.connectTimeout, remaining))
        let configuration = self.configuration
        let routing = ResponseRouting()
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(
                            NIOSSLClientHandler(context: configuration.tls, serverHostname: configuration.peerName))
                        try sync.addHandler(
                            ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: configuration.maxLineBytes))
                        try sync.addHandler(IdleStateHandler(allTimeout: configuration.idleTimeout))
                        try sync.addHandler(ResponseRoutingHandler(routing: routing, idleTimeout: configuration.idleTimeout))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let connection = WireConnection(
                channel: channel, peer: "\(configuration.peerName) at \(endpoint)",
                maxPending: configuration.maxPendingPerConnection, logger: logger)
            routing.connect(connection)
            let task = Task { [weak self] in
                let outcome = await connection.run()
                self?.connectionEnded(connection, outcome: outcome)
            }
            let (waiters, keep): ([CheckedContinuation<WireConnection, any Error>], Bool) = state.withLockedValue {
                state in
                guard case .connecting(_, let waiters) = state else { return ([], false) }
                state = .connected(connection, task)
                return (waiters, true)
            }
            guard keep else {
                task.cancel()
                throw WireError.unavailable("the client of \(configuration.peerName) is shut down")
            }
            logger.debug("wire connection opened")
            for waiter in waiters { waiter.resume(returning: connection) }
            return connection
        } catch {
            if timeout < configuration.connectTimeout, case ChannelError.connectTimeout = error {
                // The caller's own deadline ended the attempt, which says nothing about the peer: no backoff, and
                // the calls that waited for this attempt make their own.
                let waiters: [CheckedContinuation<WireConnection, any Error>] = state.withLockedValue { state in
                    guard case .connecting(let failures, let waiters) = state else { return [] }
                    state = .idle(failures: failures, retryAt: nil)
                    return waiters
                }
                for waiter in waiters { waiter.resume(throwing: AttemptAbandoned()) }
                throw WireError.deadlineExceeded(
                    "no connection to \(configuration.peerName) at \(endpoint) within the call's deadline")
            }
            let wireError = WireError.unavailable(
                "cannot connect to \(configuration.peerName) at \(endpoint): \(Self.describe(error))")
            let backoff = backoff(afterFailures: failures + 1)
            let waiters: [CheckedContinuation<WireConnection, any Error>] = state.withLockedValue { state in
                guard case .connecting(_, let waiters) = state else { return [] }
                state = .idle(failures: failures + 1, retryAt: NIODeadline.now() + backoff)
                return waiters
            }
            logger.warning(
                "wire connect failed",
                metadata: ["error": "\(error)", "retry_in_ms": "\(backoff.nanoseconds / 1_000_000)"])
            for waiter in waiters { waiter.resume(throwing: wireError) }
            throw wireError
        }
    }

    /// After a connection ends: one that never answered anything counts as a failed attempt (a refused handshake,
    /// for example) and backs off; one that worked lets the next call reconnect at once.
    private func connectionEnded(_ connection: WireConnection, outcome: WireConnection.Outcome) {
        state.withLockedValue { state in
            guard case .connected(let current, _) = state, current === connection else { return }
            if outcome.answeredAny {
                state = .idle(failures: 0, retryAt: nil)
            } else {
                let failures = 1
                state = .idle(failures: failures, retryAt: NIODeadline.now() + backoff(afterFailures: failures))
            }
        }
        logger.debug("wire connection closed", metadata: ["reason": "\(outcome.reason)"])
    }

    func backoff(afterFailures failures: Int) -> TimeAmount {
        let exponent = min(max(failures - 1, 0), 20)
        let base = min(configuration.backoffInitial.nanoseconds << exponent, configuration.backoffMax.nanoseconds)
        let jitter = Double.random(in: 0.8...1.2)
        return .nanoseconds(Int64(Double(base) * jitter))
    }

    func shutdown() async {
        let (task, waiters): (Task<Void, Never>?, [CheckedContinuation<WireConnection, any Error>]) =
            state.withLockedValue { state in
                defer { state = .shutDown }
                switch state {
                case .connected(_, let task): return (task, [])
                case .connecting(_, let waiters): return (nil, waiters)
                default: return (nil, [])
                }
            }
        for waiter in waiters {
            waiter.resume(throwing: WireError.unavailable("the client of \(configuration.peerName) is shut down"))
        }
        task?.cancel()
        await task?.value
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout(let amount): return "timed out after \(amount.nanoseconds / 1_000_000) ms"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

// MARK: - One connection

/// A live connection: writes requests, routes answers to their callers by id.
final class WireConnection: Sendable {
    struct Outcome: Sendable {
        var answeredAny: Bool
        var reason: String
    }

    private struct Pending {
        var continuation: CheckedContinuation<ByteBuffer, any Error>
        var deadlineToken: UInt64
    }

    private struct State {
        var nextID: Int64 = 1
        var pending: [Int64: Pending] = [:]
        var closed: String?
        var answeredAny = false
        var lastUsed = NIODeadline.now()
    }

    /// The connection was closed before this call's request was written: nothing reached the peer, so any call may
    /// safely be tried again on a new connection.
    struct ClosedBeforeSend: Error {}

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let writer: ChannelLineWriter
    private let deadlines: DeadlineSweeper
    private let state = NIOLockedValueBox(State())
    private let peer: String
    private let maxPending: Int
    private let logger: Logger

    init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, peer: String, maxPending: Int, logger: Logger) {
        self.channel = channel
        self.writer = ChannelLineWriter(channel: channel.channel)
        self.deadlines = DeadlineSweeper(eventLoop: channel.channel.eventLoop)
        self.peer = peer
        self.maxPending = maxPending
        self.logger = logger
    }

    /// Reads answers until the connection ends, then fails whatever is still waiting.
    func run() async -> Outcome {
        var reason = "closed by peer"
        do {
            try await channel.executeThenClose { inbound, _ in
                // Answers are routed on the event loop by ResponseRoutingHandler; this loop only sees the end.
                for try await _ in inbound {}
            }
        } catch is CancellationError {
        } catch {
            reason = EndpointConnector.describe(error)
        }
        let (pending, answeredAny): ([Pending], Bool) = state.withLockedValue { state in
            state.closed = reason
            defer { state.pending.removeAll() }
            return (Array(state.pending.values), state.answeredAny)
        }
        await writer.finish()
        deadlines.stop()
        for entry in pending {
            entry.continuation.resume(throwing: WireError.unavailable("connection to \(peer) lost: \(reason)"))
        }
        return Outcome(answeredAny: answeredAny, reason: reason)
    }

    var isClosed: Bool { state.withLockedValue { $0.closed != nil } }

    /// Marks the connection closed if no call is waiting and none was made for `idleTimeout`; true if it did. After
    /// this no call can register on it, so closing the channel loses nothing.
    func closeIfIdle(_ idleTimeout: TimeAmount) -> Bool {
        state.withLockedValue { state in
            guard state.closed == nil, state.pending.isEmpty, NIODeadline.now() - state.lastUsed >= idleTimeout else {
                return false
            }
            state.closed = "idle"
            return true
        }
    }

    func route(_ line: ByteBuffer) {
        if let id = Self.leadingNumericID(line) {
            deliver(id, line)
            return
        }
        // Only the id member is decoded: an answer may be megabytes long.
        guard let range = JSONMembers.range(of: "id", in: line),
            var slice = line.getSlice(at: line.readerIndex + range.lowerBound, length: range.count),
            case var member = ByteBuffer(string: #"{"id":"#), member.writeBuffer(&slice) > 0,
            member.writeString("}") > 0,
            let head = try? WireJSON.decoder.decode(ResponseHead.self, from: member)
        else {
            logger.warning("wire answer without a readable id dropped")
            return
        }
        guard case .number(let id) = head.id else {
            // id null: the peer refused something at the connection level (an oversized line, unparseable JSON).
            logger.warning(
                "wire peer reported a connection-level error",
                metadata: ["line": "\(String(buffer: line).prefix(500))"])
            return
        }
        deliver(id, line)
    }

    private func deliver(_ id: Int64, _ line: ByteBuffer) {
        let entry: Pending? = state.withLockedValue { state in
            state.answeredAny = true
            return state.pending.removeValue(forKey: id)
        }
        guard let entry else { return }  // its caller gave up (deadline or cancellation)
        deadlines.remove(entry.deadlineToken)
        entry.continuation.resume(returning: line)
    }

    private static let answerPrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)

    /// The id of an answer that starts `{"jsonrpc":"2.0","id":<digits>,` — the shape every LabPortal server writes —
    /// read without a JSON parse. Anything else returns nil and takes the general path.
    static func leadingNumericID(_ line: ByteBuffer) -> Int64? {
        line.withUnsafeReadableBytes { bytes -> Int64? in
            let prefix = answerPrefix
            guard bytes.count > prefix.count + 1 else { return nil }
            for index in 0..<prefix.count where bytes[index] != prefix[index] { return nil }
            var value: Int64 = 0
            var index = prefix.count
            var digits = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                guard digits < 18 else { return nil }
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            guard digits > 0, index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return nil }
            return value
        }
    }

    func send<Params: Encodable & Sendable>(
        method: String, params: Params, meta: WireMeta, deadline: NIODeadline
    ) async throws -> ByteBuffer {
        var meta = meta
        let remaining = deadline - NIODeadline.now()
        guard remaining > .zero else { throw WireError.deadlineExceeded("\(method) to \(peer): deadline passed") }
        meta.deadlineMS = Int(max(1, remaining.nanoseconds / 1_000_000))
        let id: Int64 = state.withLockedValue { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let line: ByteBuffer
        do {
            line = try requestLine(id: id, method: method, params: params, meta: meta)
        } catch {
            throw WireError.invalidParams("the params of \(method) could not be encoded")
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer, any Error>) in
                let refusal: (any Error)? = state.withLockedValue { state in
                    if state.closed != nil { return ClosedBeforeSend() }
                    if state.pending.count >= maxPending {
                        return WireError.unavailable("too many calls waiting on \(peer)")
                    }
                    state.lastUsed = NIODeadline.now()
                    let peer = self.peer
                    let token = deadlines.add(deadline) { [weak self] in
                        self?.expire(id, error: .deadlineExceeded("\(method) to \(peer) exceeded its deadline"))
                    }
                    state.pending[id] = Pending(continuation: continuation, deadlineToken: token)
                    return nil
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                    return
                }
                writer.enqueue(line)
            }
        } onCancel: {
            expire(id, error: nil)
        }
    }

    func notify<Params: Encodable & Sendable>(method: String, params: Params, meta: WireMeta) throws {
        let closed = state.withLockedValue { state -> String? in
            if state.closed == nil { state.lastUsed = NIODeadline.now() }
            return state.closed
        }
        if let closed { throw WireError.unavailable("connection to \(peer) lost: \(closed)") }
        writer.enqueue(try requestLine(id: nil, method: method, params: params, meta: meta))
    }

    /// Fails one waiting call: with `error`, or with cancellation when `error` is nil.
    private func expire(_ id: Int64, error: WireError?) {
        let entry = state.withLockedValue { $0.pending.removeValue(forKey: id) }
        guard let entry else { return }
        deadlines.remove(entry.deadlineToken)
        entry.continuation.resume(throwing: error ?? CancellationError())
    }
}

/// Client-side call counts and latencies per peer, method and outcome.
final class WireClientMetrics: Sendable {
    private let peer: String
    private let counters = NIOLockedValueBox([String: (Counter, Metrics.Timer)]())

    init(peer: String) { self.peer = peer }

    func record(method: String, code: Int, since start: NIODeadline) {
        let key = "\(method)|\(code)"
        let (counter, timer) = counters.withLockedValue { counters in
            if let pair = counters[key] { return pair }
            let pair = (
                Counter(
                    label: "labportal_wire_client_requests_total",
                    dimensions: [("peer", peer), ("method", method), ("code", String(code))]),
                Metrics.Timer(
                    label: "labportal_wire_client_request_duration_seconds",
                    dimensions: [("peer", peer), ("method", method)], preferredDisplayUnit: .seconds)
            )
            if counters.count < 1000 { counters[key] = pair }
            return pair
        }
        counter.increment()
        timer.recordNanoseconds((NIODeadline.now() - start).nanoseconds)
    }
}

/// Hands each answer line to its connection right on the event loop, so that an answer wakes its caller directly
/// instead of passing through a reader task first.
final class ResponseRouting: Sendable {
    private let target = NIOLockedValueBox<WireConnection?>(nil)

    func connect(_ connection: WireConnection) { target.withLockedValue { $0 = connection } }

    func route(_ line: ByteBuffer) {
        target.withLockedValue { $0 }?.route(line)
    }

    func closeIfIdle(_ idleTimeout: TimeAmount) -> Bool {
        target.withLockedValue { $0 }?.closeIfIdle(idleTimeout) ?? false
    }
}

final class ResponseRoutingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let routing: ResponseRouting
    let idleTimeout: TimeAmount

    init(routing: ResponseRouting, idleTimeout: TimeAmount) {
        self.routing = routing
        self.idleTimeout = idleTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        routing.route(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case IdleStateHandler.IdleStateEvent.all = event, routing.closeIfIdle(idleTimeout) {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
