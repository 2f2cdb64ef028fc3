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
        let source = withoutMultilineStrings(source)
        let pattern = #"^\s*(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)"#
        let regex = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        let range = NSRange(source.startIndex..., in: source)
        return regex.matches(in: source, range: range).compactMap { match in
            Range(match.range(at: 1), in: source).map { String(source[$0]) }
        }
    }

    /// The source with the contents of its `\"\"\"` string literals removed (a script or a scanner fixture inside one
    /// is not an import of the file).
    static func withoutMultilineStrings(_ source: String) -> String {
        var kept: [Substring] = []
        var inside = false
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let quotes = line.components(separatedBy: "\"\"\"").count - 1
            if !inside { kept.append(line) }
            if quotes % 2 == 1 { inside.toggle() }
        }
        return kept.joined(separator: "\n")
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
        #expect(Self.importedModules(in: "let script = \"\"\"\n" + source + "\n\"\"\"\nimport Real").elementsEqual(["Real"]),
                "imports inside a multi-line string are not imports")
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

    // MARK: One shape for every service

    static let services = ["Catalog", "Session", "Classroom", "Report"]
    static let serviceFolders = ["Model", "Repositories", "Controllers", "WireHandlers", "Peers", "Background"]

    @Test("every service has the same layout: Config.swift, the standard folders, migrations in one file",
          arguments: services)
    func layout(service: String) throws {
        let base = Self.root.appendingPathComponent("Services/\(service)/\(service)Service")
        let entries = try FileManager.default.contentsOfDirectory(atPath: base.path)
        #expect(entries.contains("Config.swift"), "\(service)Service has Config.swift")
        for folder in Self.serviceFolders {
            var isDirectory: ObjCBool = false
            let path = base.appendingPathComponent(folder).path
            #expect(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue,
                    "\(service)Service/\(folder)")
        }
        #expect(FileManager.default.fileExists(atPath: base.appendingPathComponent("Repositories/Migrations.swift").path))
        // Migrations are declared in Repositories/Migrations.swift only.
        let elsewhere = Self.files(under: "Services/\(service)")
            .filter { !$0.path.hasSuffix("Repositories/Migrations.swift") && $0.text.contains("Migration(version") }
        #expect(elsewhere.isEmpty, "migrations outside Migrations.swift: \(elsewhere.map(\.path))")
        // Configuration keys are read in Config.swift only.
        let readers = Self.files(under: "Services/\(service)").filter { file in
            !file.path.hasSuffix("/Config.swift")
                && ["optionalString(\"", "requireInt(\"", "requireString(\"", "requireBool(\"", "requireEnum(\""]
                    .contains { file.text.contains($0) }
        }
        #expect(readers.isEmpty, "configuration read outside Config.swift: \(readers.map(\.path))")
    }

    /// Every Swift file under `directory`, with its path (relative to the repository) and text.
    static func files(under directory: String) -> [(path: String, text: String)] {
        let base = root.appendingPathComponent(directory)
        guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        var found: [(String, String)] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
            found.append((url.path.replacingOccurrences(of: root.path + "/", with: ""), text))
        }
        return found
    }

    @Test("SQL lives in Storage and in each service's Repositories/ only")
    func sqlInRepositories() {
        var bad: [String] = []
        for directory in ["Services", "Libraries"] {
            for (file, module) in Self.imports(under: directory)
            where ["SQLKit", "SQLiteKit", "PostgresKit", "PostgresNIO", "SQLiteNIO"].contains(module) {
                let allowed = file.hasPrefix("Libraries/Storage/") || file.hasPrefix("Libraries/TestSupport/")
                    || (file.hasPrefix("Services/") && file.contains("/Repositories/"))
                if !allowed { bad.append("\(file) imports \(module)") }
            }
        }
        // Without importing SQLKit, `database.sql` still hands out a SQL database: it is used in Repositories/ only.
        for file in Self.files(under: "Services") where !file.path.contains("/Repositories/") {
            if file.text.contains(".sql.") || file.text.contains("database.sql") { bad.append("\(file.path) uses database.sql") }
        }
        #expect(bad.isEmpty, "\(bad)")
        #expect(!Self.imports(under: "Services").filter { $0.module == "SQLKit" }.isEmpty, "the scan sees the repositories")
    }

    // MARK: Imports match Package.swift

    /// Modules of the toolchain that no manifest declares.
    static let systemModules: Set<String> = [
        "Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch", "Glibc", "Musl", "Darwin",
        "Synchronization", "_Concurrency", "Testing", "XCTest", "os",
    ]

    /// Each target's declared dependencies, as module names, read from Package.swift.
    static func declaredModules() throws -> [String: (path: String, modules: Set<String>)] {
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        func matches(_ pattern: String, in text: String) -> [[String]] {
            let regex = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
                (0..<match.numberOfRanges).map { index in
                    Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
                }
            }
        }
        // `let name: Target.Dependency = .product(name: "Module", …)` and `let list: [Target.Dependency] = [ … ]`.
        var variables: [String: Set<String>] = [:]
        for match in matches(#"let (\w+): Target\.Dependency = \.product\(name: "(\w+)""#, in: manifest) {
            variables[match[1]] = [match[2]]
        }
        func modules(in list: String) -> Set<String> {
            var found: Set<String> = []
            for match in matches(#"\.product\(name: "(\w+)""#, in: list) { found.insert(match[1]) }
            var withoutProducts = list
            if let regex = try? NSRegularExpression(pattern: #"\.product\([^)]*\)"#) {
                withoutProducts = regex.stringByReplacingMatches(
                    in: list, range: NSRange(list.startIndex..., in: list), withTemplate: "")
            }
            for match in matches(#""(\w+)""#, in: withoutProducts) { found.insert(match[1]) }
            for match in matches(#"\b([a-z]\w*)\b"#, in: withoutProducts) {
                if let known = variables[match[1]] { found.formUnion(known) }
            }
            return found
        }
        for match in matches(#"let (\w+): \[Target\.Dependency\] = \[(.*?)\n\]"#, in: manifest) {
            variables[match[1]] = modules(in: match[2])
        }
        var targets: [String: (String, Set<String>)] = [:]
        let pattern = #"\.(?:target|executableTarget|testTarget)\(\s*name: "([\w-]+)",(.*?)path: "([^"]+)""#
        for match in matches(pattern, in: manifest) {
            targets[match[1]] = (match[3], modules(in: match[2]))
        }
        return targets
    }

    @Test("every target imports only what it declares in Package.swift")
    func declaredImports() throws {
        let targets = try Self.declaredModules()
        #expect(targets.count >= 20, "the manifest scan found the targets: \(targets.keys.sorted())")
        var bad: [String] = []
        for (name, target) in targets.sorted(by: { $0.key < $1.key }) {
            let own = name.replacingOccurrences(of: "-", with: "_")
            for (file, module) in Self.imports(under: target.path)
            where module != own && !Self.systemModules.contains(module) && !target.modules.contains(module) {
                bad.append("\(file) imports \(module), which \(name) does not declare")
            }
        }
        #expect(bad.isEmpty, "\(bad.joined(separator: "\n"))")
    }
}
