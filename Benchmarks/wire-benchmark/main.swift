// Wire benchmark: JSON-RPC over mutual TLS against a raw TLS line echo, measured in the same run on loopback.
//
//   swift run -c release wire-benchmark [--calls N] [--seconds S] [--pki DIR]
//
// Prints p50/p99 round-trip latency with one call outstanding, and throughput with 64 calls in flight on one
// connection, for both, and the ratio of the two throughputs.
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import Wire

struct Small: Codable, Sendable {
    var value: Int
    var text: String
}

func argument(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

let latencyCalls = Int(argument("--calls") ?? "") ?? 20_000
let throughputSeconds = Double(argument("--seconds") ?? "") ?? 5
let window = 64
let logger: Logger = {
    var logger = Logger(label: "wire-benchmark")
    logger.logLevel = .error
    return logger
}()

let pkiDirectory = argument("--pki") ?? {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wire-benchmark-pki").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "deploy/pki/dev-pki")
    process.arguments = [directory]
    try! process.run()
    process.waitUntilExit()
    precondition(process.terminationStatus == 0, "run from the repository root, or pass --pki DIR")
    return directory
}()

func files(_ name: String) -> WireTLSFiles {
    WireTLSFiles(
        certificate: "\(pkiDirectory)/\(name).pem", privateKey: "\(pkiDirectory)/\(name).key",
        trustRoots: "\(pkiDirectory)/ca.pem")
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func report(_ name: String, latencies: [Double], throughput: Double) {
    let sorted = latencies.sorted()
    print(
        String(
            format: "%-28@ p50 %7.1f µs   p99 %7.1f µs   %9.0f calls/s (64 in flight)", name as NSString,
            percentile(sorted, 0.50) * 1e6, percentile(sorted, 0.99) * 1e6, throughput))
}

// MARK: - JSON-RPC over the Wire library

func benchmarkWire() async throws -> ([Double], Double) {
    var router = WireRouter()
    router.register("bench.echo", allowed: .any) { (params: Small, _) in params }
    let server = WireServer(
        configuration: WireServerConfiguration(
            host: "127.0.0.1", port: 0, tls: try WireTLS.serverContext(files("catalog")), serviceName: "catalog",
            version: "bench"),
        router: router, logger: logger)
    let serverTask = Task { try await server.run() }
    let port = try await server.localAddress().port!
    let client = WireClient(
        configuration: WireClientConfiguration(
            peerName: "catalog", endpoints: [WireEndpoint(host: "127.0.0.1", port: port)],
            tls: try WireTLS.clientContext(files("session"))),
        logger: logger)
    let params = Small(value: 1, text: "hello")
    for _ in 0..<2000 { let _: Small = try await client.call("bench.echo", params) }  // warm up

    var latencies: [Double] = []
    latencies.reserveCapacity(latencyCalls)
    for _ in 0..<latencyCalls {
        let start = ContinuousClock.now
        let _: Small = try await client.call("bench.echo", params)
        let elapsed = ContinuousClock.now - start
        latencies.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
    }

    let completed = NIOLockedValueBox(0)
    let end = ContinuousClock.now + .milliseconds(Int(throughputSeconds * 1000))
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<window {
            group.addTask {
                var local = 0
                while ContinuousClock.now < end {
                    let _: Small = try await client.call("bench.echo", params)
                    local += 1
                }
                completed.withLockedValue { $0 += local }
            }
        }
        try await group.waitForAll()
    }
    let seconds = (ContinuousClock.now - start) / .seconds(1)
    await client.shutdown()
    serverTask.cancel()
    _ = try? await serverTask.value
    return (latencies, Double(completed.withLockedValue { $0 }) / seconds)
}

// MARK: - Raw TLS line echo (baseline)

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var line = unwrapInboundIn(data)
        line.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(line), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Keeps `window` lines outstanding and counts answers; with a window of 1 it records each round trip.
final class PumpHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let line: ByteBuffer
    let window: Int
    let total: Int
    let deadline: NIODeadline?
    let done: EventLoopPromise<(Int, [Double])>
    var sent = 0
    var received = 0
    var sentAt: [NIODeadline] = []
    var latencies: [Double] = []

    init(line: String, window: Int, total: Int, deadline: NIODeadline?, done: EventLoopPromise<(Int, [Double])>) {
        var buffer = ByteBuffer(string: line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        self.line = buffer
        self.window = window
        self.total = total
        self.deadline = deadline
        self.done = done
    }

    func start(context: ChannelHandlerContext) {
        for _ in 0..<window { send(context: context) }
        context.flush()
    }

    func send(context: ChannelHandlerContext) {
        sent += 1
        if window == 1 { sentAt.append(.now()) }
        context.write(wrapOutboundOut(line), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += 1
        if window == 1 {
            latencies.append(Double((NIODeadline.now() - sentAt[received - 1]).nanoseconds) / 1e9)
        }
        let expired = deadline.map { NIODeadline.now() >= $0 } ?? false
        if received >= total || (expired && received == sent) {
            done.succeed((received, latencies))
            return
        }
        if !expired && sent < total { send(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

func benchmarkRawEcho() async throws -> ([Double], Double) {
    let serverContext = try WireTLS.serverContext(files("catalog"))
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(NIOSSLServerHandler(context: serverContext))
                try sync.addHandler(ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 1 << 20))
                try sync.addHandler(EchoHandler())
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let port = server.localAddress!.port!
    let clientContext = try WireTLS.clientContext(files("session"))
    let line = #"{"jsonrpc":"2.0","id":1,"method":"bench.echo","params":{"value":1,"text":"hello"}}"#

    func run(window: Int, total: Int, deadline: NIODeadline?) async throws -> (Int, [Double]) {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let done = eventLoop.makePromise(of: (Int, [Double]).self)
        let pump = PumpHandler(line: line, window: window, total: total, deadline: deadline, done: done)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: clientContext, serverHostname: "catalog"))
                    try sync.addHandler(ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 1 << 20))
                    try sync.addHandler(pump)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await eventLoop.submit {
            let context = try channel.pipeline.syncOperations.context(handler: pump)
            pump.start(context: context)
        }.get()
        let result = try await done.futureResult.get()
        try await channel.close()
        return result
    }

    _ = try await run(window: 1, total: 2000, deadline: nil)  // warm up
    let (_, latencies) = try await run(window: 1, total: latencyCalls, deadline: nil)
    let start = NIODeadline.now()
    let (count, _) = try await run(
        window: window, total: Int.max,
        deadline: start + .milliseconds(Int64(throughputSeconds * 1000)))
    let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
    try await server.close()
    return (latencies, Double(count) / seconds)
}

// MARK: - Run

let rounds = Int(argument("--rounds") ?? "") ?? 3
print("wire-benchmark: loopback, TLS 1.3 with mutual authentication, \(ProcessInfo.processInfo.activeProcessorCount) cores")
print("latency: \(latencyCalls) sequential calls; throughput: \(window) in flight on one connection for \(throughputSeconds) s")
print("\(rounds) rounds, raw and wire interleaved; the summary is the median round")
var rawRounds: [([Double], Double)] = []
var wireRounds: [([Double], Double)] = []
for round in 1...rounds {
    let raw = try await benchmarkRawEcho()
    report("round \(round) raw TLS line echo", latencies: raw.0, throughput: raw.1)
    let wire = try await benchmarkWire()
    report("round \(round) JSON-RPC over Wire", latencies: wire.0, throughput: wire.1)
    rawRounds.append(raw)
    wireRounds.append(wire)
}
func median(_ results: [([Double], Double)]) -> ([Double], Double) {
    results.sorted { $0.1 < $1.1 }[results.count / 2]
}
let (rawLatencies, rawThroughput) = median(rawRounds)
let (wireLatencies, wireThroughput) = median(wireRounds)
print("--- median")
report("raw TLS line echo (baseline)", latencies: rawLatencies, throughput: rawThroughput)
report("JSON-RPC over Wire", latencies: wireLatencies, throughput: wireThroughput)
print(String(format: "Wire throughput is %.0f%% of the raw echo (target ≥ 40%%, and ≥ 30000 calls/s)",
             wireThroughput / rawThroughput * 100))
