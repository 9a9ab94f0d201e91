@testable import ARContract
import ARDomain
import Foundation
import Testing

@Suite("Examples in schemas/examples")
struct ExampleTests {
    @Test func everyMessageTypeHasAtLeastTwoValidExamples() throws {
        let documents = try Repository.schemaDocuments()
        let validator = try SchemaValidator(documents: documents)
        let types = try documents.keys.filter { name in
            let document = try JSONParser(maximumDepth: 64).parse(documents[name] ?? "")
            return document["x-direction"] != nil
        }.map { String($0.dropLast(5)) }
        #expect(types.count == 36)
        let valid = Repository.examples(valid: true)
        for type in types {
            #expect(valid.filter { $0.messageType == type }.count >= 2, "\(type) needs at least 2 valid examples")
            #expect(validator.hasDocument(type + ".json"))
        }
        #expect(Repository.examples(valid: false).count >= 60)
    }

    @Test("inbound types in code equal the schemas marked inbound")
    func inboundTypesMatchSchemas() {
        #expect(Set(InboundCommand.inboundTypes) == sharedDecoder.knownInboundTypes)
        #expect(InboundCommand.inboundTypes.count == 20)
    }

    @Test("every example gets the verdict of its folder from our validator", arguments: Repository.examples())
    func validatorVerdict(_ example: Repository.Example) throws {
        let validator = sharedDecoder.validator
        let schema = example.messageType + ".json"
        let value: JSONValue
        do {
            value = try JSONParser().parse(example.bytes)
        } catch {
            #expect(!example.expectedValid, "\(example.relativePath) is not JSON: \(error)")
            return
        }
        guard validator.hasDocument(schema) else {
            #expect(!example.expectedValid, "no schema \(schema)")
            return
        }
        let failures = validator.validate(value, against: schema)
        #expect(failures.isEmpty == example.expectedValid, "\(example.relativePath): \(failures)")
    }

    @Test("the decoder's code for each inbound example is the one in its name", arguments: Repository.examples())
    func decoderCode(_ example: Repository.Example) {
        let isOutbound = !sharedDecoder.knownInboundTypes.contains(example.messageType) && example.messageType != "invoice.paid"
        let result = sharedDecoder.decode(body: example.bytes, limits: DecodingLimits())
        switch (example.expectedValid, isOutbound, result) {
        case (true, false, .success):
            break
        case (true, false, .failure(let rejection)):
            Issue.record("\(example.relativePath) rejected: \(rejection)")
        case (true, true, .success):
            Issue.record("\(example.relativePath): an outbound type was accepted inbound")
        case (true, true, .failure(let rejection)):
            #expect(rejection.code == .unknownType)
        case (false, false, .success):
            Issue.record("\(example.relativePath) was accepted")
        case (false, false, .failure(let rejection)):
            #expect(rejection.code.rawValue == example.expectedCode, "\(example.relativePath): \(rejection)")
            #expect(!rejection.detail.isEmpty)
        case (false, true, .success):
            Issue.record("\(example.relativePath): an outbound type was accepted inbound")
        case (false, true, .failure(let rejection)):
            // Outbound examples are judged by their schema (validatorCode); inbound they are unknown.
            #expect([RejectionCode.unknownType, .notCloudEvent, .cardDataPresent].contains(rejection.code))
        }
    }

    @Test("invalid outbound examples fail with the code in their name", arguments: Repository.examples(valid: false))
    func validatorCode(_ example: Repository.Example) throws {
        guard !sharedDecoder.knownInboundTypes.contains(example.messageType),
              sharedDecoder.validator.hasDocument(example.messageType + ".json") else { return }
        let value = try JSONParser().parse(example.bytes)
        let failures = sharedDecoder.validator.validate(value, against: example.messageType + ".json")
        #expect(InboundDecoder.primaryFailure(failures)?.rejection.rawValue == example.expectedCode)
    }

    @Test("typed decoding succeeds on every valid inbound example", arguments: Repository.examples(valid: true))
    func typedDecoding(_ example: Repository.Example) throws {
        guard sharedDecoder.knownInboundTypes.contains(example.messageType) else { return }
        let message = try sharedDecoder.decode(body: example.bytes, limits: DecodingLimits()).get()
        #expect(message.envelope.type == example.messageType)
        let value = try JSONParser().parse(example.bytes)
        #expect(message.envelope.id == value["id"]?.stringValue)
        #expect(message.envelope.time == Instant(rfc3339: value["time"]?.stringValue ?? ""))
    }

