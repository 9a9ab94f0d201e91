import ARContract
import ARDomain
import ArgumentParser
import BankFormats
import Foundation

/// `receivablesd bank …`: bank statement files from the command line.
struct BankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bank",
        abstract: "Read bank statement files (camt.053, camt.054, BAI2, MT940).",
        subcommands: [BankParseCommand.self]
    )
}

/// `receivablesd bank parse FILE`: one JSON object per entry on stdout, a summary on stderr.
///
/// The file is read twice: a first streaming pass validates all of it (balances, control totals,
/// structure), and only then the second pass prints. A bad file therefore prints no entry at all,
/// just one error naming where, and exits with status 1.
struct BankParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Print a statement file's entries as JSON lines."
    )

    @Argument(help: "Statement file to read.")
    var file: String

    @Option(help: "auto, camt.053, camt.054, bai2 or mt940.")
    var format: String = "auto"

    @Option(help: """
        What a statement whose opening balance plus entries differs from its closing balance does:         warn (print the entries and a warning per statement on stderr), error (refuse the file),         off. BAI2 control totals and record counts are always errors.
        """)
    var balanceCheck: String = "warn"

    @Flag(help: "Same as --balance-check off.")
    var skipBalanceCheck = false

    func validate() throws {
        guard format == "auto" || BankFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be auto, camt.053, camt.054, bai2 or mt940")
        }
        guard ["warn", "error", "off"].contains(balanceCheck) else {
            throw ValidationError("--balance-check must be warn, error or off")
        }
    }

    func run() throws {
        let requested = format == "auto" ? nil : BankFormat(rawValue: format)
        let mode = skipBalanceCheck ? "off" : balanceCheck
        do {
            // "warn" parses without the parser's own balance check and reports mismatches after
            // the entries: published sample statements are often edited by hand and no longer add
            // up, and the entries are still worth seeing. Real bank files balance.
            let limits = BankParseLimits(verifiesBalances: mode == "error")
            let detected = try BankFileReader.parse(
                path: file, format: requested, limits: limits, onEntry: { _ in }, onStatement: { _ in })
            var output = JSONLinesOutput()
            var summary = EntrySummary()
            var statementNet: [Currency: Money] = [:]
            var warnings: [String] = []
            var historical: Set<String> = []
            _ = try BankFileReader.parse(
                path: file, format: detected, limits: limits,
                onEntry: { entry in
                    output.write(BankEntryJSON.render(entry))
                    summary.add(entry)
                    if entry.status == nil || entry.status == "BOOK" {  // booked entries only, as the parsers count them
                        statementNet[entry.amount.currency, default: .zero(entry.amount.currency)] += entry.signedAmount
                    }
                },
                onStatement: { statement in
                    summary.statements += 1
                    defer { statementNet = [:] }
                    let name = "statement \(statement.statementID ?? "?") (\(statement.account))"
                    if statement.currency.isHistorical, !historical.contains(statement.currency.code) {
                        historical.insert(statement.currency.code)
                        warnings.append("warning: \(name): \(statement.currency.code) is a withdrawn ISO 4217 currency, read with its historical minor unit (\(statement.currency.minorUnitDigits)); receivablesd does not book it")
                    }
                    if detected == .mt940, statement.openingBalance != nil, statement.closingBalance == nil {
                        warnings.append("warning: \(name): no closing balance (:62F:/:62M:): its entries cannot be checked against the bank's total")
                    }
                    // The formats whose balances the parser checks (BAI2 has control totals instead).
                    guard mode == "warn", detected == .mt940 || detected == .camt053,
                          let opening = statement.openingBalance?.amount, let closing = statement.closingBalance?.amount,
                          opening.currency == closing.currency else { return }
                    let expected = opening + (statementNet[opening.currency] ?? .zero(opening.currency))
                    if expected != closing {
                        warnings.append("warning: \(name): closing balance \(closing.decimalString) \(closing.currency) does not equal opening balance \(opening.decimalString) plus entries (\(expected.decimalString))")
                    }
                })
            output.flush()
            FileHandle.standardError.write(Data(summary.render(format: detected).utf8))
            for warning in warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
        } catch {
            FileHandle.standardError.write(Data("error: \(file): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Streams a file through `BankStreamParser` in 1 MiB reads; returns the format used.
enum BankFileReader {
    enum ReadError: Error, CustomStringConvertible {
        case cannotOpen(String, Int32)
        case readFailed(String, Int32)
        case bank(BankFormatError)
        var description: String {
            switch self {
            case .cannotOpen(let path, let code): "cannot open \(path): \(String(cString: strerror(code)))"
            case .readFailed(let path, let code): "cannot read \(path): \(String(cString: strerror(code)))"
            case .bank(let error): error.description
            }
        }
    }

    static func parse(
        path: String, format: BankFormat?, limits: BankParseLimits = BankParseLimits(),
        onEntry: @escaping (BankEntry) -> Void,
        onStatement: @escaping (BankStatement) -> Void
    ) throws(ReadError) -> BankFormat {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .cannotOpen(path, errno) }
        defer { close(descriptor) }
        let parser = BankStreamParser(format: format, limits: limits, onEntry: onEntry, onStatement: onStatement)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ReadError.readFailed(path, errno)
                }
                if count == 0 { break }
                try buffer.withUnsafeBytes { bytes in
                    Result { () throws(BankFormatError) in try parser.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<count])) }
                }.get()
            }
            try parser.finish()
        } catch let error as BankFormatError {
            throw .bank(error)
        } catch let error as ReadError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        guard let used = parser.detectedFormat else { preconditionFailure("finished parser without a format") }
        return used
    }
}

