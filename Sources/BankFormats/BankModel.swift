import ARDomain

/// The statement formats this module reads.
public enum BankFormat: String, Sendable, Hashable, CaseIterable {
    /// ISO 20022 BankToCustomerStatement (end-of-day statement).
    case camt053 = "camt.053"
    /// ISO 20022 BankToCustomerDebitCreditNotification (intraday advice).
    case camt054 = "camt.054"
    /// BAI Cash Management Balance Reporting Specification, version 2.
    case bai2
    /// SWIFT MT940 customer statement; MT942 interim reports of the same shape are read too.
    case mt940
}

/// Whether money came into the account (credit) or left it (debit), from the account holder's view.
public enum CreditDebit: String, Sendable, Hashable {
    case credit
    case debit
}

/// A calendar date as banks write it; no time zone, no time of day (SPEC: business dates are `YYYY-MM-DD`).
public struct BankDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Nil unless the triple is a real Gregorian date between years 1900 and 2999.
    public init?(year: Int, month: Int, day: Int) {
        guard (1900...2999).contains(year), (1...12).contains(month), day >= 1 else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= lengths[month - 1] else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    public static func < (a: BankDate, b: BankDate) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    /// `YYYY-MM-DD`.
    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }
}

/// Where in the input a problem was found, so an operator can open the file at that spot.
public enum BankPosition: Sendable, Hashable, CustomStringConvertible {
    /// The whole input (empty file, unknown format, size limit).
    case file
    /// A physical line, 1-based (MT940).
    case line(Int)
    /// A BAI2 record, 1-based count of physical records, with its line.
    case record(Int, line: Int)
    /// An XML element path such as `/Document/BkToCstmrStmt/Stmt[2]/Ntry[14]/Amt`, with its line.
    case element(path: String, line: Int)

    public var description: String {
        switch self {
        case .file: "file"
        case .line(let line): "line \(line)"
        case .record(let record, let line): "record \(record) (line \(line))"
        case .element(let path, let line): "\(path) (line \(line))"
        }
    }
}

/// Why a statement file was refused. The whole file is refused: no partial result is ever returned.
public struct BankFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    public let format: BankFormat?
    public let position: BankPosition
    public let message: String

    public init(format: BankFormat?, position: BankPosition, message: String) {
        self.format = format
        self.position = position
        self.message = message
    }

    public var description: String {
        "\(format?.rawValue ?? "bank file"): \(position): \(message)"
    }
}

/// A balance as reported by the bank: signed (negative = overdrawn), with the date it applies to.
public struct BankBalance: Sendable, Hashable {
    public var amount: Money
    public var date: BankDate?

    public init(amount: Money, date: BankDate?) {
        self.amount = amount
        self.date = date
    }
}

/// One underlying transaction of an entry: a batch booking (several `TxDtls` under one camt `Ntry`)
/// lists each one here; a single booking has at most one.
public struct BankTransactionDetails: Sendable, Hashable {
    /// Amount of this transaction when the bank reports it (always positive; the direction is `creditDebit`).
    public var amount: Money?
    public var creditDebit: CreditDebit
    public var bankReference: String?
    public var endToEndID: String?
    public var remittanceInfo: String?
    public var structuredReference: String?
    public var debtorName: String?
    public var debtorAccount: String?
    public var creditorName: String?
    public var creditorAccount: String?
    public var bankTransactionCode: String?

    public init(
        amount: Money? = nil, creditDebit: CreditDebit, bankReference: String? = nil, endToEndID: String? = nil,
        remittanceInfo: String? = nil, structuredReference: String? = nil, debtorName: String? = nil,
        debtorAccount: String? = nil, creditorName: String? = nil, creditorAccount: String? = nil,
        bankTransactionCode: String? = nil
    ) {
        self.amount = amount
        self.creditDebit = creditDebit
        self.bankReference = bankReference
        self.endToEndID = endToEndID
        self.remittanceInfo = remittanceInfo
        self.structuredReference = structuredReference
        self.debtorName = debtorName
        self.debtorAccount = debtorAccount
        self.creditorName = creditorName
        self.creditorAccount = creditorAccount
        self.bankTransactionCode = bankTransactionCode
    }
}

/// One booking on the account, normalised across formats.
public struct BankEntry: Sendable, Hashable {
    /// The bank's own reference for the booking (camt `AcctSvcrRef`, else `NtryRef`; MT940 `:61:` bank
    /// reference; BAI2 bank reference number). When the format gives none, a digest of the booking's
    /// fields: see `EntryIdentity` for the exact rule. `entryIDIsDigest` tells which.
    public var entryID: String
    public var entryIDIsDigest: Bool
    public var statementID: String?
    /// IBAN or the bank's account number, as the file writes it.
    public var account: String
    public var creditDebit: CreditDebit
    /// Always positive; the direction is `creditDebit`.
    public var amount: Money
    /// True for a reversal (camt `RvslInd`, MT940 `RC`/`RD`). `creditDebit` is the direction of the money
    /// in *this* booking: the reversal of a credit is a debit.
    public var reversal: Bool
    public var bookingDate: BankDate?
    public var valueDate: BankDate?
    /// Unstructured remittance text, continuation lines joined.
    public var remittanceInfo: String?
    /// ISO 11649 RF creditor reference or another structured creditor reference.
    public var structuredReference: String?
    public var debtorName: String?
    public var debtorAccount: String?
    public var endToEndID: String?
    /// camt `Domn/Fmly/SubFmlyCd` joined with "/" (or `Prtry/Cd`), MT940 transaction type (+ `?`-dialect
    /// GVC), BAI2 type code.
    public var bankTransactionCode: String?
    /// camt entry status (`BOOK`, `PDNG`, `INFO`); nil for formats without one (always booked).
    public var status: String?
    public var transactions: [BankTransactionDetails]

