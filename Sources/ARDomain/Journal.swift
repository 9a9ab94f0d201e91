/// The accounts of the AR journal. Cash accounts are per payment method, so the ERP can
/// reconcile each clearing account against its processor's settlement.
public struct LedgerAccount: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Amounts customers owe on invoices (asset).
    public static let receivable = LedgerAccount(rawValue: "receivable")
    /// Invoiced sales (the ERP's revenue; voids and downward adjustments debit it).
    public static let revenue = LedgerAccount(rawValue: "revenue")
    /// Credit notes granted (contra-revenue).
    public static let creditNotes = LedgerAccount(rawValue: "credit_notes")
    /// Money received and not yet applied: owed back to the customer or kept for later invoices (liability).
    public static let unappliedCredit = LedgerAccount(rawValue: "unapplied_credit")
    /// Balances written off as uncollectable (expense).
    public static let writeOff = LedgerAccount(rawValue: "write_off")
    /// Bank charges absorbed on short payments (expense).
    public static let fees = LedgerAccount(rawValue: "fees")
    /// Money paid back to customers.
    public static let refunds = LedgerAccount(rawValue: "refunds")
    /// Money taken back by card schemes and banks (chargebacks, ACH/SEPA returns).
    public static let chargebacks = LedgerAccount(rawValue: "chargebacks")
    /// Cash or clearing account of one payment method or the bank.
    public static func cash(_ method: String) -> LedgerAccount { LedgerAccount(rawValue: "cash:" + method) }

    public var description: String { rawValue }
}

/// One line of a journal entry: exactly one of debit and credit is non-zero.
public struct JournalLine: Hashable, Sendable {
    public let account: LedgerAccount
    public let debit: Int64
    public let credit: Int64
    /// The invoice a receivable line belongs to, so invoice balances can be recomputed.
    public let invoiceID: String?

    public static func debit(_ account: LedgerAccount, _ money: Money, invoice: String? = nil) -> JournalLine {
        precondition(money.isPositive)
        return JournalLine(account: account, debit: money.minorUnits, credit: 0, invoiceID: invoice)
    }

    public static func credit(_ account: LedgerAccount, _ money: Money, invoice: String? = nil) -> JournalLine {
        precondition(money.isPositive)
        return JournalLine(account: account, debit: 0, credit: money.minorUnits, invoiceID: invoice)
    }
}

/// What a journal entry records (its `kind` column and `ledger.entry_posted` field).
public enum JournalKind: String, Sendable, CaseIterable {
    case invoiceIssued = "invoice_issued"
    case invoiceAdjusted = "invoice_adjusted"
    case invoiceVoided = "invoice_voided"
    case invoiceWrittenOff = "invoice_written_off"
    case creditNoteIssued = "credit_note_issued"
    case creditApplied = "credit_applied"
    case paymentReceived = "payment_received"
    case paymentRefunded = "payment_refunded"
    case paymentReversed = "payment_reversed"
    case bankCreditReceived = "bank_credit_received"
    case shortfallWrittenOff = "shortfall_written_off"
    case payoutSettled = "payout_settled"
}

/// An immutable, balanced double-entry posting in one currency (SPEC section 5). Corrections
/// are new entries, never edits. `sequence` orders entries caused by one message.
public struct JournalEntry: Hashable, Sendable {
    public let kind: JournalKind
    public let customerID: String
    public let currency: Currency
    /// The business document the entry is about (invoice, payment, credit note id).
    public let reference: String
    public let lines: [JournalLine]

    public init(kind: JournalKind, customerID: String, currency: Currency, reference: String, lines: [JournalLine]) {
        precondition(!lines.isEmpty)
        let debits = lines.reduce(Int64(0)) { $0 + $1.debit }
        let credits = lines.reduce(Int64(0)) { $0 + $1.credit }
        precondition(debits == credits, "unbalanced journal entry \(kind) \(reference): \(debits) != \(credits)")
        self.kind = kind
        self.customerID = customerID
        self.currency = currency
        self.reference = reference
        self.lines = lines
    }

    public var total: Int64 { lines.reduce(0) { $0 + $1.debit } }
}
