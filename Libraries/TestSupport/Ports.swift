import Foundation
import NIOCore
import NIOPosix

/// A loopback port that was free a moment ago: bound, read back, closed. For tests that must restart a server on the
/// same port, or point a client at a port where nothing listens.
public func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
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
