/// Statements of account (SPEC section 5), built from the immutable journal.
///
/// A statement is a statement of the books: every movement is one journal entry, dated by the
/// UTC day it was booked (became known, in commit order), so every day boundary is a real state
/// of the books (no invoice balance below zero, no negative credit) and a statement agrees with
/// `verify`. The document's own date (invoice issue date, payment received date) is shown beside.
///
/// The balance is the customer's *net* position in one currency: receivable (open invoice
/// balances, the summary's `balance`) minus unapplied credit (the summary's `unapplied_credit`).
/// So opening + charges − credits = closing, a payment counts in full when it arrives (applied or
/// not), and credit applied to a new invoice moves nothing (it is no movement).

/// What kind of movement a journal entry is on a statement.
public enum MovementKind: String, Sendable, Hashable, CaseIterable {
    case invoice, adjustment, void, writeOff = "write_off", creditNote = "credit_note", payment, refund, reversal
    case bankCredit = "bank_credit", shortfallWriteOff = "shortfall_write_off", creditApplied = "credit_applied", other

    public init(journalKind: String) {
        switch journalKind {
        case JournalKind.invoiceIssued.rawValue: self = .invoice
        case JournalKind.invoiceAdjusted.rawValue: self = .adjustment
        case JournalKind.invoiceVoided.rawValue: self = .void
        case JournalKind.invoiceWrittenOff.rawValue: self = .writeOff
        case JournalKind.creditNoteIssued.rawValue: self = .creditNote
        case JournalKind.creditApplied.rawValue: self = .creditApplied
        case JournalKind.paymentReceived.rawValue: self = .payment
        case JournalKind.paymentRefunded.rawValue: self = .refund
        case JournalKind.paymentReversed.rawValue: self = .reversal
        case JournalKind.bankCreditReceived.rawValue: self = .bankCredit
        case JournalKind.shortfallWrittenOff.rawValue: self = .shortfallWriteOff
        default: self = .other
        }
    }
}

/// One journal entry as a statement sees it: its effect on the customer's receivable (per
/// invoice) and unapplied credit. Built from the receivable and unapplied_credit lines only.
public struct StatementPosting: Hashable, Sendable {
    public let entryID: String
    public let kind: MovementKind
    /// The business document (invoice, payment, credit note, refund id).
    public let reference: String
    public let currency: Currency
    /// When the entry became known (its commit stamp) and its place in commit order.
    public let bookedAt: Instant
    public let order: Int64
    /// Receivable debits minus credits, per invoice.
    public let receivableByInvoice: [String: Int64]
    /// Unapplied credit credits minus debits (positive: the customer's credit grows).
    public let creditChange: Int64
    public var documentDate: BusinessDate?
    public var documentNumber: String?

    public init(entryID: String, kind: MovementKind, reference: String, currency: Currency, bookedAt: Instant, order: Int64,
                receivableByInvoice: [String: Int64], creditChange: Int64, documentDate: BusinessDate? = nil, documentNumber: String? = nil) {
        self.entryID = entryID
        self.kind = kind
        self.reference = reference
        self.currency = currency
        self.bookedAt = bookedAt
        self.order = order
        self.receivableByInvoice = receivableByInvoice
        self.creditChange = creditChange
        self.documentDate = documentDate
        self.documentNumber = documentNumber
    }

    /// The statement's view of a journal entry: its receivable lines by invoice and its
    /// unapplied-credit lines (the same reading the Store's SQL does).
    public init(entry: JournalEntry, entryID: String, bookedAt: Instant, order: Int64) {
        var receivable: [String: Int64] = [:]
        var credit: Int64 = 0
        for line in entry.lines {
            if line.account == .receivable { receivable[line.invoiceID ?? "", default: 0] += line.debit - line.credit }
            if line.account == .unappliedCredit { credit += line.credit - line.debit }
        }
        self.init(entryID: entryID, kind: MovementKind(journalKind: entry.kind.rawValue), reference: entry.reference, currency: entry.currency,
                  bookedAt: bookedAt, order: order, receivableByInvoice: receivable, creditChange: credit)
    }

