import Foundation
import SQLKit

/// A cursor that a keyset read did not give (or gave for another sort).
public struct KeysetError: Error, Equatable, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "cursor is not one this method gave for this sort" }
}

/// Keyset paging, the one way LabPortal pages a table: rows after the last one's (sort key, tiebreak), in the sort's
/// order. The sort key is read back from the database (`sort_key`), so the cursor compares exactly as SQL does
/// (`LOWER` of non-ASCII text differs between SQLite, PostgreSQL and Swift). Cursors are opaque to callers and stable
/// while rows are inserted:
/// - no sort key: the tiebreak's value (`123`);
/// - a text key: `t.<base64 of the key>.<tiebreak>`;
/// - a time key: `d.<bit pattern of the seconds>.<tiebreak>`, or `<milliseconds>:<tiebreak>` when the tiebreak is
///   text (the form session-service has always given, so that replicas of two versions read each other's cursors).
public struct Keyset: Sendable {
    public enum SortKey: Sendable {
        /// By the tiebreak alone.
        case none
        /// A text key (an expression such as `LOWER(name)`).
        case text(any SQLExpression)
        /// A time key.
        case time(any SQLExpression)
    }

    public enum Tiebreak: Sendable, Equatable {
        /// A unique integer column (`id`).
        case integer(String)
        /// A unique text column (`name`).
        case text(String)

        var column: String {
            switch self {
            case .integer(let column), .text(let column): column
            }
        }
    }

    enum Key: Equatable {
        case text(String)
        case time(Date)
    }

    enum Value: Equatable {
        case integer(Int64)
        case text(String)
    }

    public let key: SortKey
    public let tiebreak: Tiebreak
    public let descending: Bool

    public init(key: SortKey, tiebreak: Tiebreak, descending: Bool = false) {
        self.key = key
        self.tiebreak = tiebreak
        self.descending = descending
    }

    var keyExpression: (any SQLExpression)? {
        switch key {
        case .none: nil
        case .text(let expression), .time(let expression): expression
        }
    }

    /// The select of a page after `cursor`, sorted.
    public func page(_ query: SQLSelectBuilder, after cursor: String?, limit: Int) throws -> SQLSelectBuilder {
        var query = query
        let comparison = descending ? "<" : ">"
        let direction: SQLDirection = descending ? .descending : .ascending
        let tie = SQLIdentifier(tiebreak.column)
        guard let keyExpression else {
            if let cursor {
                query = query.where(SQLBinaryExpression(left: tie, op: SQLRaw(comparison), right: try bind(decodeValue(cursor))))
            }
            return query.orderBy(tie, direction).limit(limit)
        }
        query = query.column(keyExpression, as: "sort_key")
        if let cursor {
            let (value, last) = try decode(cursor)
            let bound: any SQLExpression = switch value {
            case .text(let text): SQLBind(text)
            case .time(let time): SQLBind(time)
            }
            let after = SQLBinaryExpression(left: keyExpression, op: SQLRaw(comparison), right: bound)
            let tied = SQLBinaryExpression(
                SQLBinaryExpression(keyExpression, .equal, bound), .and,
                SQLBinaryExpression(left: tie, op: SQLRaw(comparison), right: bind(last)))
            query = query.where(
                SQLGroupExpression(SQLBinaryExpression(SQLGroupExpression(after), .or, SQLGroupExpression(tied))))
        }
        return query.orderBy(keyExpression, direction).orderBy(tie, direction).limit(limit)
    }

    /// Reads a page after `cursor` and answers it with the cursor after its last row (nil after the last page).
    public func read<Record>(
        _ query: SQLSelectBuilder, after cursor: String?, limit: Int, decode: (any SQLRow) throws -> Record
    ) async throws -> ([Record], String?) {
        let rows = try await page(query, after: cursor, limit: limit).all()
        let records = try rows.map(decode)
        guard rows.count == limit, let last = rows.last else { return (records, nil) }
        return (records, try self.cursor(after: last))
    }

