import Foundation
import NIOSSL
import Wire

/// The repository's root, found from this file's path.
public let repositoryRoot: URL = {
    URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Libraries
        .deletingLastPathComponent()
}()

/// A development PKI made by `deploy/pki/dev-pki` in a temporary directory, once per test process.
public struct TestPKI: Sendable {
    public let directory: String

    /// The deployment's CA and its identities.
    public static let shared: TestPKI = make(label: "main")
    /// A second, unrelated CA: its certificates must be refused by servers of `shared`.
    public static let foreign: TestPKI = make(label: "foreign")

    static func make(label: String) -> TestPKI {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("labportal-pki-\(label)-\(ProcessInfo.processInfo.processIdentifier)").path
        let script = repositoryRoot.appendingPathComponent("deploy/pki/dev-pki").path
        let result = runProcess(script, [directory, "--force"])
        precondition(result.status == 0, "dev-pki failed: \(result.output)")
        return TestPKI(directory: directory)
    }

    public var caPath: String { "\(directory)/ca.pem" }

    public func files(for name: String) -> WireTLSFiles {
        WireTLSFiles(certificate: "\(directory)/\(name).pem", privateKey: "\(directory)/\(name).key", trustRoots: caPath)
    }

    public func serverContext(_ name: String) throws -> NIOSSLContext { try WireTLS.serverContext(files(for: name)) }

    public func clientContext(_ name: String) throws -> NIOSSLContext { try WireTLS.clientContext(files(for: name)) }

    /// A client certificate of this PKI that trusts `other`'s servers (to prove a foreign client is refused).
    public func clientContext(_ name: String, trusting other: TestPKI) throws -> NIOSSLContext {
        var files = files(for: name)
        files.trustRoots = other.caPath
        return try WireTLS.clientContext(files)
    }
}
