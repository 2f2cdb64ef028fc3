import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

/// Keyset paging in a list's sort order: rows after the last one's (sort key, id). The sort key is read back from the
/// database (`sort_key`), so the cursor compares exactly as SQL does (`LOWER` of non-ASCII text differs between
/// SQLite, PostgreSQL and Swift). A null `last_deployed` sorts as the earliest time on both backends.
struct Keyset {
    enum Key: Equatable {
        case text(String)
        case time(Date)
    }

    let sort: ListSort

    /// The sort key, or nil when the sort is by id alone.
    var key: (any SQLExpression)? {
        switch sort.column {
        case "id": nil
        case "name", "owner_name": SQLFunction("LOWER", args: SQLIdentifier(sort.column))
        case "last_deployed":
            SQLFunction("COALESCE", args: SQLIdentifier("last_deployed"), SQLBind(Date(timeIntervalSince1970: 0)))
        default: SQLIdentifier(sort.column)
        }
    }

    var isText: Bool { sort.column.hasSuffix("name") }

    /// The select of a page after `cursor`, sorted.
    func page(_ query: SQLSelectBuilder, after cursor: String?, limit: Int) throws -> SQLSelectBuilder {
        var query = query
        let comparison = sort.descending ? "<" : ">"
        guard let key else {
            if let cursor {
                guard let id = Int64(cursor) else { throw Self.badCursor }
                query = query.where("id", sort.descending ? .lessThan : .greaterThan, id)
            }
            return query.orderBy("id", sort.descending ? .descending : .ascending).limit(limit)
        }
        query = query.column(key, as: "sort_key")
        if let cursor {
            let (value, id) = try decode(cursor)
            let bound: any SQLExpression = switch value {
            case .text(let text): SQLBind(text)
            case .time(let time): SQLBind(time)
            }
            let after = SQLBinaryExpression(left: key, op: SQLRaw(comparison), right: bound)
            let tie = SQLBinaryExpression(
                SQLBinaryExpression(key, .equal, bound), .and,
                SQLBinaryExpression(left: SQLIdentifier("id"), op: SQLRaw(comparison), right: SQLBind(id)))
            query = query.where(
                SQLGroupExpression(SQLBinaryExpression(SQLGroupExpression(after), .or, SQLGroupExpression(tie))))
        }
        let direction: SQLDirection = sort.descending ? .descending : .ascending
        return query.orderBy(key, direction).orderBy(SQLIdentifier("id"), direction).limit(limit)
    }

    /// Reads a page after `cursor` and answers it with the cursor after its last row (nil after the last page).
    func read<Record>(
        _ query: SQLSelectBuilder, after cursor: String?, limit: Int, decode: (any SQLRow) throws -> Record,
        id: (Record) -> Int64
    ) async throws -> ([Record], String?) {
        let rows = try await page(query, after: cursor, limit: limit).all()
        let records = try rows.map(decode)
        guard rows.count == limit, let last = rows.last, let record = records.last else { return (records, nil) }
        return (records, try self.cursor(after: last, id: id(record)))
    }

    /// `read` for bulk reads: the rows are read by position (`Database.plainRows`); `columns` are the select's.
    func read<Record>(
        _ query: SQLSelectBuilder, columns: [String], on database: Database, after cursor: String?, limit: Int,
        decode: (PlainRow) throws -> Record, id: (Record) -> Int64
    ) async throws -> ([Record], String?) {
        let page = try self.page(query, after: cursor, limit: limit)
        let rows = try await database.plainRows(page.query, columns: key == nil ? columns : columns + ["sort_key"])
        let records = try rows.map(decode)
        guard rows.count == limit, let last = rows.last, let record = records.last else { return (records, nil) }
        guard key != nil else { return (records, encode(nil, id: id(record))) }
        if isText { return (records, encode(.text(try last.requiredText(columns.count)), id: id(record))) }
        guard let time = try last.date(columns.count) else {
            throw PlainRowError(index: columns.count, expected: "a time", found: "NULL")
        }
        return (records, encode(.time(time), id: id(record)))
    }

    /// The cursor after `row` (the last of a page).
    func cursor(after row: any SQLRow, id: Int64) throws -> String {
        guard key != nil else { return encode(nil, id: id) }
        if isText { return encode(.text(try row.decode(column: "sort_key", as: String.self)), id: id) }
        return encode(.time(try row.decode(column: "sort_key", as: Date.self)), id: id)
    }

    /// The cursor after the row with sort key `key` (nil when the sort is by id alone) and `id`.
    func encode(_ key: Key?, id: Int64) -> String {
        switch key {
        case nil: String(id)
        case .text(let text): "t.\(Data(text.utf8).base64EncodedString()).\(id)"
        case .time(let time): "d.\(time.timeIntervalSince1970.bitPattern).\(id)"
        }
    }

    func decode(_ cursor: String) throws -> (Key, Int64) {
        let parts = cursor.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let id = Int64(parts[2]) else { throw Self.badCursor }
        switch parts[0] {
        case "t" where isText:
            guard let data = Data(base64Encoded: String(parts[1])) else { throw Self.badCursor }
            return (.text(String(decoding: data, as: UTF8.self)), id)
        case "d" where !isText:
            guard let bits = UInt64(parts[1]) else { throw Self.badCursor }
            return (.time(Date(timeIntervalSince1970: Double(bitPattern: bits))), id)
        default:
            throw Self.badCursor
        }
    }

    static let badCursor = ServiceFailure(.badRequest, "cursor is not one this method gave for this sort", field: "cursor")
}
