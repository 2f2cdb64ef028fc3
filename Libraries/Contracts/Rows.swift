import Foundation

/// A page of flat rows in a compact JSON form, for bulk reads (exports): the cursor of the next page, the column
/// names once, then each row as an array of strings or nulls.
///
///     {"next_cursor":"2","columns":["id","name"],"rows":[["1","Lab 1"],["2",null]]}
///
/// Objects with the same keys repeated a million times cost most of an export's time to write and read, so this form
/// is written and read by hand here (no `Codable` machinery), in one pass over the bytes. It is still one JSON value
/// inside an ordinary JSON-RPC answer.
public struct RowPage: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String?]]
    public var nextCursor: String?

    public init(columns: [String], rows: [[String?]], nextCursor: String?) {
        self.columns = columns
        self.rows = rows
        self.nextCursor = nextCursor
    }

    /// The page of `items`, each as its cells.
    public init<Item: RowConvertible>(_ page: Page<Item>) {
        self.init(columns: Item.rowColumns, rows: page.items.map(\.rowCells), nextCursor: page.nextCursor)
    }

    /// The items of the page. The columns must be `Item.rowColumns`, in any order; extra columns are ignored.
    public func items<Item: RowConvertible>(of type: Item.Type = Item.self) throws -> Page<Item> {
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let positions = try Item.rowColumns.map { name in
            guard let position = index[name] else { throw RowPageError("the page has no column \(name)") }
            return position
        }
        let identity = positions == Array(0..<positions.count) && columns.count == positions.count
        let items = try rows.map { row -> Item in
            guard row.count == columns.count else {
                throw RowPageError("a row has \(row.count) cells for \(columns.count) columns")
            }
            return try Item(rowCells: identity ? row : positions.map { row[$0] })
        }
        return Page(items: items, nextCursor: nextCursor)
    }

    // MARK: Writing

    /// The page as JSON bytes.
    public func json() -> [UInt8] {
        var writer = Writer(columns: columns, nextCursor: nextCursor, capacity: 64 + rows.count * max(1, columns.count) * 16)
        for row in rows {
            writer.appendRow { out in
                out.append(UInt8(ascii: "["))
                for (index, cell) in row.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    if let cell { Self.write(cell, to: &out) } else { out.append(contentsOf: "null".utf8) }
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        return writer.finish()
    }

    /// Writes a page row by row, for writers whose rows come already (partly) in JSON: the cursor, the columns, then
    /// each row as the caller appends it.
    public struct Writer: Sendable {
        private var bytes: [UInt8]
        private var rows = 0

        public init(columns: [String], nextCursor: String?, capacity: Int = 0) {
            bytes = []
            bytes.reserveCapacity(capacity)
            // The cursor first: a reader that pipelines pages asks for the next one before it reads this one's rows.
            bytes.append(contentsOf: #"{"next_cursor":"#.utf8)
            if let nextCursor { RowPage.write(nextCursor, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
            bytes.append(contentsOf: #","columns":["#.utf8)
            for (index, column) in columns.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                RowPage.write(column, to: &bytes)
            }
            bytes.append(contentsOf: #"],"rows":["#.utf8)
        }

        /// Appends one row: `body` must append a JSON array of as many strings or nulls as there are columns.
        public mutating func appendRow(_ body: (inout [UInt8]) -> Void) {
            if rows > 0 { bytes.append(UInt8(ascii: ",")) }
            rows += 1
            body(&bytes)
        }

        /// The page's bytes.
        public consuming func finish() -> [UInt8] {
            bytes.append(contentsOf: "]}".utf8)
            return bytes
        }
    }

    static func write(_ text: String, to out: inout [UInt8]) { JSONString.write(text, to: &out) }

    // MARK: Reading

    /// Reads a page from JSON bytes: an object with exactly the members `columns`, `rows` and `next_cursor` (the
    /// last may be missing), in any order, with any JSON whitespace.
    public init(json bytes: some Collection<UInt8>) throws {
        let parsed: RowPage? = try bytes.withContiguousStorageIfAvailable { buffer in
            var reader = Reader(bytes: UnsafeRawBufferPointer(buffer))
            return try reader.page()
        }
        if let parsed {
            self = parsed
        } else {
            let copy = Array(bytes)
            self = try copy.withUnsafeBytes { buffer in
                var reader = Reader(bytes: buffer)
                return try reader.page()
            }
        }
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var at = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func page() throws -> RowPage {
            var columns: [String]?
            var rows: [[String?]]?
            var cursor: String??
            try object { key, reader in
                switch key {
                case "columns":
                    guard columns == nil else { throw RowPageError("columns appears twice") }
                    columns = try reader.array { reader in try reader.string() }
                case "rows":
                    guard rows == nil else { throw RowPageError("rows appears twice") }
                    rows = try reader.array { reader in try reader.array { cell in try cell.nullableString() } }
                default:
                    try reader.cursor(key, into: &cursor)
                }
            }
            guard let columns, let rows else { throw RowPageError("a page needs columns and rows") }
            return RowPage(columns: columns, rows: rows, nextCursor: cursor ?? nil)
        }

        /// Reads the page's object and checks nothing follows it: `member` reads the value of each key.
        mutating func object(_ member: (String, inout Reader) throws -> Void) throws {
            try expect(UInt8(ascii: "{"))
            if try !consume(UInt8(ascii: "}")) {
                repeat {
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    try member(key, &self)
                } while try consume(UInt8(ascii: ","))
                try expect(UInt8(ascii: "}"))
            }
            skipSpace()
            guard at == bytes.count else { throw RowPageError("unexpected bytes after the page at offset \(at)") }
        }

        /// The `next_cursor` member (once), or an unexpected member.
        mutating func cursor(_ key: String, into cursor: inout String??) throws {
            guard key == "next_cursor" else { throw RowPageError("unexpected member \(key)") }
            guard cursor == nil else { throw RowPageError("next_cursor appears twice") }
            cursor = .some(try nullableString())
        }

        mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x09, 0x0A, 0x0D: at += 1
                default: return
                }
            }
        }

        mutating func consume(_ byte: UInt8) throws -> Bool {
            skipSpace()
            guard at < bytes.count, bytes[at] == byte else { return false }
            at += 1
            return true
        }

        mutating func expect(_ byte: UInt8) throws {
            guard try consume(byte) else {
                throw RowPageError("expected '\(Character(Unicode.Scalar(byte)))' at offset \(at)")
            }
        }

        mutating func array<T>(_ element: (inout Reader) throws -> T) throws -> [T] {
            try expect(UInt8(ascii: "["))
            var items: [T] = []
            if try consume(UInt8(ascii: "]")) { return items }
            repeat { items.append(try element(&self)) } while try consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
            return items
        }

        mutating func nullableString() throws -> String? {
            isNull() ? nil : try string()
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            let start = at
            // The common case: no escape, copied in one piece.
            while at < bytes.count {
                let byte = bytes[at]
                if byte == UInt8(ascii: "\"") {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
                    at += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw RowPageError("a control character inside a string at offset \(at)") }
                at += 1
            }
            at = start - 1
            var out: [UInt8] = []
            try appendString(to: &out)
            return String(decoding: out, as: UTF8.self)
        }

        /// Reads a string and appends its UTF-8 bytes (escapes undone) to `out`.
        mutating func appendString(to out: inout [UInt8]) throws {
            try expect(UInt8(ascii: "\""))
            var run = at
            while at < bytes.count {
                let byte = bytes[at]
                if byte == UInt8(ascii: "\"") {
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<at]))
                    at += 1
                    return
                }
                if byte < 0x20 { throw RowPageError("a control character inside a string at offset \(at)") }
                guard byte == UInt8(ascii: "\\") else {
                    at += 1
                    continue
                }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<at]))
                at += 1
                guard at < bytes.count else { break }
                let escape = bytes[at]
                at += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by `\u` and a low one.
                        guard at + 2 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u")
                        else { throw RowPageError("a lone surrogate at offset \(at)") }
                        at += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw RowPageError("a lone surrogate at offset \(at)") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw RowPageError("a lone surrogate at offset \(at)")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw RowPageError("bad \\u escape at offset \(at)") }
                    out.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    throw RowPageError("bad escape at offset \(at - 1)")
                }
                run = at
            }
            throw RowPageError("a string does not end")
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw RowPageError("a short \\u escape at offset \(at)") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[at]
                at += 1
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw RowPageError("bad \\u escape at offset \(at - 1)")
                }
                value = value << 4 | digit
            }
            return value
        }
    }
}