/// Buffered stdout for millions of lines.
struct JSONLinesOutput {
    private var buffer: [UInt8] = []
    mutating func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { flush() }
    }
    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Entries and totals per currency and direction, for the stderr summary.
struct EntrySummary {
    var statements = 0
    var entries = 0
    var totals: [String: (credits: Money, debits: Money, creditCount: Int, debitCount: Int)] = [:]

    mutating func add(_ entry: BankEntry) {
        entries += 1
        let currency = entry.amount.currency
        var total = totals[currency.code] ?? (Money.zero(currency), Money.zero(currency), 0, 0)
        if entry.creditDebit == .credit {
            total.credits += entry.amount
            total.creditCount += 1
        } else {
            total.debits += entry.amount
            total.debitCount += 1
        }
        totals[currency.code] = total
    }

    func render(format: BankFormat) -> String {
        var text = "\(format.rawValue): \(statements) statement(s), \(entries) entries\n"
        for code in totals.keys.sorted() {
            let total = totals[code]!
            text += "  \(code): \(total.creditCount) credits \(total.credits.decimalString), \(total.debitCount) debits \(total.debits.decimalString)\n"
        }
        return text
    }
}

/// The JSON line of one entry: snake_case keys, amounts as decimal strings with the currency's digits.
enum BankEntryJSON {
    static func render(_ entry: BankEntry) -> String {
        var fields: [(String, String)] = [
            ("entry_id", quote(entry.entryID)),
            ("statement_id", optional(entry.statementID)),
            ("account", quote(entry.account)),
            ("currency", quote(entry.amount.currency.code)),
            ("credit_debit", quote(entry.creditDebit.rawValue)),
            ("amount", quote(entry.amount.decimalString)),
            ("booking_date", optional(entry.bookingDate?.description)),
            ("value_date", optional(entry.valueDate?.description)),
            ("remittance_info", optional(entry.remittanceInfo)),
            ("structured_reference", optional(entry.structuredReference)),
            ("debtor_name", optional(entry.debtorName)),
            ("debtor_account", optional(entry.debtorAccount)),
            ("end_to_end_id", optional(entry.endToEndID)),
            ("bank_transaction_code", optional(entry.bankTransactionCode)),
            ("reversal", entry.reversal ? "true" : "false"),
        ]
        if let status = entry.status { fields.append(("status", quote(status))) }
        let transactions = entry.transactions.map { transaction in
            object([
                ("amount", optional(transaction.amount?.decimalString)),
                ("currency", optional(transaction.amount?.currency.code)),
                ("credit_debit", quote(transaction.creditDebit.rawValue)),
                ("bank_reference", optional(transaction.bankReference)),
                ("end_to_end_id", optional(transaction.endToEndID)),
                ("remittance_info", optional(transaction.remittanceInfo)),
                ("structured_reference", optional(transaction.structuredReference)),
                ("debtor_name", optional(transaction.debtorName)),
                ("debtor_account", optional(transaction.debtorAccount)),
                ("creditor_name", optional(transaction.creditorName)),
                ("creditor_account", optional(transaction.creditorAccount)),
                ("bank_transaction_code", optional(transaction.bankTransactionCode)),
            ])
        }
        fields.append(("transactions", "[" + transactions.joined(separator: ",") + "]"))
        return object(fields)
    }

    private static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func optional(_ text: String?) -> String { text.map(quote) ?? "null" }

    static func quote(_ text: String) -> String { JSONSerializer.serializeToString(.string(text)) }
}
