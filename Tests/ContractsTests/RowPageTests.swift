import Contracts
import Foundation
import Testing

@Suite("RowPage: the compact row form of bulk reads, written and read by hand")
struct RowPageTests {
    static let awkward: [String?] = [
        "plain", "comma, \"quotes\" and \\backslash\\", "line\nbreak\r\ttab", "\u{01}\u{1F} controls", "Étudiant 😀 日本",
        "", nil, "a/b", String(repeating: "x", count: 5000),
    ]

    @Test("what is written reads back the same, and is JSON that Foundation reads the same way too")
    func roundTrip() throws {
        let page = RowPage(
            columns: ["a", "b\"c", "d"], rows: [Array(Self.awkward[0..<3]), Array(Self.awkward[3..<6]), Array(Self.awkward[6..<9]), [nil, nil, nil]],
            nextCursor: "next \"one\"")
        let bytes = page.json()
        #expect(try RowPage(json: bytes) == page)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["columns"] as? [String] == ["a", "b\"c", "d"])
        let rows = try #require(object["rows"] as? [[Any]])
        #expect(rows[0].map { $0 as? String } == Array(Self.awkward[0..<3]))
        #expect(rows[1].map { $0 as? String } == Array(Self.awkward[3..<6]))
        #expect(rows[2][0] is NSNull)
        #expect(object["next_cursor"] as? String == "next \"one\"")
        let last = RowPage(columns: [], rows: [], nextCursor: nil)
        #expect(try RowPage(json: last.json()) == last)
    }

    @Test("what another JSON writer makes reads too: escapes, \\u with surrogate pairs, whitespace, member order")
    func foreignJSON() throws {
        let text = #" { "next_cursor" : null , "rows" : [ [ "\u00e9\ud83d\ude00" , null , "\/\b\f\n" ] ] , "columns" : [ "x" , "y" , "z" ] } "#
        let page = try RowPage(json: Array(text.utf8))
        #expect(page.columns == ["x", "y", "z"])
        #expect(page.rows == [["é😀", nil, "/\u{08}\u{0C}\n"]])
        #expect(page.nextCursor == nil)
        let encoded = try JSONSerialization.data(withJSONObject: ["columns": ["c"], "rows": [["Ünïcödé \u{7F} \u{2028}"]], "next_cursor": "2"])
        #expect(try RowPage(json: encoded).rows == [["Ünïcödé \u{7F} \u{2028}"]])
    }

    @Test("anything else is refused with a reason", arguments: [
        #"{"columns":["a"],"rows":[["x"]]"#,  // no closing brace
        #"{"columns":["a"],"rows":[["x]]}"#,  // string never ends
        #"{"columns":["a"],"rows":[["\ud83d"]]}"#,  // lone high surrogate
        #"{"columns":["a"],"rows":[["\ude00"]]}"#,  // lone low surrogate
        #"{"columns":["a"],"rows":[["\x"]]}"#,  // unknown escape
        "{\"columns\":[\"a\"],\"rows\":[[\"tab\there\"]]}",  // raw control character
        #"{"columns":["a"],"rows":[[1]]}"#,  // a number cell
        #"{"columns":["a"],"rows":[["x"]],"extra":1}"#,  // unknown member
        #"{"columns":["a"],"columns":["b"],"rows":[]}"#,  // twice
        #"{"rows":[]}"#,  // no columns
        #"{"columns":[],"rows":[]} x"#,  // bytes after the page
        "",
    ])
    func malformed(text: String) {
        #expect(throws: RowPageError.self) { try RowPage(json: Array(text.utf8)) }
    }

