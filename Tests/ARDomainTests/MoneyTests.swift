import ARDomain
import PropertyBased
import Testing

@Suite struct MoneyParsingTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        let text: String
        let currency: Currency
        let minorUnits: Int64
        let formatted: String
        var testDescription: String { "\(text) \(currency)" }
    }

    static let valid: [Valid] = [
        Valid(text: "1250.00", currency: usd, minorUnits: 125_000, formatted: "1250.00"),
        Valid(text: "1250.5", currency: usd, minorUnits: 125_050, formatted: "1250.50"),
        Valid(text: "1250", currency: usd, minorUnits: 125_000, formatted: "1250.00"),
        Valid(text: "0.01", currency: usd, minorUnits: 1, formatted: "0.01"),
        Valid(text: "0", currency: usd, minorUnits: 0, formatted: "0.00"),
        Valid(text: "0.00", currency: usd, minorUnits: 0, formatted: "0.00"),
        Valid(text: "999999999999.99", currency: usd, minorUnits: 99_999_999_999_999, formatted: "999999999999.99"),
        Valid(text: "1250", currency: jpy, minorUnits: 1250, formatted: "1250"),
        Valid(text: "0", currency: jpy, minorUnits: 0, formatted: "0"),
        Valid(text: "12.500", currency: kwd, minorUnits: 12_500, formatted: "12.500"),
        Valid(text: "12.5", currency: kwd, minorUnits: 12_500, formatted: "12.500"),
        Valid(text: "0.001", currency: kwd, minorUnits: 1, formatted: "0.001"),
        Valid(text: "1.2345", currency: clf, minorUnits: 12_345, formatted: "1.2345"),
    ]

    @Test(arguments: valid)
    func parsesAndFormats(_ row: Valid) throws {
        let money = try Money.parse(row.text, currency: row.currency)
        #expect(money == Money(minorUnits: row.minorUnits, currency: row.currency))
        #expect(money.decimalString == row.formatted)
        #expect(money.description == row.formatted + " " + row.currency.code)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        let text: String
        let currency: Currency
        let error: MoneyParseError
        var testDescription: String { "\"\(text)\" \(currency)" }
    }

    static let invalid: [Invalid] = [
        Invalid(text: "", currency: usd, error: .empty),
        Invalid(text: "-", currency: usd, error: .negativeNotAllowed),
        Invalid(text: "-1", currency: usd, error: .negativeNotAllowed),
        Invalid(text: "-0", currency: usd, error: .negativeNotAllowed),
        Invalid(text: "+1", currency: usd, error: .malformed("+1")),
        Invalid(text: "1e3", currency: usd, error: .malformed("1e3")),
        Invalid(text: "01", currency: usd, error: .malformed("01")),
        Invalid(text: "00.50", currency: usd, error: .malformed("00.50")),
        Invalid(text: "1.", currency: usd, error: .malformed("1.")),
        Invalid(text: ".5", currency: usd, error: .malformed(".5")),
        Invalid(text: " 1", currency: usd, error: .malformed(" 1")),
        Invalid(text: "1 ", currency: usd, error: .malformed("1 ")),
        Invalid(text: "1,00", currency: usd, error: .malformed("1,00")),
        Invalid(text: "1,000.00", currency: usd, error: .malformed("1,000.00")),
        Invalid(text: "1.2.3", currency: usd, error: .malformed("1.2.3")),
        Invalid(text: "1.5x", currency: usd, error: .malformed("1.5x")),
        Invalid(text: "١٢", currency: usd, error: .malformed("١٢")),  // Arabic-Indic digits
        Invalid(text: "１２", currency: usd, error: .malformed("１２")),  // full-width digits
        Invalid(text: "1.５", currency: usd, error: .malformed("1.５")),
        Invalid(text: "1250.005", currency: usd, error: .tooManyFractionDigits(allowed: 2, found: 3)),
        Invalid(text: "1250.5", currency: jpy, error: .tooManyFractionDigits(allowed: 0, found: 1)),
        Invalid(text: "1250.0", currency: jpy, error: .tooManyFractionDigits(allowed: 0, found: 1)),
        Invalid(text: "1.2345", currency: kwd, error: .tooManyFractionDigits(allowed: 3, found: 4)),
        Invalid(text: "1000000000000", currency: usd, error: .outOfRange),  // 13 integer digits
        Invalid(text: "1000000000000", currency: jpy, error: .outOfRange),
    ]

    @Test(arguments: invalid)
    func rejects(_ row: Invalid) {
        #expect(throws: row.error) { try Money.parse(row.text, currency: row.currency) }
    }

    @Test func negativeOnlyWhenAllowed() throws {
        #expect(try Money.parse("-12.50", currency: usd, allowNegative: true) == Money(minorUnits: -1250, currency: usd))
        #expect(try Money.parse("-12.50", currency: usd, allowNegative: true).decimalString == "-12.50")
        #expect(try Money.parse("-0.001", currency: kwd, allowNegative: true).decimalString == "-0.001")
        #expect(throws: MoneyParseError.negativeNotAllowed) { try Money.parse("-12.50", currency: usd) }
        // "-0" is no form anyone should send, even where negatives are allowed.
        #expect(throws: MoneyParseError.malformed("-0")) { try Money.parse("-0", currency: usd, allowNegative: true) }
        #expect(throws: MoneyParseError.malformed("-0.00")) { try Money.parse("-0.00", currency: usd, allowNegative: true) }
        #expect(throws: MoneyParseError.malformed("-")) { try Money.parse("-", currency: usd, allowNegative: true) }
        #expect(throws: MoneyParseError.malformed("--1")) { try Money.parse("--1", currency: usd, allowNegative: true) }
    }

    /// 12 integer digits are accepted for every currency; the widest (4 minor digits) must
    /// parse exactly, and a thousand of the largest KWD amounts must still add up in Int64.
    @Test func largestAmountsNeverTrap() throws {
        let widest = "999999999999.9999"
        let result = Result { () throws(MoneyParseError) in try Money.parse(widest, currency: clf) }
        switch result {
        case .success(let money): #expect(money.decimalString == widest)
        case .failure(let error): #expect(error == .outOfRange)
        }
        let largest = try Money.parse("999999999999.999", currency: kwd)
        #expect(largest.minorUnits == 999_999_999_999_999)
        #expect((0..<1000).reduce(Money.zero(kwd)) { sum, _ in sum + largest }.minorUnits == 999_999_999_999_999_000)
    }

    @Test func formatsExtremes() {
        #expect(Money.format(minorUnits: Int64.min, digits: 2) == "-92233720368547758.08")
        #expect(Money.format(minorUnits: Int64.max, digits: 0) == "9223372036854775807")
        #expect(Money.format(minorUnits: -5, digits: 3) == "-0.005")
        #expect(Money.format(minorUnits: 5, digits: 2) == "0.05")
    }
}

