import Foundation

/// The states of a workshop session (a lab environment).
public enum SessionState: String, Sendable, Codable, CaseIterable {
    /// Being provisioned.
    case starting = "STARTING"
    /// A ready spare, or allocated and waiting to be activated.
    case waiting = "WAITING"
    /// Activated (or started).
    case running = "RUNNING"
    /// Terminated or expired; being torn down.
    case stopping = "STOPPING"
    /// Gone.
    case stopped = "STOPPED"
}

/// A session as the catalog lists it with `sessions=true`.
public struct SessionSummary: Sendable, Equatable, Codable {
    public var name: String
    public var state: SessionState
    public var namespace: String
    public var user: String
    public var started: Date?
    public var expires: Date?
    public var countdown: Int?
    public var extendable: Bool?

    public init(
        name: String, state: SessionState, namespace: String, user: String, started: Date?, expires: Date?,
        countdown: Int?, extendable: Bool?
    ) {
        self.name = name
        self.state = state
        self.namespace = namespace
        self.user = user
        self.started = started
        self.expires = expires
        self.countdown = countdown
        self.extendable = extendable
    }
}

/// `sessions.overview`: the session counts of every environment and of the portal, and optionally the allocated
/// sessions themselves. catalog-service calls it for its listings and to know when a STOPPING environment is empty.
public enum SessionsOverview {
    public static let method = "sessions.overview"

    public struct Params: Sendable, Equatable, Codable {
        public var includeSessions: Bool

        public init(includeSessions: Bool) { self.includeSessions = includeSessions }
    }

    public struct EnvironmentCounts: Sendable, Equatable, Codable {
        /// Sessions with an owner that are not STOPPED (pending and STOPPING included).
        public var allocated: Int
        /// Unowned WAITING sessions: ready spares.
        public var available: Int
        /// Sessions that are not STOPPED, spares included.
        public var active: Int
        /// The allocated sessions, when asked for.
        public var sessions: [SessionSummary]?

        public init(allocated: Int, available: Int, active: Int, sessions: [SessionSummary]? = nil) {
            self.allocated = allocated
            self.available = available
            self.active = active
            self.sessions = sessions
        }
    }

    public struct Result: Sendable, Equatable, Codable {
        /// Allocated sessions across the portal.
        public var allocated: Int
        /// By environment name; an environment with no sessions may be missing.
        public var environments: [String: EnvironmentCounts]

        public init(allocated: Int, environments: [String: EnvironmentCounts]) {
            self.allocated = allocated
            self.environments = environments
        }
    }
}
