import CatalogService
import Foundation
import TestSupport
import Testing

@Suite("The portal file: parsing, Educates' defaults, and errors that name the field")
struct PortalDefinitionTests {
    static let sample = """
        portal:
          name: labportal
          url: https://labs.example.com
          labels: {env: dev}
          sessions: {maximum: 20, registered: 2, anonymous: 1}
          index_url: https://www.example.com/labs/
        workshops:
          - name: hello-http
            title: Hello, HTTP
            description: Serve a page from your session.
            authors: [Ada]
            tags: [http, beginner]
            duration: 30m
            url: https://docs.example.com/hello
            content: {files: "https://github.com/example/hello-http"}
            session:
              command: ["python3", "-m", "http.server", "8000"]
            vms: [{id: vm-1, name: web}, {id: vm-2}]
            region: eu-1
            request:
              parameters: [{name: GREETING, value: hi}]
          - name: shell-basics
            content: {image: "ghcr.io/example/shell:1"}
            session: {command: "exec sleep infinity"}
        environments:
          - workshop: hello-http
            capacity: 10
            reserved: 2
            expires: 60m
            deadline: 2h
            overtime: 15m
            orphaned: 300
            labels: {track: web}
          - workshop: shell-basics
            capacity: 3
            reserved: 5
            initial: 1
        """

    @Test("a full file parses, with defaults filled in the way Educates does")
    func parsesSample() throws {
        let definition = try PortalDefinition.parse(Self.sample)
        #expect(definition.portal.name == "labportal")
        #expect(definition.portal.sessions.maximum == 20)
        #expect(definition.portal.labels == ["env": "dev"])
        #expect(definition.portal.indexURL == "https://www.example.com/labs/")
        #expect(definition.portal.uid.count == 36)

        let hello = try #require(definition.workshops.first)
        #expect(hello.title == "Hello, HTTP")
        #expect(hello.vms.map(\.name) == ["web", "vm-2"])
        #expect(hello.parameters.map(\.name) == ["GREETING"])
        #expect(hello.parameters.map(\.value) == ["hi"])
        #expect(hello.command == ["python3", "-m", "http.server", "8000"])
        #expect(definition.workshops[1].command == ["/bin/sh", "-c", "exec sleep infinity"])
        #expect(definition.workshops[1].title == "shell-basics", "the title defaults to the name")
        #expect(definition.workshops[1].region == "local")

        let web = definition.environments[0]
        #expect(web.capacity == 10)
        #expect(web.reserved == 2)
        #expect(web.initial == 2, "initial defaults to reserved")
        #expect(web.expires == 3600)
        #expect(web.deadline == 7200)
        #expect(web.overtime == 900)
        #expect(web.orphaned == 300)
        let shell = definition.environments[1]
        #expect(shell.reserved == 3, "reserved is clamped to capacity")
        #expect(shell.initial == 3, "a non-zero initial is raised to reserved")
        #expect(shell.expires == nil)
        #expect(shell.deadline == nil)
    }

    @Test("the workshop id hashes the content source, not the name")
    func workshopID() throws {
        let definition = try PortalDefinition.parse(Self.sample)
        let renamed = try PortalDefinition.parse(
            Self.sample
                .replacingOccurrences(of: "  - name: hello-http", with: "  - name: hello-two")
                .replacingOccurrences(of: "workshop: hello-http", with: "workshop: hello-two"))
        #expect(renamed.workshops[0].name == "hello-two")
        #expect(definition.workshops[0].id == renamed.workshops[0].id)
        #expect(definition.workshops[0].id != definition.workshops[1].id)
        #expect(definition.workshops[0].id.count == 32)
        // md5(":https://github.com/example/hello-http:https://docs.example.com/hello"), as Educates computed it.
        #expect(definition.workshops[0].id == "97f769c70c02267c28477a19d2708ddd")
    }

