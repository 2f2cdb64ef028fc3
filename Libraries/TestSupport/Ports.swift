import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A loopback port that was free a moment ago, for a server a test starts later (a service process, a restart on the
/// same port) or for a client to find nothing on. Picked below the kernel's ephemeral range (32768–60999 here), so
/// that no socket bound to port 0 meanwhile — a lab process, an outgoing connection — can take it before the test's
/// server binds it; and never the same one twice in this process.
public func freeLoopbackPort() async throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard PortLedger.claim(port) else { continue }
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port).get()
            try await channel.close()
            return port
        } catch {
            continue  // in use: try another
        }
    }
    throw StackError.setup("no free loopback port in 20000–32000")
}

/// The ports this process has handed out.
enum PortLedger {
    private static let claimed = Mutex(Set<Int>())

    static func claim(_ port: Int) -> Bool { claimed.withLock { $0.insert(port).inserted } }
}

/// Polls `condition` until it holds, at most `attempts` times `interval` apart. For waiting on another process.
public func eventually(
    attempts: Int = 100, interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    for _ in 0..<attempts {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return false
}

/// A `LABPORTAL_PORT_BASE` for `deploy/local/up` whose ports (base+1…base+`span`, the same 1000 above, and base+1900
/// for a managed PostgreSQL) are free now and handed out to nothing else in this process.
public func freePortBase(span: Int = 40) async throws -> Int {
    for _ in 0..<100 {
        let base = Int.random(in: 200..<280) * 100
        let ports = Array(base + 1...base + span) + Array(base + 1001...base + 1000 + span) + [base + 1900]
        guard ports.allSatisfy({ PortLedger.claim($0) }) else { continue }
        var free = true
        for port in ports {
            do {
                let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: "127.0.0.1", port: port).get()
                try await channel.close()
            } catch {
                free = false
                break
            }
        }
        if free { return base }
    }
    throw StackError.setup("no free block of ports for a replica stack")
}
