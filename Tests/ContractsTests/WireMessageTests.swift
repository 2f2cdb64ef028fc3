import Contracts
import Foundation
import Testing
@testable import Wire

/// Every wire message has a golden file (`Fixtures/wire/<method>.params.json` and `.result.json`): what the wire
/// writes today. A change that renames, retypes or drops a member fails here; an additive change (a new optional
/// member) must still read old messages, and old readers ignore what they do not know.
@Suite("Wire messages keep their golden JSON")
struct WireMessageTests {
    static func fixture(_ name: String) throws -> Data {
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/wire"),
            "the golden file \(name).json exists")
        return try Data(contentsOf: url)
    }

    static func canonical(_ data: Data) throws -> Data {
        let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed])
    }

    @Test("every method has a sample and golden files")
    func everyMethodIsCovered() throws {
        let sampled = Set(WireMessageSamples.all.map(\.method))
        // labs.rows answers a RowPage, written by hand (its own test below).
        #expect(sampled.union([LabRows.name]) == Set(WireMethods.names))
        for sample in WireMessageSamples.all {
            _ = try Self.fixture("\(sample.method).params")
            _ = try Self.fixture("\(sample.method).result")
        }
    }

    @Test("the wire writes each sample exactly as its golden file", arguments: WireMessageSamples.all.map(\.method))
    func writes(method: String) throws {
        let sample = try #require(WireMessageSamples.all.first { $0.method == method })
        #expect(try Self.canonical(sample.params(WireJSON.encoder)) == Self.canonical(Self.fixture("\(method).params")))
        #expect(try Self.canonical(sample.result(WireJSON.encoder)) == Self.canonical(Self.fixture("\(method).result")))
    }

    @Test("the wire reads each golden file back as the sample", arguments: WireMessageSamples.all.map(\.method))
    func reads(method: String) throws {
        let sample = try #require(WireMessageSamples.all.first { $0.method == method })
        let (params, result) = try sample.decodesTo(
            WireJSON.decoder, try Self.fixture("\(method).params"), try Self.fixture("\(method).result"))
        #expect(params, "\(method) params")
        #expect(result, "\(method) result")
    }

    /// A rolling upgrade: a newer peer adds members this version does not know; this version still reads the
    /// message, and what it writes is still what an older peer reads (the golden file).
    @Test("messages with members from a newer peer still read", arguments: WireMessageSamples.all.map(\.method))
    func newerPeer(method: String) throws {
        let sample = try #require(WireMessageSamples.all.first { $0.method == method })
        func widened(_ data: Data) throws -> Data {
            guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return data }
            object["added_by_a_newer_version"] = ["nested": true]
            return try JSONSerialization.data(withJSONObject: object)
        }
        let (params, result) = try sample.decodesTo(
            WireJSON.decoder, try widened(Self.fixture("\(method).params")), try widened(Self.fixture("\(method).result")))
        #expect(params && result)
    }

    /// `labs.rows` is written and read by hand: its golden files are checked against `RowPage`, and its params are
    /// `labs.page`'s.
    @Test("labs.rows keeps its golden JSON")
    func labRows() throws {
        let params = try WireJSON.decoder.decode(LabRows.Params.self, from: try Self.fixture("labs.rows.params"))
        #expect(try Self.canonical(WireJSON.encoder.encode(params)) == Self.canonical(Self.fixture("labs.rows.params")))
        let golden = try Self.fixture("labs.rows.result")
        let page = try RowPage(json: golden)
        #expect(page == RowPage(Page(items: [WireMessageSamples.lab], nextCursor: "9")))
        #expect(try Self.canonical(Data(page.json())) == Self.canonical(golden))
        #expect(try page.items(of: LabItem.self).items == [WireMessageSamples.lab])
    }
}
