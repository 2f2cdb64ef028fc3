import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Loads the portal file at start and again on SIGHUP. A file that fails to load leaves the portal as it was, and
/// says why in the log.
struct PortalLoader: Service {
    let path: String
    let repository: PortalRepository
    let now: @Sendable () -> Date
    let logger: Logger

    @discardableResult
    func reload(reason: String) async throws -> ApplyResult {
        let definition = try PortalDefinition.load(path: path)
        let result = try await repository.apply(definition, now: now())
        logger.info(
            result.changed ? "portal applied" : "portal unchanged",
            metadata: [
                "file": "\(path)", "reason": "\(reason)", "generation": "\(result.generation)",
                "created": "\(result.created.joined(separator: ","))",
                "stopping": "\(result.stopping.joined(separator: ","))",
            ])
        return result
    }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try await reload(reason: "SIGHUP")
            } catch {
                logger.error("portal reload failed; keeping the current portal", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
    }
}
