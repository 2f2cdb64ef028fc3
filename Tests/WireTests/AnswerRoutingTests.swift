import NIOCore
@testable import Wire
import Testing

@Suite("Answer routing reads the id of the common shape without parsing, and defers to JSON otherwise")
struct AnswerRoutingTests {
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":17,"result":{}}"#, Int64(17)),
        (#"{"jsonrpc":"2.0","id":0,"error":{"code":-32601,"message":"x"}}"#, Int64(0)),
        (#"{"jsonrpc":"2.0","id":123456789012345678,"result":1}"#, Int64(123_456_789_012_345_678)),
    ])
    func fastPath(line: String, id: Int64) {
        #expect(WireConnection.leadingNumericID(ByteBuffer(string: line)) == id)
    }

    @Test(arguments: [
        #"{"id":17,"jsonrpc":"2.0","result":{}}"#,  // other member order: the JSON path handles it
        #"{"jsonrpc":"2.0","id":"17","result":{}}"#,  // string id
        #"{"jsonrpc":"2.0","id":null,"error":{}}"#,
        #"{"jsonrpc":"2.0","id":17"#,  // truncated
        #"{"jsonrpc":"2.0","id":1234567890123456789012,"result":1}"#,  // would overflow
        #"{"jsonrpc":"2.0","id":-1,"result":1}"#,
    ])
    func slowPath(line: String) {
        #expect(WireConnection.leadingNumericID(ByteBuffer(string: line)) == nil)
    }

    @Test("a member's value is found without decoding, whatever the order, nesting and strings around it")
    func members() {
        func value(_ key: String, _ line: String) -> String? {
            let buffer = ByteBuffer(string: line)
            return JSONMembers.range(of: key, in: buffer).map { String(buffer.getString(at: $0.lowerBound, length: $0.count)!) }
        }
        let line = #"{"id":"a\"}","x":{"result":[1,"]"]}, "result" : [ {"k":"}{"} , null ] ,"z":true}"#
        #expect(value("id", line) == #""a\"}""#)
        #expect(value("result", line) == #"[ {"k":"}{"} , null ]"#)
        #expect(value("z", line) == "true")
        #expect(value("nested", line) == nil, "only top-level members")
        #expect(value("result", #"{"jsonrpc":"2.0","id":3,"result":-12.5e3}"#) == "-12.5e3")
        #expect(value("result", #"{"jsonrpc":"2.0","id":3,"result":"#) == nil, "a value that is cut off")
        #expect(value("result", #"{"result":[1,2"#) == nil)
        #expect(value("result", "[1,2]") == nil, "not an object")
        #expect(value("result", "{}") == nil)
    }

    @Test("the result of an answer in this library's own shape is found without reading it; other shapes are not")
    func canonicalResult() {
        func value(_ line: String) -> String? {
            let buffer = ByteBuffer(string: line)
            return JSONMembers.canonicalResult(in: buffer).map { String(buffer.getString(at: $0.lowerBound, length: $0.count)!) }
        }
        #expect(value(#"{"jsonrpc":"2.0","id":42,"result":{"columns":["a"],"rows":[["}"]]}}"#) == #"{"columns":["a"],"rows":[["}"]]}"#)
        #expect(value(#"{"jsonrpc":"2.0","id":42,"result":[1,2]}"# + "\n") == "[1,2]")
        #expect(value(#"{"jsonrpc":"2.0","id":42,"error":{"code":1}}"#) == nil)
        #expect(value(#"{"jsonrpc":"2.0","id":"x","result":1}"#) == nil)
        #expect(value(#"{"id":42,"jsonrpc":"2.0","result":1}"#) == nil)
        #expect(value(#"{"jsonrpc":"2.0","id":42,"result":1"#) == nil)
    }
}
