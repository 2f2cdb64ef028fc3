import Foundation

// The portal and its workshops as catalog-service defines them, shared with session-service (which allocates sessions
// against them) and classroom-service (a Skytap template is a workshop).

/// The portal: its name and uid, public URL, labels, session limits and default index URL.
public struct PortalSettings: Sendable, Equatable, Codable {
    public var name: String
    /// Stable across restarts and reloads.
    public var uid: String
    public var url: String
    public var labels: [String: String]
    public var sessions: SessionLimits
    /// Where browsers go back to when no index URL is known.
    public var indexURL: String

    public init(
        name: String, uid: String, url: String, labels: [String: String], sessions: SessionLimits, indexURL: String
    ) {
        self.name = name
        self.uid = uid
        self.url = url
        self.labels = labels
        self.sessions = sessions
        self.indexURL = indexURL
    }
}

/// Caps on sessions; 0 means no limit.
public struct SessionLimits: Sendable, Equatable, Codable {
    /// Sessions across the whole portal.
    public var maximum: Int
    /// Sessions one registered user may hold at once.
    public var registered: Int
    /// Sessions one anonymous user may hold at once.
    public var anonymous: Int

    public init(maximum: Int, registered: Int, anonymous: Int) {
        self.maximum = maximum
        self.registered = registered
        self.anonymous = anonymous
    }
}

/// A workshop (a Skytap template): what it is, where its content comes from and how a session of it runs.
public struct WorkshopDefinition: Sendable, Equatable, Codable {
    public var name: String
    public var title: String
    public var description: String
    public var vendor: String
    public var authors: [String]
    public var difficulty: String
    /// As written in the portal file (`"30m"`); shown as is in the catalog.
    public var duration: String
    public var tags: [String]
    public var logo: String
    public var url: String
    public var labels: [String: String]
    public var content: WorkshopContent
    /// Run once per session with `PORT`, `SESSION_NAME` and `WORKSPACE` set (the `local` provisioner).
    public var command: [String]?
    /// Template VMs, for the Skytap side.
    public var vms: [WorkshopVM]
    public var region: String
    /// Request parameters with their defaults; a session request may override these names only.
    public var parameters: [RequestParameter]

    public init(
        name: String, title: String, description: String, vendor: String, authors: [String], difficulty: String,
        duration: String, tags: [String], logo: String, url: String, labels: [String: String],
        content: WorkshopContent, command: [String]?, vms: [WorkshopVM], region: String, parameters: [RequestParameter]
    ) {
        self.name = name
        self.title = title
        self.description = description
        self.vendor = vendor
        self.authors = authors
        self.difficulty = difficulty
        self.duration = duration
        self.tags = tags
        self.logo = logo
        self.url = url
        self.labels = labels
        self.content = content
        self.command = command
        self.vms = vms
        self.region = region
        self.parameters = parameters
    }
}

public struct WorkshopContent: Sendable, Equatable, Codable {
    public var image: String
    public var files: String

    public init(image: String, files: String) {
        self.image = image
        self.files = files
    }
}

public struct WorkshopVM: Sendable, Equatable, Codable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

public struct RequestParameter: Sendable, Equatable, Codable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// How an environment offers its workshop. Times are in seconds.
public struct EnvironmentSettings: Sendable, Equatable, Codable {
    public var workshop: String
    public var capacity: Int
    public var reserved: Int
    public var initial: Int
    /// Seconds a session lives after activation; nil for no expiry.
    public var expires: Int?
    /// Seconds after activation beyond which no extension goes; never less than `expires`.
    public var deadline: Int?
    /// Seconds added by one extension; 0 means the Educates threshold rule.
    public var overtime: Int
    /// Seconds of inactivity after which a session counts as orphaned; 0 is off.
    public var orphaned: Int
    public var labels: [String: String]

    public init(
        workshop: String, capacity: Int, reserved: Int, initial: Int, expires: Int?, deadline: Int?, overtime: Int,
        orphaned: Int, labels: [String: String]
    ) {
        self.workshop = workshop
        self.capacity = capacity
        self.reserved = reserved
        self.initial = initial
        self.expires = expires
        self.deadline = deadline
        self.overtime = overtime
        self.orphaned = orphaned
        self.labels = labels
    }
}

/// The state of an environment: RUNNING takes new sessions; STOPPING (removed from the portal file) keeps its
/// sessions, takes no new ones, and is deleted when its last session ends.
public enum EnvironmentState: String, Sendable, Codable, CaseIterable {
    case running = "RUNNING"
    case stopping = "STOPPING"
}

/// An environment as the catalog holds it. For a STOPPING one, capacity, reserved and initial are 0.
public struct CatalogEnvironment: Sendable, Equatable, Codable {
    public var name: String
    public var position: Int
    public var state: EnvironmentState
    public var workshop: WorkshopDefinition
    public var settings: EnvironmentSettings

    public init(
        name: String, position: Int, state: EnvironmentState, workshop: WorkshopDefinition,
        settings: EnvironmentSettings
    ) {
        self.name = name
        self.position = position
        self.state = state
        self.workshop = workshop
        self.settings = settings
    }
}

/// `catalog.portal`: the whole portal as last applied. Callers cache it by `generation`.
public enum CatalogPortal {
    public struct Snapshot: Sendable, Equatable, Codable {
        public var portal: PortalSettings
        public var generation: Int
        public var environments: [CatalogEnvironment]

        public init(portal: PortalSettings, generation: Int, environments: [CatalogEnvironment]) {
            self.portal = portal
            self.generation = generation
            self.environments = environments
        }

        public func environment(named name: String) -> CatalogEnvironment? {
            environments.first { $0.name == name }
        }
    }
}
