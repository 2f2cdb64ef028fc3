import Foundation
import Testing

/// The architecture's import rules (STYLE §3), checked on the source so that a leaked transitive import fails here.
@Suite("Layering")
struct LayeringTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let serviceModules = ["CatalogService", "SessionService", "ClassroomService", "ReportService"]

    /// Every `import` of every Swift file under `directory`, as (file, module).
    static func imports(under directory: String) -> [(file: String, module: String)] {
        let base = root.appendingPathComponent(directory)
        guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        var found: [(String, String)] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
            for module in importedModules(in: text) {
                found.append((url.path.replacingOccurrences(of: root.path + "/", with: ""), module))
            }
        }
        return found
    }

    /// The modules a Swift source imports, including `@testable`, `@preconcurrency`, access-level and
    /// `import struct X.Y` forms.
    static func importedModules(in source: String) -> [String] {
        let pattern = #"^\s*(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)"#
        let regex = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        let range = NSRange(source.startIndex..., in: source)
        return regex.matches(in: source, range: range).compactMap { match in
            Range(match.range(at: 1), in: source).map { String(source[$0]) }
        }
    }

    static func violations(under directory: String, allowed: (String) -> Bool) -> [String] {
        imports(under: directory).filter { !allowed($0.module) }.map { "\($0.file) imports \($0.module)" }
    }

    @Test("the import scanner sees every form of import")
    func scannerWorks() {
        let source = """
            import Foundation
            @testable import CatalogService
            @preconcurrency import AsyncKit
            public import Wire
            import struct NIOCore.ByteBuffer
              // import Commented
            let x = "import NotAnImport"
            """
        #expect(Self.importedModules(in: source) == ["Foundation", "CatalogService", "AsyncKit", "Wire", "NIOCore"])
    }

    @Test("Contracts imports Foundation only")
    func contracts() {
        let bad = Self.violations(under: "Libraries/Contracts") { ["Foundation", "FoundationEssentials"].contains($0) }
        #expect(bad.isEmpty, "\(bad)")
        #expect(!Self.imports(under: "Libraries/Contracts").isEmpty, "the scan found Contracts' sources")
    }

    @Test("Wire knows no domain: no Contracts, ServerKit, Storage or service")
    func wire() {
        let forbidden = Set(["Contracts", "ServerKit", "Storage", "Hummingbird"] + Self.serviceModules)
        let bad = Self.violations(under: "Libraries/Wire") { !forbidden.contains($0) }
        #expect(bad.isEmpty, "\(bad)")
    }

    @Test("Storage sees no domain: no Contracts, Wire, ServerKit or service")
    func storage() {
        let forbidden = Set(["Contracts", "Wire", "ServerKit", "Hummingbird"] + Self.serviceModules)
        let bad = Self.violations(under: "Libraries/Storage") { !forbidden.contains($0) }
        #expect(bad.isEmpty, "\(bad)")
    }

    @Test("libraries never import a service")
    func librariesBelowServices() {
        let bad = Self.violations(under: "Libraries") { !Self.serviceModules.contains($0) }
        #expect(bad.isEmpty, "\(bad)")
    }

    @Test("a service never imports another service", arguments: ["Catalog", "Session", "Classroom", "Report"])
    func servicesAreIndependent(service: String) {
        let own = "\(service)Service"
        let others = Set(Self.serviceModules).subtracting([own])
        let bad = Self.violations(under: "Services/\(service)") { !others.contains($0) }
        #expect(bad.isEmpty, "\(bad)")
        #expect(Self.imports(under: "Services/\(service)").contains { $0.module == own }, "its executable imports it")
    }

    @Test("Package.swift: no service target depends on another service target")
    func packageManifest() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        for own in Self.serviceModules {
            guard let start = manifest.range(of: "name: \"\(own)\"") else {
                Issue.record("\(own) not found in Package.swift")
                continue
            }
            let rest = manifest[start.upperBound...]
            let end = rest.range(of: ".target(") ?? rest.range(of: ".executableTarget(") ?? rest.range(of: "]")!
            let declaration = rest[..<end.lowerBound]
            for other in Self.serviceModules where other != own {
                #expect(!declaration.contains("\"\(other)\""), "\(own) depends on \(other) in Package.swift")
            }
        }
    }

    @Test("executables contain only main")
    func thinExecutables() throws {
        for service in ["catalog", "session", "classroom", "report"] {
            let directory = Self.root.appendingPathComponent("Services/\(service.capitalized)/\(service)-service")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".swift") }
            #expect(files == ["main.swift"], "\(service)-service has \(files)")
            let main = try String(contentsOf: directory.appendingPathComponent("main.swift"), encoding: .utf8)
            #expect(main.split(separator: "\n").count <= 20)
        }
    }
}
