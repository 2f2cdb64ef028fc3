import Configuration
import Contracts
import Foundation
import ServerKit
import Storage
import Testing

@Suite("Configuration: flags > LABPORTAL_ environment > YAML file > defaults")
struct ConfigurationTests {
    func load(arguments: [String] = [], environment: [String: String] = [:]) async throws -> ServiceConfiguration {
        let reader = try await ConfigurationSource.reader(
            arguments: ["catalog-service"] + arguments, environment: environment,
            defaults: ServiceConfiguration.defaults(for: .catalog, peers: [.session]))
        return try ServiceConfiguration(name: .catalog, peers: [.session], reader: reader)
    }

    func yaml(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("defaults: DESIGN §7 ports, SQLite under the home directory, peers on their default wire ports")
    func defaults() async throws {
        let configuration = try await load()
        #expect(configuration.httpPort == 8101)
        #expect(configuration.wirePort == 9101)
        #expect(configuration.wireMaxLineBytes == 1 << 20)
        #expect(configuration.database.backend == .sqlite)
        #expect(configuration.database.sqlitePath == "./.labportal/data/catalog.sqlite")
        #expect(configuration.wireTLS.certificate == "./.labportal/pki/catalog.pem")
        #expect(configuration.peers[.session]?.map(\.description) == ["127.0.0.1:9102"])
        #expect(ServiceConfiguration.defaultPorts(.report) == (8104, 9104))
    }

    @Test("each layer overrides the one below it")
    func precedence() async throws {
        let file = try yaml(
            """
            http:
              port: 7001
              host: 0.0.0.0
            wire:
              max_line_bytes: 4096
            log:
              level: debug
            """)
        let fromFile = try await load(environment: ["LABPORTAL_CONFIG": file])
        #expect(fromFile.httpPort == 7001)
        #expect(fromFile.httpHost == "0.0.0.0")
        #expect(fromFile.wireMaxLineBytes == 4096)
        #expect(fromFile.logLevel == .debug)

        let fromEnvironment = try await load(environment: [
            "LABPORTAL_CONFIG": file, "LABPORTAL_HTTP_PORT": "7002", "LABPORTAL_WIRE_MAX_LINE_BYTES": "8192",
        ])
        #expect(fromEnvironment.httpPort == 7002)
        #expect(fromEnvironment.wireMaxLineBytes == 8192)
        #expect(fromEnvironment.httpHost == "0.0.0.0", "the file still supplies what the environment does not")

        let fromFlags = try await load(
            arguments: ["--http-port", "7003", "--wire-max-line-bytes=16384", "--config", file],
            environment: ["LABPORTAL_HTTP_PORT": "7002"])
        #expect(fromFlags.httpPort == 7003)
        #expect(fromFlags.wireMaxLineBytes == 16384)
        #expect(fromFlags.logLevel == .debug)
    }

    @Test("peers list several replicas")
    func replicas() async throws {
        let configuration = try await load(environment: ["LABPORTAL_PEERS_SESSION": "10.0.0.1:9102, 10.0.0.2:9102,[::1]:9"])
        #expect(configuration.peers[.session]?.map(\.description) == ["10.0.0.1:9102", "10.0.0.2:9102", "[::1]:9"])
    }

    @Test("bad values fail at once, naming the key and the rule")
    func failures() async throws {
        let cases: [([String: String], String, String)] = [
            (["LABPORTAL_HTTP_PORT": "eighty"], "http.port", "integer"),
            (["LABPORTAL_HTTP_PORT": "70000"], "http.port", "0...65535"),
            (["LABPORTAL_DB_BACKEND": "oracle"], "db.backend", "sqlite, postgres"),
            (["LABPORTAL_DB_BACKEND": "postgres"], "db.url", "required"),
            (["LABPORTAL_LOG_LEVEL": "loud"], "log.level", "one of"),
            (["LABPORTAL_PEERS_SESSION": "nohostport"], "peers.session", "host:port"),
            (["LABPORTAL_CONFIG": "/nonexistent/labportal.yaml"], "config", "does not exist"),
        ]
        for (environment, key, rule) in cases {
            do {
                _ = try await load(environment: environment)
                Issue.record("\(environment) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.key == key)
                #expect(error.description.contains(rule), "\(error)")
                #expect(error.description.contains("LABPORTAL_"), "names the variable: \(error)")
            }
        }
    }
}
