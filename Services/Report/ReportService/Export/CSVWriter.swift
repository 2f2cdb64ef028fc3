import Contracts
import NIOCore

/// RFC 4180 CSV into a byte buffer: fields separated by commas, records ended by CRLF, a field quoted when it holds a
/// comma, a quote, CR or LF (or starts or ends with a space), with quotes doubled. UTF-8 throughout. A null cell is
/// an empty field.
struct CSVWriter {
    var buffer: ByteBuffer

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func write(_ fields: [String?]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            if let field { write(field: field) }
        }
        buffer.writeInteger(UInt8(ascii: "\r"))
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// A row read from a `RowPage` without strings: its cells' bytes are copied in as they are.
    mutating func write(_ row: RowPage.ScannedRow) {
        for index in 0..<row.count {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            if let cell = row[index] { write(field: cell.assumingMemoryBound(to: UInt8.self)) }
        }
        buffer.writeInteger(UInt8(ascii: "\r"))
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    private mutating func write(field: String) {
        var field = field
        field.withUTF8 { bytes in write(field: bytes) }
    }

    private mutating func write(field bytes: UnsafeBufferPointer<UInt8>) {
        var needsQuotes = false
        for byte in bytes where byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == 0x0a || byte == 0x0d {
            needsQuotes = true
            break
        }
        if let first = bytes.first, first == 0x20 { needsQuotes = true }
        if let last = bytes.last, last == 0x20 { needsQuotes = true }
        guard needsQuotes else {
            buffer.writeBytes(bytes)
            return
        }
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\"") {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart...index]))
            buffer.writeInteger(UInt8(ascii: "\""))
            runStart = index + 1
        }
        if runStart < bytes.count {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart...]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
