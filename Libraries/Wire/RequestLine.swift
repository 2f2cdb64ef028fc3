import Foundation
import NIOCore
import NIOFoundationCompat

/// A request line read by hand in one pass: the envelope's members, and where the params are. The params are
/// decoded later, once the method (and so their type) is known, from their own bytes only. A line this reader does
/// not take (not an object, escapes in the envelope's strings, a member of an unexpected type) goes to the
/// `Codable` reader, which also tells a parse error from an invalid request.
struct RequestLine {
    var jsonrpc: String?
    /// `.none` when the member is absent (a notification); `.some(nil)` when it is `null`.
    var id: JSONRPCID??
    var method: String?
    var meta: WireMeta?
    /// The params' bytes, as offsets from the line's reader index; nil when absent or `null`.
    var params: Range<Int>?

    /// The line's envelope, or nil when it needs the general reader.
    static func read(_ line: ByteBuffer) -> RequestLine? {
        line.withUnsafeReadableBytes { bytes -> RequestLine? in
            var scanner = JSONMembers.Scanner(bytes: bytes)
            var request = RequestLine()
            let complete = scanner.members { key, value, scanner in
                switch key {
                case "jsonrpc":
                    guard let text = scanner.plainString(value) else { return false }
                    request.jsonrpc = text
                case "id":
                    switch bytes[value.lowerBound] {
                    case UInt8(ascii: "\""):
                        guard let text = scanner.plainString(value) else { return false }
                        request.id = .some(.string(text))
                    case UInt8(ascii: "n"):
                        guard scanner.isNull(value) else { return false }
                        request.id = .some(nil)
                    default:
                        guard let number = scanner.integer(value) else { return false }
                        request.id = .some(.number(number))
                    }
                case "method":
                    guard let text = scanner.plainString(value) else { return false }
                    request.method = text
                case "params":
                    if !scanner.isNull(value) { request.params = value }
                case "meta":
                    guard !scanner.isNull(value) else { return true }
                    guard let meta = Self.meta(in: value, bytes: bytes) else { return false }
                    request.meta = meta
                default:
                    break  // extension members are ignored
                }
                return true
            }
            return complete ? request : nil
        }
    }

    /// `meta`: `deadline_ms`, `traceparent` and `request_id` (others ignored), or nil when the general reader must.
    private static func meta(in range: Range<Int>, bytes: UnsafeRawBufferPointer) -> WireMeta? {
        var scanner = JSONMembers.Scanner(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]))
        var meta = WireMeta()
        let complete = scanner.members { key, value, scanner in
            switch key {
            case "deadline_ms":
                guard let number = scanner.integer(value), let milliseconds = Int(exactly: number) else { return false }
                meta.deadlineMS = milliseconds
            case "traceparent":
                guard let text = scanner.plainString(value) else { return false }
                meta.traceparent = text
            case "request_id":
                guard let text = scanner.plainString(value) else { return false }
                meta.requestID = text
            default:
                break
            }
            return true
        }
        return complete ? meta : nil
    }
}

extension JSONMembers.Scanner {
    /// Walks an object that spans all of `bytes` (whitespace around it allowed): `visit` gets each member's key
    /// (escape-free keys only) and the range of its value, and answers false to give up. False when the bytes are
    /// not such an object or a visit gave up.
    mutating func members(_ visit: (String, Range<Int>, inout Self) -> Bool) -> Bool {
        skipSpace()
        guard take(UInt8(ascii: "{")) else { return false }
        skipSpace()
        if !take(UInt8(ascii: "}")) {
            while true {
                skipSpace()
                guard let key = stringRange(), !bytes[key].contains(UInt8(ascii: "\\")) else { return false }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return false }
                skipSpace()
                let start = at
                guard skipValue() else { return false }
                guard visit(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[key]), as: UTF8.self), start..<at, &self)
                else { return false }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return false }
                break
            }
        }
        skipSpace()
        return at == bytes.count
    }

    /// Whether a value is `null`.
    func isNull(_ value: Range<Int>) -> Bool {
        bytes[value].elementsEqual("null".utf8)
    }

    /// The text of a string value without escapes or control characters; nil otherwise.
    func plainString(_ value: Range<Int>) -> String? {
        guard value.count >= 2, bytes[value.lowerBound] == UInt8(ascii: "\""),
            bytes[value.upperBound - 1] == UInt8(ascii: "\"")
        else { return nil }
        let inner = (value.lowerBound + 1)..<(value.upperBound - 1)
        for byte in bytes[inner] where byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[inner]), as: UTF8.self)
    }

    /// An integer value (`-`? digits, no fraction or exponent, at most 18 digits); nil otherwise.
    func integer(_ value: Range<Int>) -> Int64? {
        var index = value.lowerBound
        let negative = index < value.upperBound && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < value.upperBound, value.upperBound - index <= 18 else { return nil }
        if bytes[index] == UInt8(ascii: "0") && value.upperBound - index > 1 { return nil }  // no leading zeros
        var number: Int64 = 0
        while index < value.upperBound {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            number = number * 10 + Int64(byte - UInt8(ascii: "0"))
            index += 1
        }
        return negative ? -number : number
    }
}
