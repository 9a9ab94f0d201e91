@testable import ARContract
import ARDomain
import Testing

@Suite("Outbound events")
struct OutboundEncodingTests {
    let usd = Currency(code: "USD")!
    let jpy = Currency(code: "JPY")!
    let time = Instant(rfc3339: "2026-03-14T09:26:53Z")!

    @Test func encodedEventsHaveFixedAttributeOrderAndValidate() throws {
        let data = JSONValue.object([
            "customer_id": JSONValue("C-1"), "currency": JSONValue(usd),
            "balance": JSONValue(Money(minorUnits: 2500, currency: usd)),
        ])
        let bytes = encodeEvent(id: "credit-C-1-7", source: "receivablesd", type: "credit_balance.changed", time: time, subject: "C-1", data: data)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"{"specversion":"1.0","id":"credit-C-1-7","source":"receivablesd","type":"credit_balance.changed","time":"2026-03-14T09:26:53.000000Z","subject":"C-1","datacontenttype":"application/json","data":{"customer_id":"C-1","currency":"USD","balance":"25.00"}}"#)
        #expect(bytes == encodeEvent(id: "credit-C-1-7", source: "receivablesd", type: "credit_balance.changed", time: time, subject: "C-1", data: data))
        let failures = sharedDecoder.validator.validate(try JSONParser().parse(bytes), against: "credit_balance.changed.json")
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func statusChangeOfANewInvoiceHasNullFromAndValidates() throws {
        let data = JSONValue.object([
            "invoice_id": JSONValue("I-1"), "customer_id": JSONValue("C-1"),
            "from": JSONValue(String?.none) { JSONValue($0) }, "to": JSONValue("open"),
            "balance": JSONValue(Money(minorUnits: 125_000, currency: jpy)), "currency": JSONValue(jpy),
            "amount": JSONValue(Money(minorUnits: 125_000, currency: jpy)),
        ])
        let bytes = encodeEvent(id: "s-1", source: "receivablesd", type: "invoice.status_changed", time: time, subject: nil, data: data)
        let value = try JSONParser().parse(bytes)
        #expect(value["subject"] == nil)
        #expect(value["data"]?["from"] == .null)
        #expect(value["data"]?["amount"] == .string("125000"))
        #expect(sharedDecoder.validator.isValid(value, against: "invoice.status_changed.json"))
    }

    @Test func omittingNilLeavesOptionalFieldsOut() {
        let value = JSONValue.object(omittingNil: ["a": JSONValue("x"), "b": nil, "c": JSONValue(3)])
        #expect(JSONSerializer.serializeToString(value) == #"{"a":"x","c":3}"#)
    }

    @Test func outboundMoneyWithWrongDigitsFailsTheSchema() throws {
        let data = JSONValue.object(["customer_id": JSONValue("C-1"), "currency": JSONValue(usd), "balance": JSONValue("25.0")])
        let bytes = encodeEvent(id: "x", source: "receivablesd", type: "credit_balance.changed", time: time, subject: nil, data: data)
        let failures = sharedDecoder.validator.validate(try JSONParser().parse(bytes), against: "credit_balance.changed.json")
        #expect(failures.map(\.rejection) == [.wrongMinorDigits])
    }
}
