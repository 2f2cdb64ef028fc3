import Foundation
import TestSupport
import Testing
import Yams

/// The Kubernetes manifests held against the code: what they set, expose and route is what the services read, listen
/// on and answer. (Rendering and schema validation: deploy/kubernetes/check, run by deploy/test/run.)
@Suite("Kubernetes manifests agree with the services")
struct KubernetesManifestTests {
    static let services = ["catalog", "session", "classroom", "report"]
    static let kubernetes = repositoryRoot.appendingPathComponent("deploy/kubernetes")

    /// Every YAML document of a file (comments and `---` separators as kubectl reads them).
    static func documents(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: kubernetes.appendingPathComponent(path), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    static func deployment(_ service: String) throws -> [String: Any] {
        try #require(try documents("base/\(service).yaml").first { $0["kind"] as? String == "Deployment" })
    }

    static func container(_ document: [String: Any]) -> [String: Any] {
        let spec = (document["spec"] as? [String: Any])?["template"] as? [String: Any]
        let podSpec = spec?["spec"] as? [String: Any]
        return ((podSpec?["containers"] as? [[String: Any]]) ?? []).first ?? [:]
    }

    static func podSpec(_ document: [String: Any]) -> [String: Any] {
        ((document["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
    }

    static func environment(_ container: [String: Any]) -> [String: String?] {
        var values: [String: String?] = [:]
        for entry in (container["env"] as? [[String: Any]]) ?? [] {
            guard let name = entry["name"] as? String else { continue }
            values.updateValue(entry["value"].map { "\($0)" }, forKey: name)
        }
        return values
    }

    /// Every Deployment the base and the overlays' patches describe.
    static func allDeployments() throws -> [[String: Any]] {
        var all = try services.map(deployment)
        for patch in ["overlays/single-node/sqlite.yaml", "overlays/replicated/postgres.yaml"] {
            all += try documents(patch).filter { $0["kind"] as? String == "Deployment" }
        }
        return all
    }

    /// The configuration keys of deploy/env/README.md, as environment variables.
    static func documentedVariables() throws -> Set<String> {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/env/README.md"), encoding: .utf8)
        var keys = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let key = line.dropFirst(3).prefix { $0 != "`" }
            if key == "peers.<name>" {
                for service in services { keys.insert("LABPORTAL_PEERS_\(service.uppercased())") }
            } else {
                keys.insert("LABPORTAL_" + key.uppercased().replacingOccurrences(of: ".", with: "_"))
            }
        }
        return keys
    }

    @Test("every LABPORTAL_ variable the manifests set is a documented configuration key; others belong to the provisioner")
    func variables() throws {
        let documented = try Self.documentedVariables()
        #expect(documented.contains("LABPORTAL_HTTP_PORT") && documented.contains("LABPORTAL_SHUTDOWN_DRAIN_S"))
        let script = try String(contentsOf: Self.kubernetes.appendingPathComponent("provisioner/session-pod"), encoding: .utf8)
        for deployment in try Self.allDeployments() {
            for name in Self.environment(Self.container(deployment)).keys {
                if name.hasPrefix("LABPORTAL_") {
                    #expect(documented.contains(name), "\(name) is no key of deploy/env/README.md")
                } else {
                    #expect(script.contains("${\(name):-"), "\(name) is read by nothing")
                }
            }
        }
    }

    @Test("ports, probes, peers, grace period and mounted secrets match each service")
    func deployments() throws {
        let defaults = ["catalog": (8101, 9101), "session": (8102, 9102), "classroom": (8103, 9103), "report": (8104, 9104)]
        let health = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Libraries/ServerKit/Runtime/HealthController.swift"), encoding: .utf8)
        var certificates: [String: String] = [:]  // secret → common name
        for document in try Self.documents("cert-manager/certificates.yaml") where document["kind"] as? String == "Certificate" {
            let spec = document["spec"] as? [String: Any] ?? [:]
            certificates[spec["secretName"] as? String ?? ""] = spec["commonName"] as? String
        }
        for service in Self.services {
            let documents = try Self.documents("base/\(service).yaml")
            let deployment = try Self.deployment(service)
            let container = Self.container(deployment)
            let environment = Self.environment(container)
            let (http, wire) = defaults[service]!
            let ports = Dictionary(uniqueKeysWithValues: ((container["ports"] as? [[String: Any]]) ?? []).map {
                ($0["name"] as? String ?? "", $0["containerPort"] as? Int ?? 0)
            })
            #expect(ports == ["http": http, "wire": wire], "\(service)")
            #expect(environment["LABPORTAL_HTTP_PORT"] == String(http))
            #expect(environment["LABPORTAL_WIRE_PORT"] == String(wire))
            #expect(environment["LABPORTAL_HTTP_HOST"] == "0.0.0.0" && environment["LABPORTAL_WIRE_HOST"] == "0.0.0.0")
            #expect(environment.keys.contains("LABPORTAL_REPLICA"))
            for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
                let get = (container[probe] as? [String: Any])?["httpGet"] as? [String: Any]
                #expect(get?["path"] as? String == path && get?["port"] as? String == "http", "\(service) \(probe)")
                #expect(health.contains("router.get(\"\(path.dropFirst())\")"), "\(path) is served")
            }
            let drain = Int((environment["LABPORTAL_SHUTDOWN_DRAIN_S"] ?? nil) ?? "25") ?? 25
            let grace = Self.podSpec(deployment)["terminationGracePeriodSeconds"] as? Int ?? 30
            #expect(grace > drain + 5, "\(service): the grace period outlasts the drain and the 5 s after it")
            let security = container["securityContext"] as? [String: Any] ?? [:]
            #expect(security["readOnlyRootFilesystem"] as? Bool == true && security["allowPrivilegeEscalation"] as? Bool == false)
            #expect((Self.podSpec(deployment)["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
            // The Services name the container's ports.
            let serviceObjects = documents.filter { $0["kind"] as? String == "Service" }
            for (name, port) in [("\(service)-http", http), ("\(service)-wire", wire)] {
                let object = serviceObjects.first { ($0["metadata"] as? [String: Any])?["name"] as? String == name }
                let first = ((object?["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first
                #expect(first?["port"] as? Int == port, "\(name)")
            }
            // Peers point at the wire Service of the peer, on its wire port.
            for (name, value) in environment where name.hasPrefix("LABPORTAL_PEERS_") {
                let peer = name.dropFirst("LABPORTAL_PEERS_".count).lowercased()
                #expect(value == "\(peer)-wire:\(defaults[peer]!.1)", "\(service) → \(peer)")
            }
            // The wire's certificate comes from a cert-manager Certificate with the service's name as CN.
            let volumes = (Self.podSpec(deployment)["volumes"] as? [[String: Any]]) ?? []
            let secret = volumes.compactMap { ($0["secret"] as? [String: Any])?["secretName"] as? String }
                .first { $0.hasPrefix("labportal-wire-") }
            #expect(secret == "labportal-wire-\(service)")
            #expect(certificates["labportal-wire-\(service)"] == service)
        }
    }

    /// The public routes of deploy/nginx as (path pattern, service): regular expressions without their `^`, prefixes
    /// as they are, and exact health routes with a `$`.
    static func nginxRoutes() throws -> Set<String> {
        let text = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/nginx/labportal.conf.template"), encoding: .utf8)
        var routes = Set<String>()
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.first == "location", words.count >= 3,
                let upstream = line.range(of: "http://labportal_").map({ line[$0.upperBound...].prefix { $0.isLetter } })
            else { continue }
            var path = String(words[1] == "~" || words[1] == "^~" || words[1] == "=" ? words[2] : words[1])
            if words[1] == "~" { path = String(path.drop { $0 == "^" }) }
            if words[1] == "=" { path += "$" }
            routes.insert("\(path) → \(upstream)")
        }
        return routes
    }

    @Test("every route of deploy/nginx is in the Ingress, to the same service, and nothing else is")
    func ingress() throws {
        let nginx = try Self.nginxRoutes()
        #expect(nginx.count >= 18, "the template's routes were read: \(nginx.sorted())")
        var ingress = Set<String>()
        for document in try Self.documents("base/ingress.yaml") where document["kind"] as? String == "Ingress" {
            for rule in ((document["spec"] as? [String: Any])?["rules"] as? [[String: Any]]) ?? [] {
                for path in (((rule["http"] as? [String: Any])?["paths"]) as? [[String: Any]]) ?? [] {
                    let backend = ((path["backend"] as? [String: Any])?["service"] as? [String: Any])?["name"] as? String ?? ""
                    ingress.insert("\(path["path"] as? String ?? "") → \(backend.replacingOccurrences(of: "-http", with: ""))")
                }
            }
        }
        #expect(ingress == nginx, "only in nginx: \(nginx.subtracting(ingress).sorted()); only in the Ingress: \(ingress.subtracting(nginx).sorted())")
    }

    @Test("the NetworkPolicies open REST to the ingress controller and the wire to LabPortal's pods only")
    func networkPolicies() throws {
        let policies = try Self.documents("base/network-policy.yaml")
        let byName = Dictionary(uniqueKeysWithValues: policies.map { (($0["metadata"] as? [String: Any])?["name"] as? String ?? "", $0) })
        let deny = try #require(byName["labportal-default-deny"]?["spec"] as? [String: Any])
        #expect(deny["ingress"] == nil && (deny["policyTypes"] as? [String]) == ["Ingress"])
        func rule(_ name: String) -> (ports: [String], from: [[String: Any]]) {
            let spec = byName[name]?["spec"] as? [String: Any]
            let first = (spec?["ingress"] as? [[String: Any]])?.first ?? [:]
            let ports = ((first["ports"] as? [[String: Any]]) ?? []).compactMap { $0["port"] as? String }
            return (ports, (first["from"] as? [[String: Any]]) ?? [])
        }
        let rest = rule("labportal-rest-from-ingress")
        #expect(rest.ports == ["http"])
        #expect(rest.from.allSatisfy { $0["namespaceSelector"] != nil && $0["podSelector"] == nil })
        let wire = rule("labportal-wire-from-services")
        #expect(wire.ports == ["wire"])
        #expect(wire.from.count == 1 && wire.from.first?["podSelector"] != nil && wire.from.first?["namespaceSelector"] == nil)
    }
}
