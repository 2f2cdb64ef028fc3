import Foundation
import Logging

/// Hands each action to an operator's executable: `<executable> create|start|stop|delete|status`, with the
/// session's JSON (`ProvisionRequest`) on stdin. `create` and `start` print `{"url": …, "handle": …}` on stdout
/// (`create` with `"start": false` makes a class's lab without running it). A non-zero exit is a failure,
/// and stderr becomes the session's `error_message`. `status` exits 0 while the lab exists.
public struct ExecProvisioner: Provisioner {
    public var executable: String
    public var timeout: Duration
    let logger: Logger

    public init(executable: String, timeout: Duration = .seconds(120), logger: Logger) {
        self.executable = executable
        self.timeout = timeout
        self.logger = logger
    }

    public func create(_ request: ProvisionRequest) async throws -> ProvisionResult {
        try await made(request, action: "create")
    }

    public func start(_ request: ProvisionRequest) async throws -> ProvisionResult {
        try await made(request, action: "start")
    }

    public func stop(_ request: ProvisionRequest) async throws {
        var request = request
        request.action = "stop"
        _ = try await run(request)
    }

    private func made(_ request: ProvisionRequest, action: String) async throws -> ProvisionResult {
        var request = request
        request.action = action
        let output = try await run(request)
        do {
            return try JSONDecoder().decode(ProvisionResult.self, from: output)
        } catch {
            throw ProvisionError(
                "\(executable) \(action) printed no JSON with a \"url\": \(String(decoding: output.prefix(300), as: UTF8.self))")
        }
    }

    public func delete(_ request: ProvisionRequest) async throws {
        var request = request
        request.action = "delete"
        _ = try await run(request)
    }

    public func isAlive(_ request: ProvisionRequest) async -> Bool {
        var request = request
        request.action = "status"
        return (try? await run(request)) != nil
    }

    /// Runs the executable once; answers its stdout, or throws with its stderr.
    func run(_ request: ProvisionRequest) async throws -> Data {
        let input = try JSONEncoder().encode(request)
        // A launch can fail for a moment (ETXTBSY while another thread's fork still holds the file open for
        // writing, right after the operator replaced it): three tries before failing.
        var attempt = 0
        var launched: ChildProcess?
        while launched == nil {
            do {
                launched = try ChildProcess.spawn(executable, arguments: [request.action])
            } catch {
                attempt += 1
                if attempt >= 3 { throw ProvisionError("cannot run \(executable): \(error)") }
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
        let child = launched!
        async let out = ChildProcess.readAll(child.output)
        async let err = ChildProcess.readAll(child.errors)
        child.send(input, limit: timeout)
        guard let status = await child.exitStatus(within: timeout) else {
            await child.stop()
            _ = await (out, err)
            throw ProvisionError("\(executable) \(request.action) did not finish within \(timeout)")
        }
        let (output, errors) = await (out, err)
        guard status == 0 else {
            let message = String(decoding: errors.suffix(2000), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw ProvisionError(
                message.isEmpty ? "\(executable) \(request.action) exited with status \(status)" : message)
        }
        return output
    }
}