    public init(
        entryID: String, entryIDIsDigest: Bool = false, statementID: String?, account: String,
        creditDebit: CreditDebit, amount: Money, reversal: Bool = false, bookingDate: BankDate?,
        valueDate: BankDate?, remittanceInfo: String? = nil, structuredReference: String? = nil,
        debtorName: String? = nil, debtorAccount: String? = nil, endToEndID: String? = nil,
        bankTransactionCode: String? = nil, status: String? = nil, transactions: [BankTransactionDetails] = []
    ) {
        self.entryID = entryID
        self.entryIDIsDigest = entryIDIsDigest
        self.statementID = statementID
        self.account = account
        self.creditDebit = creditDebit
        self.amount = amount
        self.reversal = reversal
        self.bookingDate = bookingDate
        self.valueDate = valueDate
        self.remittanceInfo = remittanceInfo
        self.structuredReference = structuredReference
        self.debtorName = debtorName
        self.debtorAccount = debtorAccount
        self.endToEndID = endToEndID
        self.bankTransactionCode = bankTransactionCode
        self.status = status
        self.transactions = transactions
    }

    /// The amount signed by direction: credits positive, debits negative.
    public var signedAmount: Money { creditDebit == .credit ? amount : -amount }
}

/// One statement (camt `Stmt`/`Ntfctn`, MT940 message, BAI2 account) and its entries.
public struct BankStatement: Sendable, Hashable {
    public var format: BankFormat
    /// camt `Stmt/Id`, MT940 `:20:`, BAI2 file id number.
    public var statementID: String?
    /// camt `ElctrncSeqNb` (else `LglSeqNb`), MT940 `:28C:`, BAI2 group as-of date.
    public var sequenceNumber: String?
    public var account: String
    public var currency: Currency
    public var openingBalance: BankBalance?
    public var closingBalance: BankBalance?
    /// Filled by the in-memory API; empty in statements delivered by `BankStreamParser` (entries are
    /// delivered one by one there).
    public var entries: [BankEntry]
    /// Entries counted while parsing, also in streaming mode.
    public var entryCount: Int

    public init(
        format: BankFormat, statementID: String?, sequenceNumber: String?, account: String, currency: Currency,
        openingBalance: BankBalance?, closingBalance: BankBalance?, entries: [BankEntry], entryCount: Int
    ) {
        self.format = format
        self.statementID = statementID
        self.sequenceNumber = sequenceNumber
        self.account = account
        self.currency = currency
        self.openingBalance = openingBalance
        self.closingBalance = closingBalance
        self.entries = entries
        self.entryCount = entryCount
    }
}

/// Bounds that keep a hostile or broken file from costing unbounded memory or time.
public struct BankParseLimits: Sendable, Hashable {
    /// Largest input the in-memory API accepts (the daemon receives files base64 in a message).
    public var maximumInputBytes: Int
    /// Longest physical line of MT940/BAI2 (their specs say 65 and 80; banks send longer).
    public var maximumLineBytes: Int
    /// Longest text of one XML element, and of one joined MT940 field / BAI2 logical record.
    public var maximumFieldBytes: Int
    /// Deepest XML nesting (camt needs about 12).
    public var maximumXMLDepth: Int
    /// Most transaction details kept per entry.
    public var maximumTransactionsPerEntry: Int
    /// Check opening + entries = closing (camt.053, MT940) and MT942 `:90D:`/`:90C:` sums. On by
    /// default and in the daemon; off only to inspect files that were edited by hand (anonymised
    /// samples), never to accept a statement for reconciliation. BAI2 control totals are always checked.
    public var verifiesBalances: Bool

    public init(
        maximumInputBytes: Int = 64 << 20, maximumLineBytes: Int = 64 << 10, maximumFieldBytes: Int = 256 << 10,
        maximumXMLDepth: Int = 64, maximumTransactionsPerEntry: Int = 100_000, verifiesBalances: Bool = true
    ) {
        self.verifiesBalances = verifiesBalances
        self.maximumInputBytes = maximumInputBytes
        self.maximumLineBytes = maximumLineBytes
        self.maximumFieldBytes = maximumFieldBytes
        self.maximumXMLDepth = maximumXMLDepth
        self.maximumTransactionsPerEntry = maximumTransactionsPerEntry
    }
}
