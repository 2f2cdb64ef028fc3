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

/// Runs a program to completion and returns its exit status and combined output.
@discardableResult
public func runProcess(_ path: String, _ arguments: [String], environment: [String: String]? = nil)
    -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    // Output goes to a file, not a pipe: a daemon (nginx) keeps a pipe open long after the command returns.
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).out").path
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    guard let output = FileHandle(forWritingAtPath: outputPath) else { return (-1, "cannot create \(outputPath)") }
    process.standardOutput = output
    process.standardError = output
    do {
        try process.run()
    } catch {
        return (-1, "cannot run \(path): \(error)")
    }
    process.waitUntilExit()
    try? output.close()
    let data = FileManager.default.contents(atPath: outputPath) ?? Data()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
