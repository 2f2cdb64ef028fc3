import Foundation
import ServerKit
import Testing

@Suite("JSONValue rendering")
struct JSONValueTests {
    @Test("strings with quotes, backslashes, control characters and non-ASCII text read back exactly")
    func escaping() throws {
        let samples = [
            "", "plain", "a \"quoted\" word", "back\\slash", "line\nbreak\r\n", "tab\there", "\u{01}\u{1f}\u{7f}",
            "Grüße, 東京 👩🏽‍💻", "ends with \\", "\"", String(repeating: "x", count: 10_000) + "\n",
        ]
        for sample in samples {
            let text = JSONValue.object([("k", .string(sample)), ("a", .array([.string(sample), .int(-3), .null]))])
                .serialized()
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(parsed["k"] as? String == sample)
            #expect((parsed["a"] as? [Any])?.first as? String == sample)
        }
    }
}