@Suite struct MoneyPropertyTests {
    /// Largest minor-unit magnitude `parse` accepts for a currency: 12 integer digits.
    static func bound(_ currency: Currency) -> Int64 { 999_999_999_999 * currency.minorUnitsPerMajor + currency.minorUnitsPerMajor - 1 }

    @Test(arguments: [usd, jpy, kwd])
    func parseFormatRoundTrip(_ currency: Currency) async {
        let limit = Self.bound(currency)
        await propertyCheck(count: 500, input: Gen.int64(in: -limit...limit), Gen.int64(in: -1000...1000)) { large, small throws in
            for minorUnits in [large, small] {
                let money = Money(minorUnits: minorUnits, currency: currency)
                let parsed = Result { () throws(MoneyParseError) in try Money.parse(money.decimalString, currency: currency, allowNegative: true) }
                if minorUnits == 0 {
                    #expect(money.decimalString == (currency.minorUnitDigits == 0 ? "0" : "0." + String(repeating: "0", count: currency.minorUnitDigits)))
                }
                #expect(try parsed.get() == money)
                if minorUnits >= 0 { #expect(try Money.parse(money.decimalString, currency: currency) == money) }
            }
        }
    }

    @Test func splitSumsToWholeAndEqualWeightsDifferByOneMinorUnit() async {
        await propertyCheck(count: 1000, input: Gen.int64(in: -10_000_000...10_000_000), Gen.int(in: 1...12)) { minorUnits, parts in
            let whole = Money(minorUnits: minorUnits, currency: usd)
            let split = whole.split(proportionalTo: Array(repeating: 1, count: parts))
            #expect(split.count == parts)
            #expect(split.reduce(Money.zero(usd), +) == whole)
            let units = split.map(\.minorUnits)
            #expect(units.max()! - units.min()! <= 1)
        }
    }

    @Test func splitProportionalStaysWithinOneMinorUnitOfTheExactShare() async {
        await propertyCheck(count: 1000, input: Gen.int64(in: -10_000_000...10_000_000), Gen.int64(in: 0...1000).array(of: 1...8)) { minorUnits, weights in
            guard weights.reduce(0, +) > 0 else { return }
            let whole = Money(minorUnits: minorUnits, currency: kwd)
            let split = whole.split(proportionalTo: weights)
            #expect(split.reduce(Money.zero(kwd), +) == whole)
            let total = weights.reduce(0, +)
            for (part, weight) in zip(split, weights) {
                // |part·total − whole·weight| < total, i.e. the part is within one minor unit of its share.
                let error = (Int128(part.minorUnits) * Int128(total) - Int128(minorUnits) * Int128(weight)).magnitude
                #expect(error < UInt128(total))
                if weight == 0 { #expect(part.isZero) }
            }
        }
    }

    @Test func splitTable() {
        #expect(usd("100.00").split(proportionalTo: [1, 1, 1]).map(\.decimalString) == ["33.34", "33.33", "33.33"])
        #expect(usd("-100.00").split(proportionalTo: [1, 1, 1]).map(\.decimalString) == ["-33.34", "-33.33", "-33.33"])
        #expect(jpy("10").split(proportionalTo: [1, 2]).map(\.decimalString) == ["3", "7"])
        #expect(usd("0.01").split(proportionalTo: [0, 5]).map(\.decimalString) == ["0.00", "0.01"])
    }

    @Test func arithmeticAndComparison() {
        #expect(usd("10.00") + usd("2.50") == usd("12.50"))
        #expect(usd("10.00") - usd("12.50") == usd("-2.50"))
        #expect(-usd("1.00") == usd("-1.00"))
        #expect(usd("1.00") < usd("1.01"))
        #expect(Money.min(usd("3.00"), usd("2.00")) == usd("2.00"))
        #expect(usd("0.00").isZero && usd("0.01").isPositive && usd("-0.01").isNegative)
        // Same minor units in different currencies are different money.
        #expect(Money(minorUnits: 100, currency: usd) != Money(minorUnits: 100, currency: eur))
    }

    @Test func currencyTable() {
        #expect(Currency(code: "USD")?.minorUnitDigits == 2)
        #expect(Currency(code: "JPY")?.minorUnitDigits == 0)
        #expect(Currency(code: "KWD")?.minorUnitDigits == 3)
        #expect(Currency(code: "CLF")?.minorUnitDigits == 4)
        #expect(Currency(code: "usd") == nil)
        #expect(Currency(code: "XAU") == nil)
        #expect(Currency(code: "") == nil)
        #expect(kwd.minorUnitsPerMajor == 1000)
        #expect(jpy.minorUnitsPerMajor == 1)
    }
}
