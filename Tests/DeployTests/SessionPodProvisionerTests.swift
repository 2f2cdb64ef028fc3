import Foundation
import TestSupport
import Testing

/// deploy/kubernetes/provisioner/session-pod, run as session-service's exec provisioner runs it, against a stand-in
/// kubectl that records what it is asked and answers like a cluster.
@Suite("The Kubernetes lab provisioner script")
struct SessionPodProvisionerTests {
    static let script = repositoryRoot.appendingPathComponent("deploy/kubernetes/provisioner/session-pod").path

    /// jq is what the script parses JSON with; deploy/test/run installs it and requires these tests to run.
    static var available: Bool {
        let present = FileManager.default.isExecutableFile(atPath: "/usr/bin/jq")
        #expect(present || ProcessInfo.processInfo.environment["LABPORTAL_REQUIRE_JQ"] != "1", "jq is required in this run")
        return present
    }

    /// A directory with the stand-in kubectl, its log and an images file.
    struct Cluster {
        let directory: String
        var log: String { "\(directory)/kubectl.log" }

        init(phase: String = "Running") throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("session-pod-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let kubectl = """
                #!/bin/sh
                # Records each call (arguments, then stdin for apply) and answers like a cluster.
                echo "ARGS $*" >> "\(directory)/kubectl.log"
                case "$1" in
                  apply) cat >> "\(directory)/kubectl.log"; echo >> "\(directory)/kubectl.log" ;;
                  get) [ -n "\(phase)" ] && printf '%s' "\(phase)" || { echo 'Error from server (NotFound)' >&2; exit 1; } ;;
                esac
                exit 0
                """
            FileManager.default.createFile(atPath: "\(directory)/kubectl", contents: Data(kubectl.utf8), attributes: [.posixPermissions: 0o755])
            try #"{"hello-http": "registry.example/hello:1"}"#.write(toFile: "\(directory)/images.json", atomically: true, encoding: .utf8)
        }

        func run(_ action: String, _ request: String) throws -> (status: Int32, output: String) {
            let input = "\(directory)/input.json"
            try request.write(toFile: input, atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["KUBECTL"] = "\(directory)/kubectl"
            environment["LAB_NAMESPACE"] = "labs"
            environment["LAB_IMAGES_FILE"] = "\(directory)/images.json"
            return runProcess("/bin/sh", ["-c", "exec \"$0\" \"$1\" < \"$2\"", SessionPodProvisionerTests.script, action, input], environment: environment)
        }

        var calls: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    static let request = #"""
        {"action": "create", "session": "labportal-w01-s007", "environment": "labportal-w01", "workshop": "hello-http",
         "owner": "alice", "parameters": [{"name": "GREETING", "value": "hi there"}], "command": ["python3", "-m", "http.server", "8080"]}
        """#

    @Test("create makes a Service and a Pod of the workshop's image with the parameters, waits for it, and prints its URL")
    func create() throws {
        guard Self.available else { return }
        let cluster = try Cluster()
        let result = try cluster.run("create", Self.request)
        #expect(result.status == 0, "\(result.output)")
        let answer = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: String]
        #expect(answer == ["url": "http://lab-labportal-w01-s007.labs.svc.cluster.local:8080/", "handle": "lab-labportal-w01-s007"])
        let calls = cluster.calls
        #expect(calls.contains(#""kind": "Service""#) && calls.contains(#""kind": "Pod""#))
        #expect(calls.contains(#""image": "registry.example/hello:1""#))
        #expect(calls.contains(#""name": "GREETING""#) && calls.contains(#""value": "hi there""#))
        #expect(calls.contains(#""name": "PORT""#) && calls.contains(#""name": "SESSION_NAME""#))
        #expect(calls.contains(#""command": ["#))
        #expect(calls.contains("ARGS wait --namespace labs --for=condition=Ready pod/lab-labportal-w01-s007"))
    }

    @Test("create with start false makes only the Service; stop deletes the Pod; delete both; status follows the Pod")
    func lifecycle() throws {
        guard Self.available else { return }
        let cluster = try Cluster()
        let ahead = Self.request.replacingOccurrences(of: #""action": "create","#, with: #""action": "create", "start": false,"#)
        #expect(try cluster.run("create", ahead).status == 0)
        #expect(!cluster.calls.contains(#""kind": "Pod""#))
        #expect(try cluster.run("stop", Self.request).status == 0)
        #expect(cluster.calls.contains("ARGS delete --namespace labs pod/lab-labportal-w01-s007"))
        #expect(try cluster.run("delete", Self.request).status == 0)
        #expect(cluster.calls.contains("pod,service -l labportal.io/session=lab-labportal-w01-s007"))
        #expect(try cluster.run("status", Self.request).status == 0)
        let gone = try Cluster(phase: "")
        let status = try gone.run("status", Self.request)
        #expect(status.status == 1 && status.output.contains("gone"))
        let failed = try Cluster(phase: "Failed")
        #expect(try failed.run("status", Self.request).status == 1)
    }

    @Test("a workshop with no image, or a request with no session, fails with the reason on stderr")
    func failures() throws {
        guard Self.available else { return }
        let cluster = try Cluster()
        let unknown = try cluster.run("create", Self.request.replacingOccurrences(of: "hello-http", with: "other"))
        #expect(unknown.status == 1 && unknown.output.contains("no image for the workshop other"))
        let empty = try cluster.run("create", "{}")
        #expect(empty.status == 2 && empty.output.contains("no session"))
        #expect(try cluster.run("reboot", Self.request).status == 2)
    }
}
