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

/// `sessions.page`: workshop sessions for the sessions report, keyset-paged (oldest first), with the filters of the
/// report (`query=state:…,environment:…,user:…`, `created_at=<range>`).
public enum SessionsPage {
    public struct Filters: Sendable, Equatable, Codable {
        public var query: String?
        public var createdAt: String?

        public init(query: String? = nil, createdAt: String? = nil) {
            self.query = query
            self.createdAt = createdAt
        }

        enum CodingKeys: String, CodingKey {
            case query
            case createdAt = "created_at"
        }
    }
}

/// A workshop session as the sessions report lists it.
public struct SessionItem: Sendable, Equatable, Codable {
    public var name: String
    public var environment: String
    public var workshop: String
    public var state: SessionState
    public var user: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var expiresAt: Date?
    public var stoppedAt: Date?
    public var url: String?
    public var errorMessage: String?

    public init(
        name: String, environment: String, workshop: String, state: SessionState, user: String?, createdAt: Date,
        startedAt: Date?, expiresAt: Date?, stoppedAt: Date?, url: String?, errorMessage: String?
    ) {
        self.name = name
        self.environment = environment
        self.workshop = workshop
        self.state = state
        self.user = user
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.expiresAt = expiresAt
        self.stoppedAt = stoppedAt
        self.url = url
        self.errorMessage = errorMessage
    }
}
