@testable import ARContract
import Testing

@Suite("JSON parser and serializer")
struct JSONParserTests {
    let parser = JSONParser()

    @Test("accepts RFC 8259 documents", arguments: [
        "{}", "[]", "0", "-0", "1.5e-3", "\"\"", "true", "null", " {\"a\" : [1, 2.0, -3e+2, {\"b\": null}] } ",
        "\"\\u00e9\\ud83d\\ude00\\n\\/\"", "[\"é😀\"]", "{\"a\":1,\"b\":2}",
    ])
    func accepts(_ text: String) throws {
        _ = try parser.parse(text)
    }

    @Test("rejects what RFC 8259 does not allow", arguments: [
        "", "   ", "{", "[1,]", "{\"a\":1,}", "NaN", "Infinity", "-", "01", "-01", "1.", ".5", "1e", "+1", "0x10",
        "// c\n{}", "{} x", "{'a':1}", "[1 2]", "\"\\x\"", "\"\\u12\"", "\"a\u{01}\"", "\u{FEFF}{}", "tru", "nul",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "{\"a\" 1}", "[1}", "{1:2}",
    ])
    func rejects(_ text: String) {
        #expect(throws: JSONParseError.self) { try parser.parse(text) }
    }

    @Test("rejects invalid UTF-8", arguments: [
        [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
        [0x22, 0xE2, 0x82, 0x22], [0x22, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xE0, 0x80, 0x80, 0x22],
    ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try parser.parse(bytes) }
        do {
            _ = try parser.parse(bytes)
        } catch {
            #expect(error.reason == .invalidUTF8)
        }
    }

    @Test func duplicateKeysAreRejectedAtAnySize() throws {
        #expect(throws: JSONParseError(reason: .duplicateKey("a"), offset: 8)) { try parser.parse("{\"a\":1, \"a\":2}") }
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        _ = try parser.parse("{\(many)}")
        #expect(throws: JSONParseError.self) { try parser.parse("{\(many),\"k33\":0}") }
        // Nested objects have their own key space.
        _ = try parser.parse("{\"a\":{\"a\":1},\"b\":{\"a\":2}}")
    }

    @Test func depthIsBoundedWithItsOwnError() throws {
        let deepest = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try parser.parse(deepest)
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: JSONParseError(reason: .tooDeep(maximumDepth: 32), offset: 32)) { try parser.parse(tooDeep) }
        // Far past any stack: rejected at the bound, not by crashing.
        let hostile = String(repeating: "{\"a\":", count: 200_000)
        #expect(throws: JSONParseError.self) { try parser.parse(hostile) }
        #expect(throws: JSONParseError.self) { try JSONParser(maximumDepth: 2).parse("{\"a\":{\"b\":[]}}") }
    }

    @Test func numbersKeepTheirLexeme() throws {
        let value = try parser.parse("[12.50, 1E3, -0.0, 100]")
        #expect(value == .array([.number("12.50"), .number("1E3"), .number("-0.0"), .number("100")]))
        guard case .array(let elements) = value, case .number(let first) = elements[0] else {
            Issue.record("not an array of numbers")
            return
        }
        #expect(first == "12.50")
        #expect(JSONSerializer.serializeToString(value) == "[12.50,1E3,-0.0,100]")
    }

    @Test("numbers compare by value", arguments: [
        ("1", "1.0", 0), ("1e2", "100", 0), ("0.5", "5e-1", 0), ("-1", "1", -1), ("2", "10", -1), ("-0", "0", 0),
        ("123456789012345678901234567890", "123456789012345678901234567891", -1), ("1.01", "1.1", -1),
    ])
    func numberComparison(_ a: String, _ b: String, _ expected: Int) {
        #expect(JSONNumber.compare(a, b) == expected)
        #expect(JSONNumber.compare(b, a) == -expected)
    }

    @Test("integer means integral value", arguments: [("1", true), ("1.0", true), ("1.5", false), ("15e-1", false), ("1.5e1", true), ("-0", true)])
    func integral(_ lexeme: String, _ expected: Bool) {
        #expect(JSONNumber.isIntegral(lexeme) == expected)
    }

    @Test func escapesDecodeAndSerializeBack() throws {
        let value = try parser.parse("{\"t\":\"tab\\there \\\"q\\\" \\u0001 \\u00e9 \\ud83d\\ude00\"}")
        #expect(value["t"] == .string("tab\there \"q\" \u{01} é 😀"))
        let bytes = JSONSerializer.serialize(value)
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"t\":\"tab\\there \\\"q\\\" \\u0001 é 😀\"}")
        #expect(try parser.parse(bytes) == value)
    }

    @Test func serializationKeepsInsertionOrderAndIsStable() throws {
        let object = JSONValue.object(["z": .string("1"), "a": .number("2"), "m": .array([.null, .bool(true)])])
        let first = JSONSerializer.serializeToString(object)
        #expect(first == "{\"z\":\"1\",\"a\":2,\"m\":[null,true]}")
        #expect(JSONSerializer.serializeToString(try parser.parse(first)) == first)
        // Equality ignores order; serialization does not.
        #expect(object == (try parser.parse("{\"a\":2,\"m\":[null,true],\"z\":\"1\"}")))
    }

    @Test func largeObjectsLookUpByKey() throws {
        var object = JSONObject()
        for index in 0..<50 { object["k\(index)"] = .number(String(index)) }
        #expect(object["k42"] == .number("42"))
        object["k42"] = nil
        #expect(object["k42"] == nil)
        #expect(object["k43"] == .number("43"))
        #expect(object.count == 49)
    }
}