    @Test func typedCommandsCarryTypedValues() throws {
        let issued = try decode("valid/invoice.issued/full.json")
        guard case .invoiceIssued(let invoice) = issued.command else {
            Issue.record("not invoice.issued: \(issued.command)")
            return
        }
        #expect(invoice.amount == Money(minorUnits: 125_000, currency: try #require(Currency(code: "JPY"))))
        #expect(invoice.issueDate == BusinessDate("2024-02-29"))
        #expect(invoice.paymentReference == "RF18539007547034")

        let payment = try decode("valid/payment.succeeded/full.json")
        guard case .paymentSucceeded(let succeeded) = payment.command else {
            Issue.record("not payment.succeeded")
            return
        }
        #expect(succeeded.allocations.map(\.amount.minorUnits) == [125_000, 75_000])
        #expect(succeeded.method == .bankTransfer)
        #expect(succeeded.receivedAt == Instant(rfc3339: "2026-03-14T09:26:50Z"))

        let statement = try decode("valid/bank.statement.received/mt940.json")
        guard case .bankStatementReceived(let file) = statement.command else {
            Issue.record("not bank.statement.received")
            return
        }
        #expect(file.format == .mt940)
        #expect(String(decoding: file.file, as: UTF8.self).hasPrefix(":20:STMT"))
        #expect(statement.envelope.extensions["seq"] == .integer(7))
        #expect(statement.envelope.extensions["final"] == .bool(true))
        #expect(statement.envelope.subject == "DE89370400440532013000")

        let resolved = try decode("valid/reconciliation.resolved/third.json")
        guard case .reconciliationResolved(let resolution) = resolved.command else {
            Issue.record("not reconciliation.resolved")
            return
        }
        #expect(resolution.resolution == .ignore)

        let adjusted = try decode("valid/invoice.adjusted/full.json")
        guard case .invoiceAdjusted(let adjustment) = adjusted.command else {
            Issue.record("not invoice.adjusted")
            return
        }
        #expect(adjustment.newTotal.text == "0")
        #expect(try adjustment.newTotal.money(in: try #require(Currency(code: "EUR"))).isZero)
    }

    func decode(_ relativePath: String) throws -> InboundMessage {
        let data = try Data(contentsOf: Repository.examples.appendingPathComponent(relativePath))
        return try sharedDecoder.decode(body: [UInt8](data), limits: DecodingLimits()).get()
    }
}

@Suite("Decoder checks outside the schemas")
struct DecoderTests {
    func body(_ text: String) -> [UInt8] { Array(text.utf8) }

    func code(_ text: String, limits: DecodingLimits = DecodingLimits()) -> RejectionCode? {
        if case .failure(let rejection) = sharedDecoder.decode(body: body(text), limits: limits) { return rejection.code }
        return nil
    }

    static let validInvoice = #"{"specversion":"1.0","id":"e1","source":"erp","type":"invoice.issued","time":"2026-03-14T09:26:53Z","data":{"invoice_id":"I1","customer_id":"C1","number":"N1","currency":"USD","amount":"10.00","issue_date":"2026-03-01","due_date":"2026-03-31"}}"#

    @Test func orderOfChecks() {
        #expect(code(Self.validInvoice) == nil)
        #expect(code(Self.validInvoice, limits: DecodingLimits(maximumBodyBytes: 100)) == .bodyTooLarge)
        #expect(code("{\"a\":") == .notJSON)
        #expect(code(String(repeating: "[", count: 40) + String(repeating: "]", count: 40)) == .tooDeep)
        #expect(code(Self.validInvoice, limits: DecodingLimits(maximumDepth: 1)) == .tooDeep)
        #expect(code(#"{"a":1,"a":2}"#) == .notJSON)
        #expect(code("[]") == .notCloudEvent)
        #expect(code(Self.validInvoice.replacingOccurrences(of: "invoice.issued", with: "payment.confirmed")) == .unknownType)
        #expect(code(Self.validInvoice.replacingOccurrences(of: "invoice.issued", with: "invoice.paid")) == .unknownType)
        // Card data wins over everything the schema would say.
        #expect(code(Self.validInvoice.replacingOccurrences(of: "\"N1\"", with: "\"4111111111111111\"")) == .cardDataPresent)
        #expect(code(#"{"pan":"x"}"#) == .cardDataPresent)
    }

