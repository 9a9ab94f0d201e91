import ARDomain
import Benchmark
import BankFormats

/// Benchmark 5: each bank format parsed from memory (`BankFormats.parse`: validation, balances,
/// control totals, normalised entries) in bytes per second, against a scan counting the line
/// breaks of the same bytes (the floor any parser pays to look at every byte once).
func registerBankFormatBenchmarks() {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident, bytesPerSecond],
        warmupIterations: 1, maxDuration: .seconds(3), maxIterations: 200)
    for format in BankFormat.allCases {
        Benchmark("bank: parse \(format.rawValue)", configuration: configuration) { benchmark, file in
            let started = ContinuousClock.now
            do {
                let statements = try BankFormats.parse(file.bytes, format: format)
                let entries = statements.reduce(0) { $0 + $1.entries.count }
                if entries != file.entries { benchmark.error("\(format.rawValue): parsed \(entries) entries, wrote \(file.entries)") }
                blackHole(statements)
            } catch {
                benchmark.error("\(format.rawValue) does not parse: \(error)")
            }
            benchmark.measurement(bytesPerSecond, rate(bytes: file.bytes.count, since: started))
        } setup: {
            GeneratedBankFile(format: format)
        }
        Benchmark("bank baseline: count newlines of the \(format.rawValue) file", configuration: configuration) { benchmark, file in
            let started = ContinuousClock.now
            var newlines = 0
            for byte in file.bytes where byte == UInt8(ascii: "\n") { newlines += 1 }
            blackHole(newlines)
            benchmark.measurement(bytesPerSecond, rate(bytes: file.bytes.count, since: started))
        } setup: {
            GeneratedBankFile(format: format)
        }
    }
}

/// Bytes parsed per second, one sample per iteration (the benchmark's own `throughput` counts
/// whole files per second; this says MB/s without knowing the file size).
let bytesPerSecond = BenchmarkMetric.custom("bytes/s", polarity: .prefersLarger, useScalingFactor: false)

private func rate(bytes: Int, since started: ContinuousClock.Instant) -> Int {
    let elapsed = ContinuousClock.now - started
    let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    return Int(Double(bytes) * 1e9 / max(nanoseconds, 1))  // a figure for humans, not money
}

/// A day of a company's bank traffic in one file: 4 statements (accounts) of 1,000 entries each.
/// Most entries are customer transfers naming an invoice in a way payers write them (number in
/// text, RF reference, several invoices, nothing useful); a third are debits (supplier payments,
/// charges). Balances add up, so the parsers' balance checks pass.
struct GeneratedBankFile: Sendable {
    static let statementCount = 4
    static let entriesPerStatement = 1_000

    let bytes: [UInt8]
    let entries: Int

    init(format: BankFormat) {
        var random = SeededGenerator(seed: 0x4241_4E4B_0001)
        var writer = BankStatementWriter(format: format)
        var text = writer.begin()
        var entries = 0
        for statementIndex in 0..<Self.statementCount {
            let statement = Self.statement(statementIndex, format: format, random: &random)
            entries += statement.entries.count
            text += writer.write(statement)
        }
        text += writer.end()
        bytes = Array(text.utf8)
        self.entries = entries
    }

    private static let accounts = ["DE89370400440532013000", "DE75512108001245126199", "FR7630006000011234567890189", "NL91ABNA0417164300"]
    private static let payers = ["Mueller Haustechnik GmbH", "SARL Dupont & Fils", "J. de Vries", "Acme Industrial Supplies Ltd",
                                 "Bäckerei Schmidt KG", "Oy Nordic Parts Ab"]

    private static func statement(_ index: Int, format: BankFormat, random: inout SeededGenerator) -> BankStatement {
        let date = BankDate(year: 2026, month: 3, day: 2 + index)!
        let account = accounts[index % accounts.count]
        let opening = Money(minorUnits: Int64.random(in: 5_000_000...90_000_000, using: &random), currency: euro)
        var closing = opening
        var entries: [BankEntry] = []
        for position in 0..<entriesPerStatement {
            let invoice = Int.random(in: 0..<100_000, using: &random)
            let amount = Money(minorUnits: invoiceAmountMinorUnits(&random), currency: euro)
            var remittance: String?
            var reference: String?
            var direction = CreditDebit.credit
            switch random.next() % 12 {
            case 0...3: remittance = "Rechnung \(invoiceNumber(invoice)) Kd-Nr \(invoice / 5) vielen Dank"
            case 4, 5: reference = creditorReference(body: "\(invoice)C\(invoice / 5)")
            case 6: remittance = "inv \(invoiceNumber(invoice).lowercased()) and \(invoiceNumber(invoice + 1).lowercased()) less bank charges"
            case 7: remittance = "Sammelueberweisung Maerz siehe Avis \(random.next() % 100_000)"
            default:
                direction = .debit
                remittance = "Lieferantenzahlung Bestellung \(random.next() % 1_000_000) / Gebuehren"
            }
            closing += direction == .credit ? amount : -amount
            // Entry ids and end-to-end ids within MT940's 16 characters.
            entries.append(BankEntry(entryID: "S\(index)E\(position)", statementID: "STM-2026-03-\(index)", account: account, creditDebit: direction,
                                     amount: amount, bookingDate: date, valueDate: date, remittanceInfo: remittance, structuredReference: reference,
                                     debtorName: payers[position % payers.count], debtorAccount: accounts[(index + 1) % accounts.count],
                                     endToEndID: "E2E\(index)X\(position)"))
        }
        return BankStatement(format: format, statementID: "STM-2026-03-\(index)", sequenceNumber: String(index + 1), account: account,
                             currency: euro, openingBalance: BankBalance(amount: opening, date: date.previousDay),
                             closingBalance: BankBalance(amount: closing, date: date), entries: entries, entryCount: entries.count)
    }
}

extension BankDate {
    fileprivate var previousDay: BankDate { day > 1 ? BankDate(year: year, month: month, day: day - 1)! : self }
}
