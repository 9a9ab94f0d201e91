import ARDomain
import Foundation
import PropertyBased
import Testing

@testable import BankFormats

/// Invariants on generated statements, in every format: what the writer renders, the parsers read
/// back exactly, and balances / control totals add up.
@Suite struct PropertyTests {
    static let currencies = ["EUR", "JPY", "KWD", "USD", "CHF"].map { Currency(code: $0)! }

    /// A statement from generated amounts (positive = credit); closing = opening + credits − debits.
    static func statement(format: BankFormat, currency: Currency, openingMinorUnits: Int64, amounts: [Int64]) -> BankStatement {
        let day = BankDate(year: 2024, month: 3, day: 15)!
        var running = openingMinorUnits
        var entries: [BankEntry] = []
        for (index, amount) in amounts.enumerated() {
            let magnitude = Swift.max(1, amount.magnitude > UInt64(Int64.max) ? 1 : Int64(amount.magnitude))
            let direction: CreditDebit = amount >= 0 ? .credit : .debit
            running += direction == .credit ? magnitude : -magnitude
            entries.append(
                BankEntry(
                    entryID: "REF\(index)", statementID: "S1", account: "DE89370400440532013000", creditDebit: direction,
                    amount: Money(minorUnits: magnitude, currency: currency), bookingDate: day, valueDate: day,
                    remittanceInfo: "Invoice \(index) with a rather long remittance text that wraps over lines",
                    endToEndID: "E2E\(index)"))
        }
        return BankStatement(
            format: format, statementID: "S1", sequenceNumber: "1", account: "DE89370400440532013000", currency: currency,
            openingBalance: BankBalance(amount: Money(minorUnits: openingMinorUnits, currency: currency), date: day),
            closingBalance: BankBalance(amount: Money(minorUnits: running, currency: currency), date: day),
            entries: entries, entryCount: entries.count)
    }

    static func render(_ statements: [BankStatement], _ format: BankFormat) -> [UInt8] {
        var writer = BankStatementWriter(format: format)
        var text = writer.begin()
        for statement in statements { text += writer.write(statement) }
        text += writer.end()
        return Array(text.utf8)
    }

    static let amounts = Gen.int64(in: -99_999_999_999...99_999_999_999).array(of: 0...25)

    @Test(arguments: [BankFormat.camt053, .camt054, .mt940, .bai2])
    func balancesAddUpAndAmountsRoundTrip(format: BankFormat) async {
        await propertyCheck(
            count: 60, input: Gen.int(in: 0...4), Gen.int64(in: -9_999_999_999...9_999_999_999), Self.amounts
        ) { currencyIndex, opening, amounts in
            let currency = Self.currencies[currencyIndex]
            let generated = Self.statement(format: format, currency: currency, openingMinorUnits: opening, amounts: amounts)
            let bytes = Self.render([generated], format)
            do {
                let parsed = try BankFormats.parse(bytes, format: format)
                #expect(parsed.count == 1)
                let statement = parsed[0]
                #expect(statement.entries.map(\.amount) == generated.entries.map(\.amount))
                #expect(statement.entries.map(\.creditDebit) == generated.entries.map(\.creditDebit))
                #expect(statement.entries.map(\.entryID) == generated.entries.map(\.entryID))
                let net = statement.entries.reduce(Money.zero(currency)) { $0 + $1.signedAmount }
                #expect(statement.openingBalance.map { $0.amount + net } == statement.closingBalance?.amount)
                #expect(statement.closingBalance == generated.closingBalance)
            } catch {
                Issue.record("\(format.rawValue) refused its own rendering: \(error)")
            }
        }
    }

    @Test func alteredClosingBalanceIsCaught() async {
        await propertyCheck(count: 40, input: Gen.int64(in: 1...1_000_000), Self.amounts) { delta, amounts in
            for format in [BankFormat.camt053, .mt940] {
                var statement = Self.statement(format: format, currency: Self.currencies[0], openingMinorUnits: 0, amounts: amounts)
                statement.closingBalance?.amount += Money(minorUnits: delta, currency: Self.currencies[0])
                #expect(parseError(Self.render([statement], format), format: format) != nil)
            }
        }
    }

    @Test func bai2TotalsOnGeneratedFiles() async {
        await propertyCheck(count: 60, input: Self.amounts.array(of: 1...4), Gen.int(in: 0...4)) { accounts, currencyIndex in
            let currency = Self.currencies[currencyIndex]
            let statements = accounts.map {
                Self.statement(format: .bai2, currency: currency, openingMinorUnits: 12_345, amounts: $0)
            }
            let bytes = Self.render(statements, .bai2)
            do {
                let parsed = try BankFormats.parse(bytes, format: .bai2)
                #expect(parsed.count == statements.count)
                #expect(parsed.map(\.entries.count) == statements.map(\.entries.count))
                let parsedTotal = parsed.flatMap(\.entries).reduce(Int64(0)) { $0 + $1.amount.minorUnits }
                let generatedTotal = statements.flatMap(\.entries).reduce(Int64(0)) { $0 + $1.amount.minorUnits }
                #expect(parsedTotal == generatedTotal)
            } catch {
                Issue.record("BAI2 refused its own rendering: \(error)")
            }
            // Any change to one transaction amount breaks the control totals.
            let text = String(decoding: bytes, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("16,195,") || $0.hasPrefix("16,495,") }) {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                let changed = fields[0] + "," + fields[1] + "," + String(Int64(fields[2])! + 1) + "," + fields[3...].joined(separator: ",")
                let altered = text.replacingFirst(String(line), with: String(changed))
                #expect(parseError(Array(altered.utf8), format: .bai2)?.message.contains("control total") == true)
            }
        }
    }

    @Test func decimalAmountRoundTrip() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...999_999_999_999_999), Gen.int(in: 0...4)) { minorUnits, currencyIndex in
            let currency = Self.currencies[currencyIndex]
            let money = Money(minorUnits: minorUnits, currency: currency)
            let text = money.decimalString
            let comma = String(text.map { $0 == "." ? "," : $0 })
            do {
                #expect(try BankAmount.parseDecimal(text.utf8, separator: UInt8(ascii: "."), currency: currency) == minorUnits)
                #expect(try BankAmount.parseDecimal(comma.utf8, separator: UInt8(ascii: ","), currency: currency) == minorUnits)
                #expect(try BankAmount.parseImplied(String(minorUnits).utf8, currency: currency) == minorUnits)
            } catch {
                Issue.record("\(text) \(currency): \(error)")
            }
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