    @Test("the uid is stable for a name and can be set")
    func uid() throws {
        let first = try PortalDefinition.parse(Self.sample).portal.uid
        let again = try PortalDefinition.parse(Self.sample).portal.uid
        #expect(first == again)
        let set = try PortalDefinition.parse(Self.sample.replacingOccurrences(of: "  name: labportal", with: "  name: labportal\n  uid: fixed-uid"))
        #expect(set.portal.uid == "fixed-uid")
    }

    @Test("deadline is never below expires, and defaults to it")
    func deadline() throws {
        let shorter = try PortalDefinition.parse(Self.sample.replacingOccurrences(of: "deadline: 2h", with: "deadline: 10m"))
        #expect(shorter.environments[0].deadline == 3600)
        let absent = try PortalDefinition.parse(Self.sample.replacingOccurrences(of: "deadline: 2h", with: ""))
        #expect(absent.environments[0].deadline == 3600)
    }

    @Test(
        "each mistake names its field and rule",
        arguments: [
            ("  name: labportal", "  name: lab portal", "portal.name", "letters, digits"),
            ("    capacity: 10", "    capacity: -1", "environments[0].capacity", "at least 0"),
            ("    capacity: 10", "    capacity: ten", "environments[0].capacity", "whole number"),
            ("    expires: 60m", "    expires: 60 minutes", "environments[0].expires", "s, m or h"),
            ("  - workshop: shell-basics", "  - workshop: nope", "environments[1].workshop", "names no workshop"),
            ("  - name: shell-basics", "  - name: hello-http", "workshops[1].name", "repeats"),
            ("    labels: {track: web}", "    labels: {track: web}\n    colour: red", "environments[0].colour", "not a known field"),
            ("  sessions: {maximum: 20, registered: 2, anonymous: 1}", "  sessions: {maximum: -2}", "portal.sessions.maximum", "at least 0"),
            ("vms: [{id: vm-1, name: web}, {id: vm-2}]", "vms: [{id: vm-1}, {id: vm-1}]", "workshops[0].vms[1].id", "repeats"),
            ("    labels: {track: web}", "    labels: {\"a-b\": web}", "environments[0].labels.a-b", "word"),
        ])
    func errors(find: String, replace: String, field: String, rule: String) throws {
        let yaml = Self.sample.replacingOccurrences(of: find, with: replace)
        #expect(yaml != Self.sample, "the case changes the file")
        do {
            _ = try PortalDefinition.parse(yaml)
            Issue.record("accepted: \(replace)")
        } catch let error as PortalDefinitionError {
            #expect(error.field == field)
            #expect(error.problem.contains(rule), "\(error)")
        }
    }

    @Test("capacity may come from the portal, but must come from somewhere")
    func capacityDefaults() throws {
        let fromMaximum = try PortalDefinition.parse(Self.sample.replacingOccurrences(of: "    capacity: 3\n", with: ""))
        #expect(fromMaximum.environments[1].capacity == 20)
        let none = Self.sample
            .replacingOccurrences(of: "    capacity: 3\n", with: "")
            .replacingOccurrences(of: "  sessions: {maximum: 20, registered: 2, anonymous: 1}", with: "")
        #expect(throws: PortalDefinitionError.self) { try PortalDefinition.parse(none) }
    }

    @Test("the shipped sample portal file is valid and runs something")
    func shippedSample() throws {
        let path = repositoryRoot.appendingPathComponent("deploy/local/portal.yaml").path
        let definition = try PortalDefinition.load(path: path)
        #expect(definition.workshops.count >= 2)
        #expect(definition.workshops.allSatisfy { $0.command != nil })
        #expect(definition.environments.count >= 2)
    }

    @Test("not YAML, or not the right shape")
    func malformed() {
        #expect(throws: PortalDefinitionError.self) { try PortalDefinition.parse("portal: [unclosed") }
        #expect(throws: PortalDefinitionError.self) { try PortalDefinition.parse("workshops: 3\nportal: {name: x}") }
        #expect(throws: PortalDefinitionError.self) { try PortalDefinition.parse("") }
    }
}
