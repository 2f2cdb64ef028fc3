import Contracts
import Foundation
import Logging
import NIOCore
import Wire

/// The wire clients of the peers a service calls, by name.
public struct Peers: Sendable {
    public let clients: [ServiceName: WireClient]
    /// Peers that must answer before the service reports ready.
    public let required: [ServiceName]

    public init(clients: [ServiceName: WireClient], required: [ServiceName]) {
        self.clients = clients
        self.required = required
    }

    public subscript(_ name: ServiceName) -> WireClient {
        guard let client = clients[name] else { preconditionFailure("peer \(name) is not configured") }
        return client
    }

    static func make(_ configuration: ServiceConfiguration, required: [ServiceName], logger: Logger) throws -> Peers {
        guard !configuration.peers.isEmpty else { return Peers(clients: [:], required: required) }
        let tls = try WireTLS.clientContext(configuration.wireTLS)
        var clients: [ServiceName: WireClient] = [:]
        for (name, endpoints) in configuration.peers {
            var clientConfiguration = WireClientConfiguration(peerName: name.rawValue, endpoints: endpoints, tls: tls)
            clientConfiguration.defaultDeadline = .nanoseconds(
                configuration.peerDeadline.components.seconds * 1_000_000_000
                    + configuration.peerDeadline.components.attoseconds / 1_000_000_000)
            clients[name] = WireClient(configuration: clientConfiguration, logger: logger)
        }
        return Peers(clients: clients, required: required)
    }

    /// Pings every required peer; returns the name of each with its problem, if any.
    public func check() async -> [String: String] {
        await withTaskGroup(of: (String, String?).self) { group in
            for name in required {
                guard let client = clients[name] else { continue }
                group.addTask {
                    do {
                        _ = try await client.call(WirePing.self, Empty(), deadline: .seconds(2))
                        return (name.rawValue, nil)
                    } catch let error as WireError {
                        return (name.rawValue, error.message)
                    } catch {
                        return (name.rawValue, "\(error)")
                    }
                }
            }
            var problems: [String: String] = [:]
            for await (name, problem) in group { if let problem { problems[name] = problem } }
            return problems
        }
    }
}
