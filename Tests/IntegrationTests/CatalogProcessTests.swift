import Foundation
import TestSupport
import Testing

@Suite("catalog-service process: the portal file", .serialized)
struct CatalogProcessTests {
    @Test("the portal file is applied at start, and again on SIGHUP; a broken file keeps the old portal")
    func reloadOnSIGHUP() async throws {
        let original = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/local/portal.yaml"), encoding: .utf8)
        try await LocalStack.with { stack in
            let file = "\(stack.home)/portal.yaml"
            try original.write(toFile: file, atomically: true, encoding: .utf8)
            try stack.start("catalog", environment: ["LABPORTAL_PORTAL_FILE": file])
            let started = await eventually { stack.logTail("catalog", lines: 200).contains("\"generation\":\"1\"") }
            #expect(started, "applied at start:\n\(stack.logTail("catalog"))")

            try original.replacingOccurrences(of: "capacity: 10", with: "capacity: 12")
                .write(toFile: file, atomically: true, encoding: .utf8)
            stack.signal("catalog", SIGHUP)
            let reloaded = await eventually { stack.logTail("catalog", lines: 200).contains("\"generation\":\"2\"") }
            #expect(reloaded, "applied on SIGHUP:\n\(stack.logTail("catalog"))")

            try "portal: [broken".write(toFile: file, atomically: true, encoding: .utf8)
            stack.signal("catalog", SIGHUP)
            let refused = await eventually { stack.logTail("catalog", lines: 200).contains("portal reload failed") }
            #expect(refused)
            #expect(stack.isRunning("catalog"), "a bad file does not stop the service")
            #expect(await stack.stop("catalog") == 0)
        }
    }

    @Test("a missing portal file stops catalog-service at start with a message naming it")
    func missingFile() async throws {
        let stack = try await LocalStack()
        let result = runProcess(
            try stack.executable("catalog"), [],
            environment: stack.environment(for: "catalog", overrides: ["LABPORTAL_PORTAL_FILE": "/nonexistent/portal.yaml"]))
        #expect(result.status != 0)
        #expect(result.output.contains("/nonexistent/portal.yaml"), "\(result.output)")
    }
}