    public var bookedOn: BusinessDate { bookedAt.date() }
    public var receivableChange: Int64 { receivableByInvoice.values.reduce(0, +) }
    /// The change of the net balance: what the customer owes more (+) or less (−).
    public var amount: Int64 { receivableChange - creditChange }
}

/// Receivable by how long it has been due, at one date: current = not yet due.
public struct AgingBuckets: Hashable, Sendable {
    public var current: Int64 = 0
    public var days1to30: Int64 = 0
    public var days31to60: Int64 = 0
    public var days61to90: Int64 = 0
    public var over90: Int64 = 0

    public init() {}

    public var total: Int64 { current + days1to30 + days31to60 + days61to90 + over90 }
    public var all: [Int64] { [current, days1to30, days31to60, days61to90, over90] }
    public static let labels = ["current", "1-30", "31-60", "61-90", "90+"]
    public static let keys = ["current", "days_1_30", "days_31_60", "days_61_90", "days_over_90"]

    /// 0 = current (due date today or later), 1 = 1–30 days past due, ..., 4 = more than 90.
    public static func bucket(daysPastDue: Int) -> Int {
        switch daysPastDue {
        case ...0: return 0
        case 1...30: return 1
        case 31...60: return 2
        case 61...90: return 3
        default: return 4
        }
    }

    public mutating func add(_ amount: Int64, daysPastDue: Int) {
        switch AgingBuckets.bucket(daysPastDue: daysPastDue) {
        case 0: current += amount
        case 1: days1to30 += amount
        case 2: days31to60 += amount
        case 3: days61to90 += amount
        default: over90 += amount
        }
    }

    public static func + (a: AgingBuckets, b: AgingBuckets) -> AgingBuckets {
        var sum = a
        sum.current += b.current; sum.days1to30 += b.days1to30; sum.days31to60 += b.days31to60
        sum.days61to90 += b.days61to90; sum.over90 += b.over90
        return sum
    }
}

/// An invoice's receivable at a date, with what aging needs.
public struct InvoiceBalance: Hashable, Sendable {
    public let invoiceID: String
    public let dueDate: BusinessDate
    public let balance: Int64
    public init(invoiceID: String, dueDate: BusinessDate, balance: Int64) {
        self.invoiceID = invoiceID
        self.dueDate = dueDate
        self.balance = balance
    }
}

/// What the Store reads for one currency of a statement (the same sums `aggregate` computes).
public struct StatementInputs: Hashable, Sendable {
    public let currency: Currency
    /// Receivable and unapplied credit at the end of the day before `from`.
    public let openingReceivable: Int64
    public let openingCredit: Int64
    /// Entries booked from `from` to `to` (inclusive), in commit order.
    public let postings: [StatementPosting]
    /// Invoices with a receivable other than zero at the end of `to`.
    public let invoiceBalances: [InvoiceBalance]

    public init(currency: Currency, openingReceivable: Int64, openingCredit: Int64, postings: [StatementPosting], invoiceBalances: [InvoiceBalance]) {
        self.currency = currency
        self.openingReceivable = openingReceivable
        self.openingCredit = openingCredit
        self.postings = postings
        self.invoiceBalances = invoiceBalances
    }

    /// The inputs from a whole journal (every posting of the customer), for one currency: the
    /// reference the Store's SQL sums are tested against. `dueDates` covers every invoice.
    public static func aggregate(_ journal: [StatementPosting], currency: Currency, dueDates: [String: BusinessDate],
                                 from: BusinessDate, to: BusinessDate) -> StatementInputs {
        let mine = journal.filter { $0.currency == currency && $0.bookedOn <= to }.sorted { $0.order < $1.order }
        var openingReceivable: Int64 = 0
        var openingCredit: Int64 = 0
        var perInvoice: [String: Int64] = [:]
        var inRange: [StatementPosting] = []
        for posting in mine {
            if posting.bookedOn < from {
                openingReceivable += posting.receivableChange
                openingCredit += posting.creditChange
            } else {
                inRange.append(posting)
            }
            for (invoice, change) in posting.receivableByInvoice { perInvoice[invoice, default: 0] += change }
        }
        let balances = perInvoice.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map { invoice, balance in
            InvoiceBalance(invoiceID: invoice, dueDate: dueDates[invoice] ?? to, balance: balance)
        }
        return StatementInputs(currency: currency, openingReceivable: openingReceivable, openingCredit: openingCredit,
                               postings: inRange, invoiceBalances: balances)
    }
}

