@testable import ARContract
import Foundation
import Testing

@Suite("JSON Schema validator")
struct SchemaValidatorTests {
    /// Validates `instance` against a one-document schema set plus an optional sibling.
    func failures(_ schema: String, _ instance: String, sibling: String? = nil) throws -> [SchemaFailure] {
        var documents = ["test.json": schema]
        if let sibling { documents["other.json"] = sibling }
        let validator = try SchemaValidator(documents: documents)
        let value = try JSONParser().parse(instance)
        let result = validator.validate(value, against: "test.json")
        #expect(validator.isValid(value, against: "test.json") == result.isEmpty)
        return result
    }

    @Test("keywords", arguments: [
        (##"{"type":"string"}"##, ##""x""##, true), (##"{"type":"string"}"##, "1", false),
        (##"{"type":"integer"}"##, "1.0", true), (##"{"type":"integer"}"##, "1.5", false), (##"{"type":"number"}"##, "1", true),
        (##"{"type":["string","null"]}"##, "null", true), (##"{"enum":["a","b"]}"##, ##""c""##, false), (##"{"enum":[1,"b"]}"##, "1.0", true),
        (##"{"const":"1.0"}"##, ##""1.0""##, true), (##"{"const":true}"##, "1", false),
        (##"{"required":["a"]}"##, "{}", false), (##"{"required":["a"]}"##, "[]", true),
        (##"{"properties":{"a":{"type":"string"}},"additionalProperties":false}"##, ##"{"a":"x","b":1}"##, false),
        (##"{"patternProperties":{"^x-":{"type":"integer"}},"additionalProperties":false}"##, ##"{"x-a":1}"##, true),
        (##"{"patternProperties":{"^x-":{"type":"integer"}}}"##, ##"{"x-a":"s"}"##, false),
        (##"{"additionalProperties":{"type":"boolean"}}"##, ##"{"a":true,"b":1}"##, false),
        (##"{"propertyNames":{"pattern":"^[a-z]+$"}}"##, ##"{"A":1}"##, false),
        (##"{"dependentRequired":{"amount":["currency"]}}"##, ##"{"amount":"1"}"##, false),
        (##"{"items":{"type":"string"},"minItems":1,"maxItems":2}"##, ##"["a","b","c"]"##, false),
        (##"{"items":{"type":"string"}}"##, ##"["a",1]"##, false), (##"{"minItems":1}"##, "[]", false),
        (##"{"prefixItems":[{"type":"integer"}],"items":{"type":"string"}}"##, ##"[1,"a"]"##, true),
        (##"{"prefixItems":[{"type":"integer"}],"items":{"type":"string"}}"##, ##"["a"]"##, false),
        (##"{"uniqueItems":true}"##, ##"[1,1.0]"##, false), (##"{"uniqueItems":true}"##, ##"[{"a":1,"b":2},{"b":2,"a":1}]"##, false),
        (##"{"minLength":2,"maxLength":3}"##, ##""😀😀😀""##, true), (##"{"maxLength":2}"##, ##""abc""##, false),
        (##"{"minLength":2}"##, ##""é""##, false), (##"{"pattern":"^[0-9]+(?![\\s\\S])"}"##, "\"12\\n\"", false),
        (##"{"pattern":"b"}"##, ##""abc""##, true), (##"{"format":"date"}"##, ##""2024-02-29""##, true),
        (##"{"format":"date"}"##, ##""2023-02-29""##, false), (##"{"format":"date-time"}"##, ##""2026-01-01T00:00:00+01:00""##, true),
        (##"{"format":"date-time"}"##, ##""2026-01-01 00:00:00Z""##, false), (##"{"format":"email"}"##, ##""nope""##, true),
        (##"{"minimum":1,"maximum":100}"##, "100", true), (##"{"minimum":1}"##, "0.99", false),
        (##"{"exclusiveMaximum":1}"##, "1", false), (##"{"allOf":[{"type":"string"},{"minLength":2}]}"##, ##""a""##, false),
        (##"{"anyOf":[{"type":"string"},{"type":"null"}]}"##, "null", true), (##"{"oneOf":[{"type":"integer"},{"type":"number"}]}"##, "1", false),
        (##"{"oneOf":[{"type":"integer"},{"type":"string"}]}"##, "1", true), (##"{"not":{"type":"string"}}"##, ##""x""##, false),
        (##"{"if":{"properties":{"c":{"const":"JPY"}}},"then":{"properties":{"a":{"pattern":"^[0-9]+$"}}},"else":{"required":["x"]}}"##, ##"{"c":"JPY","a":"1.5"}"##, false),
        (##"{"if":{"properties":{"c":{"const":"JPY"}}},"then":{"required":["a"]},"else":{"required":["x"]}}"##, ##"{"c":"USD"}"##, false),
        (##"{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s"}"##, "1", false), ("true", "1", true), ("false", "1", false),
        (##"{"unknownKeyword":123,"x-rejection":"something"}"##, "1", true),
    ])
    func keyword(_ schema: String, _ instance: String, _ valid: Bool) throws {
        #expect(try failures(schema, instance).isEmpty == valid)
    }

    @Test func referencesToSiblingDocumentsResolveInTheirOwnDocument() throws {
        let sibling = ##"{"$defs":{"money":{"$ref":"#/$defs/text"},"text":{"type":"string","x-rejection":"amount_not_string"}}}"##
        let found = try failures(##"{"properties":{"amount":{"$ref":"other.json#/$defs/money"}}}"##, ##"{"amount":12.5}"##, sibling: sibling)
        #expect(found.count == 1)
        #expect(found.first?.rejection == .amountNotString)
        #expect(found.first?.instancePath == "/amount")
        #expect(found.first?.schemaPath == "other.json#/$defs/text/type")
        #expect(found.first?.fieldPath == "amount")
    }

    @Test func rejectionComesFromTheNearestAnnotatedAncestor() throws {
        let schema = ##"{"x-rejection":"outer","properties":{"a":{"type":"string"},"b":{"x-rejection":"inner","type":"string"}}}"##
        let found = try failures(schema, ##"{"a":1,"b":2}"##)
        #expect(found.map(\.rejection.rawValue) == ["outer", "inner"])
        #expect(try failures(##"{"type":"string"}"##, "1").first?.rejection == .schemaViolation)
    }

    @Test func failuresHaveInstancePaths() throws {
        let schema = ##"{"properties":{"list":{"items":{"required":["id"]}}}}"##
        let found = try failures(schema, ##"{"list":[{"id":1},{}]}"##)
        #expect(found.map(\.instancePath) == ["/list/1/id"])
        #expect(found.first?.fieldPath == "list[1].id")
    }

    @Test func brokenSchemasAreReportedAtCompileTime() {
        #expect(throws: SchemaCompileError.self) { try SchemaValidator(documents: ["test.json": ##"{"$ref":"missing.json"}"##]) }
        #expect(throws: SchemaCompileError.self) { try SchemaValidator(documents: ["test.json": ##"{"pattern":"("}"##]) }
        #expect(throws: SchemaCompileError.self) { try SchemaValidator(documents: ["test.json": ##"{"$ref":"#/$defs/nope"}"##]) }
    }

    @Test func recursiveReferencesTerminate() throws {
        let schema = ##"{"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}"##
        #expect(try failures(schema, ##"{"next":{"next":{"next":{}}}}"##).isEmpty)
        #expect(try failures(schema, ##"{"next":{"next":{"next":1}}}"##).count == 1)
    }
}

@Suite("Native pattern shapes agree with ICU")
struct NativePatternTests {
    static let samples = [
        "", "a", "abc", "ABC", "0", "12", "1234", "12345", "4242", "1.5", "1.23", "1.234", "1.2345", "10", ".", "x.1234y",
        "a\u{0}b", "tab\there", "line\nbreak", "\u{7f}", "\u{85}", "\u{9f}", "\u{a0}", "é", "😀", "abcdefghijklmnopqrst",
        "abcdefghijklmnopqrstu", "DE89370400440532013000", "1\n", "ab-c", "a b", "٣", "Ⅻ",
        "pay\u{ad}pal", "zero\u{200b}width", "\u{202e}lapyap", "\u{feff}bom", "\u{2069}", "\u{ffa}", "apple_pay", "Apple Pay",
    ]

    @Test("every native pattern in schemas/ matches exactly as ICU does")
    func nativeAgreesWithICU() throws {
        var patterns: Set<String> = ["\\.", "\\.[0-9]{2}", "\\.[0-9]{3}", "[\\x00-\\x1f\\x7f-\\x9f]", "^[a-z0-9]{1,20}(?![\\s\\S])", "^[0-9]{4}(?![\\s\\S])"]
        for text in EmbeddedSchemas.documents.values {
            collectPatterns(try JSONParser(maximumDepth: 64).parse(text), into: &patterns)
        }
        var nativeCount = 0
        for source in patterns {
            guard CompiledPattern.nativeForm(of: source) != nil else { continue }
            nativeCount += 1
            let pattern = CompiledPattern(source: source, expression: try NSRegularExpression(pattern: source))
            for sample in Self.samples {
                let icu = pattern.expression.firstMatch(in: sample, range: NSRange(location: 0, length: sample.utf16.count)) != nil
                #expect(pattern.matches(sample) == icu, "\(source) on \(sample.debugDescription)")
            }
        }
        #expect(nativeCount >= 6)
    }

    /// Every `pattern` value anywhere in a schema document.
    func collectPatterns(_ value: JSONValue, into patterns: inout Set<String>) {
        switch value {
        case .object(let object):
            for member in object {
                if member.key == "pattern", let source = member.value.stringValue { patterns.insert(source) }
                collectPatterns(member.value, into: &patterns)
            }
        case .array(let elements):
            for element in elements { collectPatterns(element, into: &patterns) }
        case .null, .bool, .number, .string:
            break
        }
    }
}
