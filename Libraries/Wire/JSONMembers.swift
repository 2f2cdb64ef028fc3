import NIOCore

/// Finds a member of a JSON object without decoding the object: the byte range of the value of a top-level key.
/// Used to hand a raw `result` to its caller (`WireClient.callRaw`). It checks only the structure it walks through
/// (strings, nesting); the value itself is left to whoever reads it.
enum JSONMembers {
    /// The range of `key`'s value in the object `buffer` holds (offsets from its reader index), or nil when the
    /// object has no such member or is not an object.
    static func range(of key: String, in buffer: ByteBuffer) -> Range<Int>? {
        buffer.withUnsafeReadableBytes { bytes in
            var scanner = Scanner(bytes: bytes)
            return scanner.member(Array(key.utf8))
        }
    }

    /// The range of `result` in an answer written as this library writes them (`{"jsonrpc":"2.0","id":<n>,"result":`
    /// then the value and a closing brace), found without reading the value; nil for any other shape. The value is
    /// then whatever lies before the final brace: its reader checks it.
    static func canonicalResult(in buffer: ByteBuffer) -> Range<Int>? {
        buffer.withUnsafeReadableBytes { bytes -> Range<Int>? in
            let head = canonicalHead
            guard bytes.count > head.count + 12 else { return nil }
            for index in 0..<head.count where bytes[index] != head[index] { return nil }
            var index = head.count
            let digitsStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > digitsStart else { return nil }
            let member = canonicalResultMember
            guard index + member.count < bytes.count else { return nil }
            for offset in 0..<member.count where bytes[index + offset] != member[offset] { return nil }
            var end = bytes.count
            while end > 0, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[end - 1]) { end -= 1 }
            guard end > index + member.count, bytes[end - 1] == UInt8(ascii: "}") else { return nil }
            return (index + member.count)..<(end - 1)
        }
    }

    private static let canonicalHead = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let canonicalResultMember = Array(#","result":"#.utf8)

    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var at = 0

        mutating func member(_ wanted: [UInt8]) -> Range<Int>? {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            skipSpace()
            if take(UInt8(ascii: "}")) { return nil }
            while true {
                skipSpace()
                guard let key = stringRange() else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                let start = at
                guard skipValue() else { return nil }
                if bytes[key].elementsEqual(wanted) { return start..<at }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                return nil
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard at < bytes.count, bytes[at] == byte else { return false }
            at += 1
            return true
        }

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        /// The range of a string's contents (without the quotes), escapes left as they are.
        mutating func stringRange() -> Range<Int>? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = at
            while at < bytes.count {
                switch bytes[at] {
                case UInt8(ascii: "\""):
                    defer { at += 1 }
                    return start..<at
                case UInt8(ascii: "\\"):
                    at += 2
                default:
                    at += 1
                }
            }
            return nil
        }

        /// Skips one value of any kind; false if the bytes end first or are not JSON's structure.
        mutating func skipValue() -> Bool {
            guard at < bytes.count else { return false }
            switch bytes[at] {
            case UInt8(ascii: "\""):
                return stringRange() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                // Nesting is counted; strings are skipped whole so that brackets inside them do not count.
                var depth = 0
                while at < bytes.count {
                    switch bytes[at] {
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                        at += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        at += 1
                        if depth == 0 { return true }
                    case UInt8(ascii: "\""):
                        guard stringRange() != nil else { return false }
                    default:
                        at += 1
                    }
                }
                return false
            default:
                // A number, true, false or null: up to the next delimiter.
                let start = at
                while at < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D]
                    .contains(bytes[at])
                {
                    at += 1
                }
                return at > start
            }
        }
    }
}
