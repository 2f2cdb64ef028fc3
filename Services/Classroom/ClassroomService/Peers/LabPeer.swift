import Contracts
import Foundation
import ServerKit
import Wire

/// What classroom-service asks session-service about lab environments.
public struct LabPeer: Sendable {
    public var apply: @Sendable (LabsApply.Params) async throws -> LabEnvironment?
    public var status: @Sendable ([String]) async throws -> [LabEnvironment]

    public init(
        apply: @escaping @Sendable (LabsApply.Params) async throws -> LabEnvironment?,
        status: @escaping @Sendable ([String]) async throws -> [LabEnvironment]
    ) {
        self.apply = apply
        self.status = status
    }

    public static func live(_ client: WireClient) -> LabPeer {
        LabPeer(
            apply: { params in
                try await client.call(LabsApply.self, params).environment
            },
            status: { labs in
                try await client.call(LabsStatus.self, LabsStatus.Params(labs: labs)).environments
            })
    }
}