/// JSON strings written by hand, for the writers that do not go through `Codable` (pages, rendered responses).
public enum JSONString {
    private static let hex = Array("0123456789abcdef".utf8)

    /// `text` as a JSON string: `"` and `\` escaped, control characters as `\n`, `\r`, `\t` or `\u00XX`, everything
    /// else (non-ASCII included) as is. Runs that need no escape are copied at once.
    public static func write(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: "u00".utf8)
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0x0F)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A page that is not the row form, said for a person.
public struct RowPageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// An item that crosses the wire as a flat row (see `RowPage`).
public protocol RowConvertible: Sendable {
    /// The names of the cells, in order.
    static var rowColumns: [String] { get }
    /// The cells, in `rowColumns` order.
    var rowCells: [String?] { get }
    /// The item from its cells, in `rowColumns` order.
    init(rowCells: [String?]) throws
}

// MARK: Scanning

extension RowPage {
    /// The cells of one row, as UTF-8 bytes with JSON escapes undone (nil for a null cell), in the order of the
    /// columns asked for. Valid only inside the `scan` callback that gives it.
    public struct ScannedRow {
        fileprivate let bytes: UnsafeRawBufferPointer
        /// Per page column: the cell's start and end in `bytes`; a start of -1 for null.
        fileprivate let spans: UnsafeBufferPointer<(Int, Int)>
        /// Per column asked for: its position in the page.
        fileprivate let positions: UnsafeBufferPointer<Int>