/// One line of a statement: an entry that changed the net balance, with the balance after it.
public struct StatementMovement: Hashable, Sendable {
    public let posting: StatementPosting
    public let runningBalance: Int64
    public var amount: Int64 { posting.amount }
}

/// The statement of one currency for [from, to].
public struct CurrencyStatement: Hashable, Sendable {
    public let currency: Currency
    public let openingBalance: Int64
    public let movements: [StatementMovement]
    /// Sum of the positive movements and of the negative ones (as a positive number).
    public let charges: Int64
    public let credits: Int64
    public let closingBalance: Int64
    /// Closing receivable (= aging total) and unapplied credit; closing = receivable − credit.
    public let closingReceivable: Int64
    public let closingCredit: Int64
    public let aging: AgingBuckets

    /// Builds the statement: running balances from the opening, aging of the invoice balances at
    /// `to` by days past due. Movements that change nothing net (credit applied to an invoice)
    /// are left out: the balance does not move.
    public static func assemble(_ inputs: StatementInputs, to: BusinessDate) -> CurrencyStatement {
        let opening = inputs.openingReceivable - inputs.openingCredit
        var running = opening
        var movements: [StatementMovement] = []
        var charges: Int64 = 0
        var credits: Int64 = 0
        var receivable = inputs.openingReceivable
        var credit = inputs.openingCredit
        for posting in inputs.postings {
            receivable += posting.receivableChange
            credit += posting.creditChange
            let amount = posting.amount
            guard amount != 0 else { continue }
            running += amount
            if amount > 0 { charges += amount } else { credits -= amount }
            movements.append(StatementMovement(posting: posting, runningBalance: running))
        }
        var aging = AgingBuckets()
        for invoice in inputs.invoiceBalances { aging.add(invoice.balance, daysPastDue: to.days(since: invoice.dueDate)) }
        return CurrencyStatement(currency: inputs.currency, openingBalance: opening, movements: movements, charges: charges,
                                 credits: credits, closingBalance: running, closingReceivable: receivable, closingCredit: credit, aging: aging)
    }

    /// A currency with nothing to say (no balance, no movement) is left off a statement.
    public var isEmpty: Bool { openingBalance == 0 && movements.isEmpty && closingReceivable == 0 && closingCredit == 0 }
}

/// A customer's statement of account for [from, to], as known at an instant.
public struct StatementOfAccount: Hashable, Sendable {
    public let customerID: String
    public let customerName: String
    public let from: BusinessDate
    public let to: BusinessDate
    public let asKnownAt: Instant
    public let currencies: [CurrencyStatement]

    public init(customerID: String, customerName: String, from: BusinessDate, to: BusinessDate, asKnownAt: Instant, currencies: [CurrencyStatement]) {
        self.customerID = customerID
        self.customerName = customerName
        self.from = from
        self.to = to
        self.asKnownAt = asKnownAt
        self.currencies = currencies
    }
}

/// Why a statement request cannot be answered (stable codes, SPEC section 2 error replies).
public enum StatementRangeCheck {
    /// Longest period one statement covers (ten years of days).
    public static let maximumDays = 3_660

    /// Nil when [from, to] is a valid period, else the reason.
    public static func problem(from: BusinessDate, to: BusinessDate) -> String? {
        if to < from { return "to (\(to)) is before from (\(from))" }
        if to.days(since: from) >= maximumDays { return "a statement covers at most \(maximumDays) days; \(from) to \(to) is longer" }
        return nil
    }
}