    /// `read` for bulk reads: the rows are read by position (`Database.plainRows`); `columns` are the select's, and
    /// the tiebreak is one of them.
    public func read<Record>(
        _ query: SQLSelectBuilder, columns: [String], on database: Database, after cursor: String?, limit: Int,
        decode: (PlainRow) throws -> Record
    ) async throws -> ([Record], String?) {
        let page = try self.page(query, after: cursor, limit: limit)
        let hasKey = keyExpression != nil
        let rows = try await database.plainRows(page.query, columns: hasKey ? columns + ["sort_key"] : columns)
        let records = try rows.map(decode)
        guard rows.count == limit, let last = rows.last else { return (records, nil) }
        guard let index = columns.firstIndex(of: tiebreak.column) else {
            throw StorageError.misuse("the keyset's tiebreak \(tiebreak.column) is not among the columns read")
        }
        let value: Value = switch tiebreak {
        case .integer: .integer(try last.requiredInteger(index))
        case .text: .text(try last.requiredText(index))
        }
        switch key {
        case .none: return (records, encode(nil, value))
        case .text: return (records, encode(.text(try last.requiredText(columns.count)), value))
        case .time:
            guard let time = try last.date(columns.count) else {
                throw PlainRowError(index: columns.count, expected: "a time", found: "NULL")
            }
            return (records, encode(.time(time), value))
        }
    }

    /// The cursor after `row` (the last of a page).
    public func cursor(after row: any SQLRow) throws -> String {
        let value: Value = switch tiebreak {
        case .integer(let column): .integer(try row.decode(column: column, as: Int64.self))
        case .text(let column): .text(try row.decode(column: column, as: String.self))
        }
        switch key {
        case .none: return encode(nil, value)
        case .text: return encode(.text(try row.decode(column: "sort_key", as: String.self)), value)
        case .time: return encode(.time(try row.decode(column: "sort_key", as: Date.self)), value)
        }
    }

    // MARK: The cursor's text

    func encode(_ key: Key?, _ value: Value) -> String {
        let last = switch value {
        case .integer(let id): String(id)
        case .text(let text): text
        }
        switch (key, value) {
        case (nil, _): return last
        case (.text(let text)?, _): return "t.\(Data(text.utf8).base64EncodedString()).\(last)"
        case (.time(let time)?, .text): return "\(Int64((time.timeIntervalSince1970 * 1000).rounded())):\(last)"
        case (.time(let time)?, .integer): return "d.\(time.timeIntervalSince1970.bitPattern).\(last)"
        }
    }

    func decodeValue(_ text: String) throws -> Value {
        switch tiebreak {
        case .integer:
            guard let id = Int64(text) else { throw KeysetError() }
            return .integer(id)
        case .text:
            guard !text.isEmpty else { throw KeysetError() }
            return .text(text)
        }
    }

    func decode(_ cursor: String) throws -> (Key, Value) {
        if case .time = key, case .text = tiebreak {
            let parts = cursor.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let ms = Int64(parts[0]) else { throw KeysetError() }
            return (.time(Date(timeIntervalSince1970: Double(ms) / 1000)), try decodeValue(String(parts[1])))
        }
        let parts = cursor.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw KeysetError() }
        let value = try decodeValue(String(parts[2]))
        switch (parts[0], key) {
        case ("t", .text):
            guard let data = Data(base64Encoded: String(parts[1])) else { throw KeysetError() }
            return (.text(String(decoding: data, as: UTF8.self)), value)
        case ("d", .time):
            guard let bits = UInt64(parts[1]) else { throw KeysetError() }
            return (.time(Date(timeIntervalSince1970: Double(bitPattern: bits))), value)
        default:
            throw KeysetError()
        }
    }

    func bind(_ value: Value) -> any SQLExpression {
        switch value {
        case .integer(let id): SQLBind(id)
        case .text(let text): SQLBind(text)
        }
    }
}
