import Contracts
import Foundation

/// What applying a portal file does to the catalog's environments (the portal's reload rules), decided with no
/// database: the repository reads the running environments, asks for the plan, and writes it.
/// - an environment whose workshop is still offered keeps its name and takes the new position and settings;
/// - a newly offered workshop gets a new environment, named `<portal>-wNN` from the portal's counter (names are
///   never reused);
/// - an environment whose workshop is no longer offered goes to STOPPING (capacity 0); its sessions live on.
struct PortalReload: Equatable, Sendable {
    struct Placement: Equatable, Sendable {
        var name: String
        var position: Int
        var environment: PortalDefinition.Environment
    }

    var kept: [Placement] = []
    var created: [Placement] = []
    /// Running environments to stop, by name, sorted.
    var stopping: [String] = []
    /// The portal's environment counter after the reload.
    var nextEnvironment: Int

    /// `running`: the RUNNING environments' names by workshop; `nextEnvironment`: the portal's counter.
    static func plan(_ definition: PortalDefinition, running: [String: String], nextEnvironment: Int) -> PortalReload {
        var plan = PortalReload(nextEnvironment: nextEnvironment)
        var kept: Set<String> = []
        for (position, environment) in definition.environments.enumerated() {
            if let name = running[environment.workshop] {
                kept.insert(name)
                plan.kept.append(Placement(name: name, position: position, environment: environment))
            } else {
                let name = "\(definition.portal.name)-w\(String(format: "%02d", plan.nextEnvironment))"
                plan.nextEnvironment += 1
                plan.created.append(Placement(name: name, position: position, environment: environment))
            }
        }
        plan.stopping = running.values.sorted().filter { !kept.contains($0) }
        return plan
    }

    /// An environment as the catalog answers it: a STOPPING one takes no sessions (capacity, reserved and initial 0).
    static func effectiveSettings(_ settings: PortalDefinition.Environment, state: EnvironmentState)
        -> PortalDefinition.Environment
    {
        guard state == .stopping else { return settings }
        var settings = settings
        settings.capacity = 0
        settings.reserved = 0
        settings.initial = 0
        return settings
    }

}