    @Test("items: by column name in any order, extra columns ignored; a missing column or a short row is an error")
    func items() throws {
        let lab = LabItem(
            id: "1", classID: "2", name: "Lab, \"one\"", templateName: "Web", templateID: "web", region: "us",
            configurationID: nil, desktopsURL: "https://x/desktops/abc", state: "running")
        let page = RowPage(Page(items: [lab], nextCursor: "1"))
        #expect(try page.items(of: LabItem.self) == Page(items: [lab], nextCursor: "1"))
        let reordered = RowPage(
            columns: ["extra"] + LabItem.rowColumns.reversed(), rows: [["e"] + lab.rowCells.reversed()], nextCursor: nil)
        #expect(try reordered.items(of: LabItem.self).items == [lab])
        let missing = RowPage(columns: Array(LabItem.rowColumns.dropLast()), rows: [Array(lab.rowCells.dropLast())], nextCursor: nil)
        #expect(throws: RowPageError.self) { try missing.items(of: LabItem.self) }
        let short = RowPage(columns: LabItem.rowColumns, rows: [Array(lab.rowCells.dropLast())], nextCursor: nil)
        #expect(throws: RowPageError.self) { try short.items(of: LabItem.self) }
        var nameless = lab.rowCells
        nameless[2] = nil
        #expect(throws: RowPageError.self) { try RowPage(columns: LabItem.rowColumns, rows: [nameless], nextCursor: nil).items(of: LabItem.self) }
    }

    /// What `scan` gives for `columns`, as strings.
    static func scanned(_ bytes: [UInt8], columns: [String]) throws -> (rows: [[String?]], next: String?) {
        var rows: [[String?]] = []
        let (count, next) = try RowPage.scan(json: bytes, columns: columns) { row in
            rows.append((0..<row.count).map { index in row[index].map { String(decoding: $0, as: UTF8.self) } })
        }
        #expect(count == rows.count)
        return (rows, next)
    }

    @Test("scan: the cells asked for, in the order asked, escapes undone, nulls as nil; the cursor read first")
    func scan() throws {
        let page = RowPage(
            columns: ["a", "b", "c"],
            rows: [Array(Self.awkward[0..<3]), Array(Self.awkward[3..<6]), Array(Self.awkward[6..<9]), [nil, nil, nil]],
            nextCursor: "next \"one\"")
        let bytes = page.json()
        #expect(try RowPage.nextCursor(json: bytes) == "next \"one\"")
        let all = try Self.scanned(bytes, columns: ["a", "b", "c"])
        #expect(all.rows == page.rows)
        #expect(all.next == "next \"one\"")
        let some = try Self.scanned(bytes, columns: ["c", "a"])
        #expect(some.rows == page.rows.map { [$0[2], $0[0]] })
        let empty = RowPage(columns: ["a"], rows: [], nextCursor: nil).json()
        #expect(try RowPage.nextCursor(json: empty) == nil)
        #expect(try Self.scanned(empty, columns: ["a"]).rows.isEmpty)
        // Another writer's order and escapes: the cursor last is found by reading the whole page.
        let text = #" { "columns" : [ "x" , "y" ] , "rows" : [ [ "\u00e9\ud83d\ude00" , null ] , [ "\/\n" , "z" ] ] , "next_cursor" : "9" } "#
        #expect(try RowPage.nextCursor(json: Array(text.utf8)) == "9")
        #expect(try Self.scanned(Array(text.utf8), columns: ["y", "x"]).rows == [[nil, "é😀"], ["z", "/\n"]])
    }

    @Test("scan refuses what RowPage(json:) refuses, a missing column, and rows before their columns", arguments: [
        #"{"columns":["a"],"rows":[["x"]]"#,
        #"{"columns":["a"],"rows":[["x]]}"#,
        #"{"columns":["a"],"rows":[["\ud83d"]]}"#,
        #"{"columns":["a"],"rows":[["\x"]]}"#,
        "{\"columns\":[\"a\"],\"rows\":[[\"tab\there\"]]}",
        #"{"columns":["a"],"rows":[[1]]}"#,
        #"{"columns":["a"],"rows":[["x","y"]]}"#,  // a long row
        #"{"columns":["a","b"],"rows":[["x"]]}"#,  // a short row
        #"{"columns":["b"],"rows":[["x"]]}"#,  // no column a
        #"{"rows":[["x"]],"columns":["a"]}"#,  // rows first
        #"{"columns":["a"],"rows":[["x"]],"extra":1}"#,
        #"{"columns":[],"rows":[]} x"#,
        "",
    ])
    func scanMalformed(text: String) {
        #expect(throws: RowPageError.self) { try RowPage.scan(json: Array(text.utf8), columns: ["a"]) { _ in } }
    }
}