    @Test func precedenceOfSchemaCodes() {
        // amount as a number and an unknown currency: amount_not_string wins.
        let both = Self.validInvoice.replacingOccurrences(of: "\"10.00\"", with: "10").replacingOccurrences(of: "USD", with: "XYZ")
        #expect(code(both) == .amountNotString)
        // unknown currency and an extra field: unknown_currency wins.
        let currencyAndExtra = Self.validInvoice.replacingOccurrences(of: "USD", with: "XYZ").replacingOccurrences(of: "\"N1\"", with: "\"N1\",\"x\":1")
        #expect(code(currencyAndExtra) == .unknownCurrency)
        // too many digits and a missing field: wrong_minor_digits wins.
        let digitsAndMissing = Self.validInvoice.replacingOccurrences(of: "10.00", with: "10.001").replacingOccurrences(of: ",\"number\":\"N1\"", with: "")
        #expect(code(digitsAndMissing) == .wrongMinorDigits)
    }

    @Test func duplicateAllocationIsRejectedByTheDecoder() {
        let payment = #"{"specversion":"1.0","id":"e2","source":"gw","type":"payment.succeeded","time":"2026-03-14T09:26:53Z","data":{"payment_id":"p","customer_id":"c","currency":"EUR","amount":"2.00","method":"card","received_at":"2026-03-14T09:26:53Z","allocations":[{"invoice_id":"I1","amount":"1.00"},{"invoice_id":"I1","amount":"1.00"}]}}"#
        let result = sharedDecoder.decode(body: body(payment), limits: DecodingLimits())
        guard case .failure(let rejection) = result else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.code == .duplicateAllocation)
        #expect(rejection.detail.contains("data.allocations[1].invoice_id"))
    }

    @Test func detailsNameTheFieldAndNeverEchoLongDigitRuns() {
        let result = sharedDecoder.decode(body: body(Self.validInvoice.replacingOccurrences(of: "\"I1\"", with: "\"123456789012\",\"extra\":true")), limits: DecodingLimits())
        guard case .failure(let rejection) = result else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.code == .schemaViolation)
        #expect(rejection.detail.contains("data.extra"))
        #expect(!rejection.detail.contains("123456789012"))
        let card = sharedDecoder.decode(body: body(Self.validInvoice.replacingOccurrences(of: "\"N1\"", with: "\"4111-1111-1111-1111\"")), limits: DecodingLimits())
        guard case .failure(let cardRejection) = card else {
            Issue.record("accepted")
            return
        }
        #expect(cardRejection.detail.hasPrefix("data.number:"))
        #expect(!cardRejection.detail.contains("1111"))
    }

    @Test("masking", arguments: [
        ("card 4111 1111 1111 1111 here", "card [digits] here"), ("amount 12345.67", "amount 12345.67"),
        ("date 2026-02-30", "date 2026-02-30"), ("acct 0012345678", "acct [digits]"),
    ])
    func masking(_ text: String, _ expected: String) {
        #expect(Rejection.masked(text) == expected)
    }
}

@Suite("Card data scan")
struct CardDataScanTests {
    @Test("card numbers", arguments: [
        ("4111111111111111", true), ("4111 1111 1111 1111", true), ("4111-1111-1111-1111", true), ("378282246310005", true),
        ("4111111111111112", false), ("4111  1111 1111 1111", false), ("411111111111", false), ("RF18539007547034", false),
        ("41111111111111111111", false), (" 4111111111111111", false), ("6011111111111117", true),
    ])
    func cardNumbers(_ text: String, _ expected: Bool) {
        #expect(CardDataScan.looksLikeCardNumber(text) == expected)
    }

    @Test("keys and values", arguments: [
        (#"{"data":{"card_number":"x"}}"#, "data.card_number"), (#"{"data":{"CVV2":"123"}}"#, "data.CVV2"),
        (#"{"data":{"card":{"number":"x"}}}"#, "data.card.number"), (#"{"data":{"card":{"exp":"12/29"}}}"#, "data.card.exp"),
        (#"{"data":{"expiry_date":"2029-12"}}"#, "data.expiry_date"), (#"{"data":{"list":["4111111111111111"]}}"#, "data.list[0]"),
        (#"{"data":{"n":4111111111111111}}"#, "data.n"), (#"{"data":{"number":"INV-1","exp":"x","expiry":"none"}}"#, nil),
        (#"{"data":{"card":{"token":"tok","brand":"visa","last4":"4242"}}}"#, nil), (#"{"data":{"track_2":"x"}}"#, "data.track_2"),
    ] as [(String, String?)])
    func scan(_ text: String, _ expected: String?) throws {
        #expect(CardDataScan.firstCardData(in: try JSONParser().parse(text)) == expected)
    }
}
