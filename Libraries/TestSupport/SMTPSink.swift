import Foundation
import ServerKit

/// A real SMTP server on loopback for tests: Python's aiosmtpd (the Debian package `python3-aiosmtpd`), which writes
/// every message it receives into `directory`, one file each.
public final class SMTPSink: @unchecked Sendable {
    // @unchecked: owned by one test.
    public let port: Int
    public let directory: String
    let process: Process

    static let script = """
        import asyncio, os, sys, uuid
        from aiosmtpd.controller import Controller
        port, directory = int(sys.argv[1]), sys.argv[2]
        class Sink:
            async def handle_DATA(self, server, session, envelope):
                name = os.path.join(directory, uuid.uuid4().hex + ".eml")
                with open(name + ".tmp", "wb") as f:
                    f.write(("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\\r\\n").encode())
                    f.write(envelope.original_content or envelope.content)
                os.rename(name + ".tmp", name)
                return "250 OK"
        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()
        print("ready", flush=True)
        try:
            asyncio.get_event_loop().run_forever()
        finally:
            controller.stop()
        """

    /// The Python that has aiosmtpd (Debian's, which pyenv and the like may shadow on PATH); nil if none does.
    public static var python: String? {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            let (status, _) = runProcess(candidate, ["-c", "import aiosmtpd"])
            if status == 0 { return candidate }
        }
        return nil
    }

    /// True when the run demands it (`LABPORTAL_REQUIRE_SMTP=1`, set by the test command).
    public static var required: Bool { ProcessInfo.processInfo.environment["LABPORTAL_REQUIRE_SMTP"] == "1" }

    public init(python: String, port: Int? = nil) async throws {
        if let port { self.port = port } else { self.port = try await freeLoopbackPort() }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.script, String(self.port), directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let port = self.port
        let up = await eventually(attempts: 100, interval: .milliseconds(50)) {
            Loopback.accepts(port: port)
        }
        guard up else {
            stop()
            throw CancellationError()
        }
    }

    /// The messages received so far.
    public func messages() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".eml") }.sorted().compactMap {
            try? String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8)
        }
    }

    public func stop() {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}

