import Configuration
import Contracts
import Foundation
import Logging

/// What every service's `main` does: read the configuration once (failing fast with a clear message), set up
/// logging and metrics, open the database, build the peers, then hand over to the service.
public enum ServiceLauncher {
    public static func main(
        spec: ServiceSpec,
        start: @Sendable (ServiceRuntime, ConfigReader) async throws -> Void
    ) async {
        let configuration: ServiceConfiguration
        let reader: ConfigReader
        do {
            var defaults = ServiceConfiguration.defaults(for: spec.name, peers: spec.peers)
            for (key, value) in spec.defaults { defaults[key] = .init(.string(value), isSecret: false) }
            reader = try await ConfigurationSource.reader(defaults: defaults)
            configuration = try ServiceConfiguration(name: spec.name, peers: spec.peers, reader: reader)
        } catch {
            FileHandle.standardError.write(Data("\(spec.name.executableName): \(error)\n".utf8))
            exit(78)  // EX_CONFIG
        }
        LoggingSetup.bootstrap(
            service: spec.name.executableName, format: configuration.logFormat, level: configuration.logLevel,
            replica: configuration.replica)
        _ = MetricsSetup.registry
        let logger = Logger(label: spec.name.executableName)
        do {
            let runtime = try await ServiceRuntime.make(spec: spec, configuration: configuration, logger: logger)
            try await start(runtime, reader)
        } catch {
            logger.critical("exiting after a fatal error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