        public var count: Int { positions.count }

        public subscript(index: Int) -> UnsafeRawBufferPointer? {
            let (start, end) = spans[positions[index]]
            return start < 0 ? nil : UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        }
    }

    /// The cursor of the next page, read from the start of a page written by `json()` without reading its rows (a
    /// page whose cursor comes last is read whole).
    public static func nextCursor(json input: some Collection<UInt8>) throws -> String? {
        func read(_ buffer: UnsafeRawBufferPointer) throws -> String? {
            var reader = Reader(bytes: buffer)
            try reader.expect(UInt8(ascii: "{"))
            if try reader.string() == "next_cursor" {
                try reader.expect(UInt8(ascii: ":"))
                return try reader.nullableString()
            }
            reader.at = 0
            return try reader.scan(columns: [], row: { _ in }).nextCursor
        }
        if let cursor = try input.withContiguousStorageIfAvailable({ try read(UnsafeRawBufferPointer($0)) }) {
            return cursor
        }
        return try Array(input).withUnsafeBytes { try read($0) }
    }

    /// Reads a page from JSON bytes row by row without making a string per cell (the reader of an export, which
    /// only copies cells on): `row` is called once per row with the cells of `columns`, in that order. The page's
    /// columns must come before its rows (as `json()` writes them) and hold every name in `columns`.
    /// Answers the number of rows and the cursor of the next page.
    public static func scan(
        json input: some Collection<UInt8>, columns wanted: [String], row: (ScannedRow) throws -> Void
    ) throws -> (rows: Int, nextCursor: String?) {
        if let scanned = try input.withContiguousStorageIfAvailable({ buffer in
            var reader = Reader(bytes: UnsafeRawBufferPointer(buffer))
            return try reader.scan(columns: wanted, row: row)
        }) {
            return scanned
        }
        return try Array(input).withUnsafeBytes { buffer in
            var reader = Reader(bytes: buffer)
            return try reader.scan(columns: wanted, row: row)
        }
    }
}

extension RowPage.Reader {
    mutating func scan(columns wanted: [String], row: (RowPage.ScannedRow) throws -> Void) throws
        -> (rows: Int, nextCursor: String?)
    {
        var positions: [Int]?
        var width = 0
        var count: Int?
        var cursor: String??
        var scratch: [UInt8] = []
        var spans: [(Int, Int)] = []
        try object { key, reader in
            switch key {
            case "columns":
                guard positions == nil else { throw RowPageError("columns appears twice") }
                let columns = try reader.array { reader in try reader.string() }
                let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
                positions = try wanted.map { name in
                    guard let position = index[name] else { throw RowPageError("the page has no column \(name)") }
                    return position
                }
                width = columns.count
                spans = Array(repeating: (-1, -1), count: width)
            case "rows":
                guard count == nil else { throw RowPageError("rows appears twice") }
                guard let positions else { throw RowPageError("a page's rows come before its columns") }
                count = try positions.withUnsafeBufferPointer { positions in
                    var rows = 0
                    try reader.expect(UInt8(ascii: "["))
                    if try reader.consume(UInt8(ascii: "]")) { return 0 }
                    repeat {
                        scratch.removeAll(keepingCapacity: true)
                        try reader.expect(UInt8(ascii: "["))
                        var cells = 0
                        if try !reader.consume(UInt8(ascii: "]")) {
                            repeat {
                                guard cells < width else { throw RowPageError("a row has more than \(width) cells") }
                                if reader.isNull() {
                                    spans[cells] = (-1, -1)
                                } else {
                                    let start = scratch.count
                                    try reader.appendString(to: &scratch)
                                    spans[cells] = (start, scratch.count)
                                }
                                cells += 1
                            } while try reader.consume(UInt8(ascii: ","))
                            try reader.expect(UInt8(ascii: "]"))
                        }
                        guard cells == width else { throw RowPageError("a row has \(cells) cells for \(width) columns") }
                        try scratch.withUnsafeBytes { bytes in
                            try spans.withUnsafeBufferPointer { spans in
                                try row(RowPage.ScannedRow(bytes: bytes, spans: spans, positions: positions))
                            }
                        }
                        rows += 1
                    } while try reader.consume(UInt8(ascii: ","))
                    try reader.expect(UInt8(ascii: "]"))
                    return rows
                }
            default:
                try reader.cursor(key, into: &cursor)
            }
        }
        guard positions != nil, let count else { throw RowPageError("a page needs columns and rows") }
        return (count, cursor ?? nil)
    }

    /// Consumes `null` if it comes next.
    mutating func isNull() -> Bool {
        skipSpace()
        guard at + 4 <= bytes.count, bytes[at] == UInt8(ascii: "n"), bytes[at + 1] == UInt8(ascii: "u"),
            bytes[at + 2] == UInt8(ascii: "l"), bytes[at + 3] == UInt8(ascii: "l")
        else { return false }
        at += 4
        return true
    }
}
