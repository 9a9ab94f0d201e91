@testable import ARContract
import ARDomain
import Foundation
import Testing

/// SPEC section 2: "The JSON Schemas in `schemas/` are the single source of these rules, and
/// tests use them." Our validator and a standard one must agree on every example.
@Suite("Agreement with python3-jsonschema and with schemas/")
struct ContractAgreementTests {
    /// `$RECEIVABLESD_PYTHON`, else Debian's `/usr/bin/python3` (which has python3-jsonschema).
    static var python: String { ProcessInfo.processInfo.environment["RECEIVABLESD_PYTHON"] ?? "/usr/bin/python3" }

    @Test func ourValidatorAgreesWithPythonJsonschemaOnEveryExample() throws {
        let python = Self.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("\(python) not found: install python3 and python3-jsonschema (make test does), or set RECEIVABLESD_PYTHON")
            return
        }
        let script = Repository.root.appendingPathComponent("scripts/validate_examples.py").path
        let run = try Repository.run(python, [script])
        guard run.status == 0 else {
            Issue.record("scripts/validate_examples.py failed (status \(run.status)); is python3-jsonschema installed? \(run.error)")
            return
        }
        var pythonVerdicts: [String: Bool] = [:]
        for line in run.output.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count >= 2 else { continue }
            pythonVerdicts[String(fields[1])] = fields[0] == "valid"
        }
        let examples = Repository.examples()
        #expect(!examples.isEmpty)
        #expect(pythonVerdicts.count == examples.count, "python judged \(pythonVerdicts.count) files, we found \(examples.count)")
        let validator = try SchemaValidator(documents: try Repository.schemaDocuments())
        for example in examples {
            guard let pythonSaysValid = pythonVerdicts[example.relativePath] else {
                Issue.record("python did not judge \(example.relativePath)")
                continue
            }
            var oursSaysValid = false
            if validator.hasDocument(example.messageType + ".json") {
                do {
                    oursSaysValid = validator.isValid(try JSONParser().parse(example.bytes), against: example.messageType + ".json")
                } catch {
                    oursSaysValid = false  // not JSON is not valid; python reports it the same way
                }
            }
            #expect(oursSaysValid == pythonSaysValid, "\(example.relativePath): ours \(oursSaysValid), python \(pythonSaysValid)")
            #expect(pythonSaysValid == example.expectedValid, "\(example.relativePath): python says \(pythonSaysValid ? "valid" : "invalid")")
        }
    }

    /// SPEC section 2: a payment is never refused for its method. The agreement above runs over
    /// every example; this pins that the examples it runs over include real gateways' labels, so
    /// python-jsonschema and our validator are both shown to accept them.
    @Test func agreementCoversGatewayMethodLabels() throws {
        var methods: [String: String] = [:]  // label -> publishing gateway (the example's source)
        for example in Repository.examples(valid: true) where ["payment.succeeded", "payment.pending"].contains(example.messageType) {
            let document = try JSONParser().parse(example.bytes)
            if let method = document["data"]?["method"]?.stringValue { methods[method] = document["source"]?.stringValue ?? "" }
        }
        let gatewayLabels = ["ach_debit", "us_bank_account", "paypal", "link", "klarna", "giropay", "ideal", "bancontact", "sofort",
                             "afterpay_clearpay", "apple_pay", "google_pay", "venmo", "sepa_debit", "bacs_debit"]
        for label in gatewayLabels { #expect(methods[label] != nil, "no valid payment example with method \(label)") }
        #expect(methods.count >= 25, "\(methods.count) distinct method labels in the valid payment examples")
        #expect(Set(methods.values).count >= 8, "labels from \(Set(methods.values).sorted()) only")
        #expect(methods.keys.contains { PaymentMethod(rawValue: $0).family == nil }, "an unknown label among the valid examples")
    }

    @Test func embeddedSchemasAreUpToDate() throws {
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("EmbeddedSchemas-\(UUID().uuidString).swift")
        defer { try? FileManager.default.removeItem(at: temporary) }
        let run = try Repository.run("/bin/sh", [Repository.root.appendingPathComponent("scripts/embed-schemas.sh").path, temporary.path])
        #expect(run.status == 0, "embed-schemas.sh failed: \(run.error)")
        let regenerated = try String(contentsOf: temporary, encoding: .utf8)
        let committed = try String(contentsOf: Repository.root.appendingPathComponent("Sources/ARContract/EmbeddedSchemas.swift"), encoding: .utf8)
        #expect(regenerated == committed, "Sources/ARContract/EmbeddedSchemas.swift is out of date: run scripts/embed-schemas.sh")
        #expect(EmbeddedSchemas.documents == (try Repository.schemaDocuments()).mapValues { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 })
    }

    @Test func currencyListsMatchARDomain() throws {
        let common = try JSONParser(maximumDepth: 64).parse(try #require(EmbeddedSchemas.documents["common.json"]))
        let codes = try #require(common["$defs"]?["currency"]?["enum"]?.arrayValue).compactMap(\.stringValue)
        #expect(Set(codes) == Set(Currency.minorUnitDigitsByCode.keys))
        #expect(codes.count == Currency.minorUnitDigitsByCode.count)
        // Each digit class of the pairing rule lists exactly the currencies with that many digits.
        let rules = try #require(common["$defs"]?["inbound_money_digits"]?["allOf"]?.arrayValue)
        var covered: Set<String> = []
        for rule in rules {
            let listed = try #require(rule["if"]?["properties"]?["currency"]?["enum"]?.arrayValue).compactMap(\.stringValue)
            let target = try #require(rule["then"]?["$ref"]?.stringValue)
            let digits = try #require(Int(String(target.filter(\.isNumber))))
            for code in listed { #expect(Currency.minorUnitDigitsByCode[code] == digits, "\(code) is in the \(digits)-digit rule") }
            covered.formUnion(listed)
        }
        #expect(covered == Set(Currency.minorUnitDigitsByCode.keys))
    }

    @Test func schemasUseOnlyKeywordsOurValidatorImplements() throws {
        let allowed = SchemaValidator.supportedKeywords.union(SchemaValidator.annotationKeywords).union(["x-direction"])
        for (name, text) in try Repository.schemaDocuments() {
            var unknown: Set<String> = []
            collectKeywords(try JSONParser(maximumDepth: 64).parse(text), into: &unknown, allowed: allowed)
            #expect(unknown.isEmpty, "\(name) uses \(unknown.sorted())")
        }
    }

    /// Walks schema positions only (not property names, not enum values).
    func collectKeywords(_ schema: JSONValue, into unknown: inout Set<String>, allowed: Set<String>) {
        guard case .object(let object) = schema else { return }
        for member in object {
            if !allowed.contains(member.key) { unknown.insert(member.key) }
            switch member.key {
            case "properties", "patternProperties", "$defs":
                for child in member.value.objectValue ?? JSONObject() { collectKeywords(child.value, into: &unknown, allowed: allowed) }
            case "allOf", "anyOf", "oneOf", "prefixItems":
                for child in member.value.arrayValue ?? [] { collectKeywords(child, into: &unknown, allowed: allowed) }
            case "not", "if", "then", "else", "items", "additionalProperties", "propertyNames":
                collectKeywords(member.value, into: &unknown, allowed: allowed)
            default:
                break
            }
        }
    }
}
