import Foundation

/// Liveness over the wire: the answer of `wire.ping`.
public enum WirePing {
    public struct Result: Codable, Sendable, Equatable {
        public var service: String
        public var version: String
        /// ISO-8601 UTC with milliseconds.
        public var time: String

        public init(service: String, version: String, time: String) {
            self.service = service
            self.version = version
            self.time = time
        }
    }
}

/// Keyset-paged bulk reads: every `<thing>.page` method takes a `PageRequest` and answers a `Page`.
public struct PageRequest<Filters: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public static var maximumLimit: Int { 1000 }

    /// Opaque; `nil` asks for the first page.
    public var cursor: String?
    public var limit: Int
    public var filters: Filters

    public init(cursor: String? = nil, limit: Int = 1000, filters: Filters) {
        self.cursor = cursor
        self.limit = limit
        self.filters = filters
    }

    private enum CodingKeys: String, CodingKey { case cursor, limit }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cursor = try container.decodeIfPresent(String.self, forKey: .cursor)
        limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? Self.maximumLimit
        filters = try Filters(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cursor, forKey: .cursor)
        try container.encode(limit, forKey: .limit)
        try filters.encode(to: encoder)
    }
}

public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    private enum CodingKeys: String, CodingKey {
        case items
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

extension PageRequest: Hashable where Filters: Hashable {}

/// An empty params or result object, `{}`.
public struct Empty: Codable, Sendable, Equatable {
    public init() {}
}
