import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import TestSupport
import Testing
import Wire

struct Echo: Codable, Sendable, Equatable {
    var value: Int
    var text: String?
}

struct SleepParams: Codable, Sendable {
    var ms: Int
}

/// Records what the handlers saw, for assertions.
final class Probe: Sendable {
    let completions = NIOLockedValueBox<[Int]>([])
    let notifications = NIOLockedValueBox<[Int]>([])
}

let testLogger: Logger = {
    var logger = Logger(label: "wire-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["LABPORTAL_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
    return logger
}()

/// The methods every wire test server offers.
func makeTestRouter(probe: Probe, gate: Gate? = nil) -> WireRouter {
    var router = WireRouter()
    router.register("test.echo", allowed: .any) { (params: Echo, _) in params }
    router.register("test.requestID", allowed: .any) { (_: Echo, context) -> Echo in
        Echo(value: 0, text: context.meta.requestID ?? "none")
    }
    router.register("test.reversed", allowed: .any) { (params: Echo, _) -> Echo in
        // Later requests finish first: answers come back out of order.
        try await Task.sleep(for: .milliseconds(max(0, 1000 - params.value) / 50))
        probe.completions.withLockedValue { $0.append(params.value) }
        return params
    }
    router.register("test.sleep", allowed: .any) { (params: SleepParams, _) -> Echo in
        try await Task.sleep(for: .milliseconds(params.ms))
        return Echo(value: params.ms)
    }
    router.register("test.reportOnly", allowed: .only(["report"])) { (params: Echo, _) in params }
    router.register("test.notify", allowed: .any) { (params: Echo, _) -> Echo in
        probe.notifications.withLockedValue { $0.append(params.value) }
        return params
    }
    // Writes its result by hand: a JSON array with the text in it, braces and quotes included.
    router.registerRaw("test.raw", allowed: .any) { (params: Echo, _) -> [UInt8] in
        if params.value < 0 { throw WireError.invalidParams("value must not be negative") }
        let text = String(decoding: try JSONEncoder().encode(params.text ?? ""), as: UTF8.self)
        return Array(#"[\#(params.value),\#(text),{"nested":["}",{"a":"]"}]}]"#.utf8)
    }
    router.register("test.gated", allowed: .any) { (params: Echo, _) -> Echo in
        await gate?.arriveAndWait()
        return params
    }
    return router
}

/// Holds handlers until opened; counts arrivals.
final class Gate: Sendable {
    private struct State {
        var arrived = 0
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    var arrived: Int { state.withLockedValue { $0.arrived } }

    func arriveAndWait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let go = state.withLockedValue { state in
                state.arrived += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if go { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLockedValue { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A running wire server on a loopback port, in its own service group.
struct RunningServer {
    let server: WireServer
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let port: Int

    static func start(
        name: String = "catalog", port: Int = 0, probe: Probe = Probe(), gate: Gate? = nil,
        configure: (inout WireServerConfiguration) -> Void = { _ in }
    ) async throws -> RunningServer {
        var configuration = WireServerConfiguration(
            host: "127.0.0.1", port: port, tls: try TestPKI.shared.serverContext(name), serviceName: name,
            version: "test")
        configure(&configuration)
        let server = WireServer(
            configuration: configuration, router: makeTestRouter(probe: probe, gate: gate), logger: testLogger)
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: testLogger)
        let task = Task { try await group.run() }
        let address = try await server.localAddress()
        return RunningServer(server: server, group: group, task: task, port: address.port!)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

func makeClient(
    peer: String = "catalog", ports: [Int], as caller: String = "session",
    configure: (inout WireClientConfiguration) -> Void = { _ in }
) throws -> WireClient {
    var configuration = WireClientConfiguration(
        peerName: peer, endpoints: ports.map { WireEndpoint(host: "127.0.0.1", port: $0) },
        tls: try TestPKI.shared.clientContext(caller))
    configure(&configuration)
    return WireClient(configuration: configuration, logger: testLogger)
}

func rawClient(port: Int, as caller: String = "session") async throws -> RawLineClient {
    try await RawLineClient.connect(port: port, tls: try TestPKI.shared.clientContext(caller), serverName: "catalog")
}

func errorCode(_ object: [String: Any]?) -> Int? {
    (object?["error"] as? [String: Any])?["code"] as? Int
}

/// A loopback listener with a backlog of 0 whose accept queue is filled and never drained: a further connect waits
/// for an answer to its SYN that does not come.
final class FullListener {
    let port: Int
    private var descriptors: [Int32] = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EMFILE) }
        descriptors.append(listener)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 0) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { Glibc.close(listener); throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: address.sin_port))
        // Fill the accept queue (backlog 0 holds one) with connections that are never accepted.
        for _ in 0..<3 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            descriptors.append(filler)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) }
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
    }

    func close() {
        for descriptor in descriptors { Glibc.close(descriptor) }
        descriptors = []
    }
}
