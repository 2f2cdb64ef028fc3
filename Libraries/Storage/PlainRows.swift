import Foundation
import SQLKit
import SQLiteKit
import SQLiteNIO

/// A row of `Database.plainRows`: cells by their place in the select's column list, as integers, reals or text.
///
/// For bulk reads (exports read a million rows): on SQLite the cells are SQLite's own values, read without SQLKit's
/// per-cell `Decodable` machinery, which costs more than reading the row; on PostgreSQL they are decoded through
/// SQLKit by column name.
public struct PlainRow: Sendable {
    enum Cells: Sendable {
        case sqlite([SQLiteColumn])
        case sql(any SQLRow, columns: [String])
    }

    let cells: Cells

    /// The integer at `index`; nil for NULL.
    public func integer(_ index: Int) throws -> Int64? {
        switch cells {
        case .sqlite(let columns):
            switch columns[index].data {
            case .integer(let value): return Int64(value)
            case .null: return nil
            case let other: throw PlainRowError(index: index, expected: "an integer", found: Self.kind(of: other))
            }
        case .sql(let row, let columns):
            return try row.decodeOptional(column: columns[index], as: Int64.self)
        }
    }

    /// The text at `index`; nil for NULL.
    public func text(_ index: Int) throws -> String? {
        switch cells {
        case .sqlite(let columns):
            switch columns[index].data {
            case .text(let value): return value
            case .null: return nil
            case let other: throw PlainRowError(index: index, expected: "text", found: Self.kind(of: other))
            }
        case .sql(let row, let columns):
            return try row.decodeOptional(column: columns[index], as: String.self)
        }
    }

    /// The real number (or integer) at `index`; nil for NULL.
    public func real(_ index: Int) throws -> Double? {
        switch cells {
        case .sqlite(let columns):
            switch columns[index].data {
            case .float(let value): return value
            case .integer(let value): return Double(value)
            case .null: return nil
            case let other: throw PlainRowError(index: index, expected: "a number", found: Self.kind(of: other))
            }
        case .sql(let row, let columns):
            return try row.decodeOptional(column: columns[index], as: Double.self)
        }
    }

    /// The time at `index` (stored as SQLKit stores a `Date`); nil for NULL.
    public func date(_ index: Int) throws -> Date? {
        switch cells {
        case .sqlite(let columns):
            let data = columns[index].data
            if case .null = data { return nil }
            guard let date = Date(sqliteData: data) else {
                throw PlainRowError(index: index, expected: "a time", found: Self.kind(of: data))
            }
            return date
        case .sql(let row, let columns):
            return try row.decodeOptional(column: columns[index], as: Date.self)
        }
    }

    /// What a cell holds, for errors (never its value: it may be anybody's data).
    static func kind(of data: SQLiteData) -> String {
        switch data {
        case .integer: "an integer"
        case .float: "a real number"
        case .text: "text"
        case .blob: "a blob"
        case .null: "NULL"
        }
    }

    /// The integer at `index`, which must not be NULL.
    public func requiredInteger(_ index: Int) throws -> Int64 {
        guard let value = try integer(index) else { throw PlainRowError(index: index, expected: "an integer", found: "NULL") }
        return value
    }

    /// The text at `index`, which must not be NULL.
    public func requiredText(_ index: Int) throws -> String {
        guard let value = try text(index) else { throw PlainRowError(index: index, expected: "text", found: "NULL") }
        return value
    }
}

/// A cell of a plain row that is not what its reader expects.
public struct PlainRowError: Error, CustomStringConvertible {
    public var index: Int
    public var expected: String
    public var found: String

    public init(index: Int, expected: String, found: String) {
        self.index = index
        self.expected = expected
        self.found = found
    }

    public var description: String { "column \(index) of the row is \(found), not \(expected)" }
}

extension Database {
    /// Runs a select and answers its rows for reading by position. `columns` are the names of the select's columns,
    /// in order (PostgreSQL reads cells by them). Not for use inside a transaction.
    public func plainRows(_ query: any SQLExpression, columns: [String]) async throws -> [PlainRow] {
        if let sqlite = sql as? SerializedSQLiteDatabase {
            return try await sqlite.rows(query).map { PlainRow(cells: .sqlite($0.columns)) }
        }
        return try await sql.raw("\(query)").all().map { PlainRow(cells: .sql($0, columns: columns)) }
    }
}

extension SerializedSQLiteDatabase {
    /// The rows of `query` as SQLite gives them.
    func rows(_ query: any SQLExpression) async throws -> [SQLiteRow] {
        var serializer = SQLSerializer(database: self)
        query.serialize(to: &serializer)
        let encoder = SQLiteDataEncoder()
        let binds = try serializer.binds.map { try encoder.encode($0) }
        return try await rows(sql: serializer.sql, binds: binds)
    }
}
