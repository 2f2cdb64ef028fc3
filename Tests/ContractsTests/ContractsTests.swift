import Contracts
import Foundation
import Testing

/// Golden JSON: what crosses a process boundary must keep its shape.
@Suite("Contracts round-trip their golden JSON")
struct ContractsTests {
    static func fixture(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try Data(contentsOf: url)
    }

    static func canonical(_ data: Data) throws -> Data {
        let object = try JSONSerialization.jsonObject(with: data)
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    static func roundTrips<T: Codable & Equatable>(_ type: T.Type, _ name: String) throws -> T {
        let golden = try fixture(name)
        let decoded = try JSONDecoder().decode(T.self, from: golden)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(try canonical(encoder.encode(decoded)) == canonical(golden), "\(name) re-encodes to the same JSON")
        return decoded
    }

    @Test func errorBody() throws {
        let body = try Self.roundTrips(ErrorBody.self, "error-body")
        #expect(body == ErrorBody(error: "capacity must be at least reserved", kind: .invalid, field: "capacity"))
    }

    @Test func page() throws {
        let page = try Self.roundTrips(Page<WirePing.Result>.self, "page")
        #expect(page.nextCursor == "c2")
        #expect(page.items.first?.service == "catalog")
    }

    struct StateFilter: Codable, Sendable, Equatable {
        var state: String?
    }

    @Test func pageRequest() throws {
        let request = try Self.roundTrips(PageRequest<StateFilter>.self, "page-request")
        #expect(request.limit == 500)
        #expect(request.cursor == nil)
        #expect(request.filters.state == "RUNNING")
        let defaulted = try JSONDecoder().decode(PageRequest<StateFilter>.self, from: Data("{}".utf8))
        #expect(defaulted.limit == 1000)
    }

    @Test("error kinds keep their wire names")
    func kinds() {
        #expect(ErrorKind.notFound.rawValue == "not_found")
        #expect(ErrorKind.deadlineExceeded.rawValue == "deadline_exceeded")
        #expect(ErrorKind.rateLimited.rawValue == "rate_limited")
        #expect(ServiceName.services.map(\.executableName)
            == ["catalog-service", "session-service", "classroom-service", "report-service"])
    }
}
