import Contracts
import Foundation

/// What a provisioner is told about a session. It is also the JSON the `exec` provisioner gets on stdin.
public struct ProvisionRequest: Sendable, Codable, Equatable {
    public var action: String
    public var session: String
    public var environment: String
    public var workshop: String
    public var owner: String?
    public var parameters: [RequestParameter]
    /// The workshop's per-session command, if any.
    public var command: [String]?
    /// What `create` answered before (the local provisioner's pid and port).
    public var handle: String?
    /// For `create`: whether to run the lab once it is made. False for a class's lab that is provisioned ahead of
    /// its run time (nil means true).
    public var start: Bool?
    /// The session's password (what `config/` answers), for the lab to protect itself with; nil for classroom labs.
    public var password: String?

    public init(
        action: String, session: String, environment: String, workshop: String, owner: String?,
        parameters: [RequestParameter], command: [String]?, handle: String?
    ) {
        self.action = action
        self.session = session
        self.environment = environment
        self.workshop = workshop
        self.owner = owner
        self.parameters = parameters
        self.command = command
        self.handle = handle
    }

    /// Whether `create` should also run the lab.
    public var runs: Bool { start ?? true }
}

/// What `create` made: where the lab is, and the provisioner's own reference to it.
public struct ProvisionResult: Sendable, Equatable, Codable {
    public var url: String
    public var handle: String?

    public init(url: String, handle: String? = nil) {
        self.url = url
        self.handle = handle
    }
}

/// A failure a person can act on; it becomes the session's `error_message`.
public struct ProvisionError: Error, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Makes and removes lab environments. `local` runs a process per session; `exec` hands each action to an
/// operator's executable (Kubernetes, VMs, a cloud).
public protocol Provisioner: Sendable {
    /// Makes the lab of a session and returns once it is ready (running, unless `request.start` is false).
    func create(_ request: ProvisionRequest) async throws -> ProvisionResult
    /// Runs a lab that was made before and is stopped; returns once it is ready.
    func start(_ request: ProvisionRequest) async throws -> ProvisionResult
    /// Stops a running lab and keeps it, so that `start` can run it again.
    func stop(_ request: ProvisionRequest) async throws
    /// Removes it. Removing something already gone succeeds.
    func delete(_ request: ProvisionRequest) async throws
    /// Whether a lab made before (perhaps by an earlier run of this process) is still there.
    func isAlive(_ request: ProvisionRequest) async -> Bool
}
