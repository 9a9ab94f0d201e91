/// Which kind of document brought money in.
public enum OriginKind: String, Sendable, Hashable, CaseIterable {
    case payment
    case creditNote = "credit_note"
    case bankCredit = "bank_credit"
}

/// The payment, bank credit or credit note a piece of money came from. Money keeps its origin
/// through credit and applications so a refund takes back exactly its own money.
public struct MoneyOrigin: Hashable, Sendable, CustomStringConvertible {
    public let kind: OriginKind
    public let id: String
    public init(_ kind: OriginKind, _ id: String) { self.kind = kind; self.id = id }
    public var description: String { "\(kind.rawValue) \(id)" }
}

/// Unapplied credit from one origin. `id` is nil until stored.
public struct CreditLot: Hashable, Sendable {
    public let id: Int64?
    public let origin: MoneyOrigin
    public let original: Money
    public internal(set) var remaining: Money
    /// A held allocation: kept for an invoice not yet issued, not spent on others (SPEC "Money rules").
    public internal(set) var reservedForInvoice: String?

    public init(id: Int64?, origin: MoneyOrigin, original: Money, remaining: Money, reservedForInvoice: String?) {
        precondition(original.isPositive && !remaining.isNegative && remaining <= original)
        self.id = id
        self.origin = origin
        self.original = original
        self.remaining = remaining
        self.reservedForInvoice = reservedForInvoice
    }
}

/// Money of one origin applied to one invoice. `unwound` is what was later taken back.
public struct Application: Hashable, Sendable {
    public let id: Int64?
    public let invoiceID: String
    public let origin: MoneyOrigin
    public let amount: Money
    public internal(set) var unwound: Money

    public init(id: Int64?, invoiceID: String, origin: MoneyOrigin, amount: Money, unwound: Money) {
        precondition(amount.isPositive && !unwound.isNegative && unwound <= amount)
        self.id = id
        self.invoiceID = invoiceID
        self.origin = origin
        self.amount = amount
        self.unwound = unwound
    }

    public var standing: Money { amount - unwound }
}

/// A decision refused for business reasons; `code` is a stable rejection code.
public struct BooksRejection: Error, Equatable, Sendable {
    public let code: String
    public let detail: String
    public init(_ code: String, _ detail: String) { self.code = code; self.detail = detail }

    public static func invalidState(_ detail: String) -> BooksRejection { BooksRejection("invalid_state", detail) }
    public static func currencyMismatch(_ detail: String) -> BooksRejection { BooksRejection("currency_mismatch", detail) }
    public static func foreignReference(_ detail: String) -> BooksRejection { BooksRejection("foreign_reference", detail) }
}

/// An invoice whose status moved during one decision (`from` is nil for a new invoice): one fact.
/// `sequence` numbers the invoice's committed transitions (1 = the first, its issue), so
/// (invoice id, sequence) names this transition whichever message caused it and however often that
/// message is re-applied after a rollback (`EventIdentity.invoiceStatusChanged`).
public struct InvoiceStatusChange: Hashable, Sendable {
    public let invoice: Invoice
    public let from: InvoiceStatus?
    public var to: InvoiceStatus { invoice.status }
    public var sequence: Int64 { invoice.statusSequence }
}

/// The slice of one customer's books that a decision needs, loaded by the Store, changed by the
/// pure operations below, and written back by comparing with what was loaded.
///
/// Every operation keeps these invariants (checked by property tests):
/// - each invoice: 0 <= balance <= amount, status follows balance unless final;
/// - credit lots: 0 <= remaining <= original; applications: 0 <= unwound <= amount;
/// - every journal entry balances; money is neither created nor destroyed.
public struct CustomerBooks: Sendable {
    public let customerID: String
    public internal(set) var invoices: [String: Invoice]
    /// Oldest first: stored lots by id, then new ones in creation order.
    public internal(set) var lots: [CreditLot]
    /// In the order the money was applied.
    public internal(set) var applications: [Application]
    public private(set) var journal: [JournalEntry] = []

    private let invoicesAsLoaded: [String: Invoice]
    private let creditAsLoaded: [Currency: Money]
    private let lotsAsLoaded: [Int64: CreditLot]
    private let applicationsAsLoaded: [Int64: Application]

    public init(customerID: String, invoices: [Invoice], lots: [CreditLot], applications: [Application]) {
        self.customerID = customerID
        self.invoices = Dictionary(uniqueKeysWithValues: invoices.map { ($0.id, $0) })
        self.lots = lots
        self.applications = applications
        self.invoicesAsLoaded = self.invoices
        self.creditAsLoaded = CustomerBooks.creditTotals(lots)
        self.lotsAsLoaded = Dictionary(uniqueKeysWithValues: lots.compactMap { lot in lot.id.map { ($0, lot) } })
        self.applicationsAsLoaded = Dictionary(uniqueKeysWithValues: applications.compactMap { app in app.id.map { ($0, app) } })
    }

    /// Stored lots whose remaining amount or reservation changed.
    public var changedLots: [CreditLot] { lots.filter { lot in lot.id.map { lotsAsLoaded[$0] != lot } ?? false } }
    /// Lots created by this decision, in creation order.
    public var newLots: [CreditLot] { lots.filter { $0.id == nil } }
    /// Stored applications partly or wholly taken back by this decision.
    public var changedApplications: [Application] {
        applications.filter { app in app.id.map { applicationsAsLoaded[$0] != app } ?? false }
    }
    /// Applications made by this decision, in the order they were made.
    public var newApplications: [Application] { applications.filter { $0.id == nil } }

    // MARK: reading

    /// Unapplied credit per currency (reserved allocations included: the money is the customer's).
    public var credit: [Currency: Money] { CustomerBooks.creditTotals(lots) }

    public func credit(in currency: Currency) -> Money { credit[currency] ?? .zero(currency) }

    /// What the loaded invoices in `currency` that are open or partially paid still owe: the
    /// customer's balance in it when the books were loaded with every open invoice in it.
    public func openBalance(in currency: Currency) -> Money {
        var minor: Int64 = 0
        for invoice in invoices.values where invoice.currency == currency && invoice.status.isOpen {
            minor += invoice.balance.minorUnits
        }
        return Money(minorUnits: minor, currency: currency)
    }

    /// Invoices whose status differs from when the books were loaded, new ones included: the net
    /// transition of this decision per invoice, numbered by the invoice's transition sequence.
    public var statusChanges: [InvoiceStatusChange] {
        changedInvoices
            .filter { invoicesAsLoaded[$0.id]?.status != $0.status }
            .map { InvoiceStatusChange(invoice: $0, from: invoicesAsLoaded[$0.id]?.status) }
    }

    /// Currencies whose credit total moved, with the new total.
    public var creditChanges: [Money] {
        let now = credit
        let currencies = Set(now.keys).union(creditAsLoaded.keys)
        return currencies.sorted().compactMap { currency in
            let after = now[currency] ?? .zero(currency)
            let before = creditAsLoaded[currency] ?? .zero(currency)
            return after == before ? nil : after
        }
    }

    /// Invoices that were changed or created (for the Store to write back), by id. An invoice whose
    /// status differs from the loaded one has its `statusSequence` advanced by exactly one: however
    /// many times the status moved inside this decision, the decision commits one transition.
    public var changedInvoices: [Invoice] {
        invoices.values.filter { invoicesAsLoaded[$0.id] != $0 }.sorted { $0.id < $1.id }.map { invoice in
            let loaded = invoicesAsLoaded[invoice.id]
            guard loaded?.status != invoice.status else { return invoice }
            var advanced = invoice
            advanced.statusSequence = (loaded?.statusSequence ?? 0) + 1
            return advanced
        }
    }

    static func creditTotals(_ lots: [CreditLot]) -> [Currency: Money] {
        var totals: [Currency: Money] = [:]
        for lot in lots where lot.remaining.isPositive {
            totals[lot.original.currency, default: .zero(lot.original.currency)] += lot.remaining
        }
        return totals
    }

    // MARK: invoices

    /// Opens a new invoice, then applies held allocations reserved for it and the customer's
    /// unapplied credit in its currency, oldest first (SPEC "Money rules").
    public mutating func issue(_ invoice: Invoice) {
        precondition(invoices[invoice.id] == nil && invoice.customerID == customerID)
        invoices[invoice.id] = invoice
        if invoice.amount.isPositive {
            post(.invoiceIssued, invoice.currency, reference: invoice.id, [
                .debit(.receivable, invoice.amount, invoice: invoice.id),
                .credit(.revenue, invoice.amount),
            ])
        }
        // Held allocations for this invoice go first; any in another currency become plain credit.
        var reserved: [Int] = []
        for index in lots.indices where lots[index].reservedForInvoice == invoice.id {
            lots[index].reservedForInvoice = nil
            if lots[index].original.currency == invoice.currency { reserved.append(index) }
        }
        applyAvailableCredit(to: invoice.id, lotOrder: reserved + lots.indices.filter { !reserved.contains($0) })
    }

    /// Sets a new invoice total; an excess of applied money over it becomes credit.
    public mutating func adjust(invoiceID: String, to newAmount: Money) throws(BooksRejection) {
        guard var invoice = invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) not loaded") }
        guard newAmount.currency == invoice.currency else {
            throw .currencyMismatch("invoice \(invoiceID) is in \(invoice.currency), the adjustment in \(newAmount.currency)")
        }
        guard !invoice.status.isFinal else { throw .invalidState("invoice \(invoiceID) is \(invoice.status.rawValue) and cannot be adjusted") }
        let oldAmount = invoice.amount
        let oldBalance = invoice.balance
        guard newAmount != oldAmount else { return }
        let excess = invoice.adjust(to: newAmount)
        invoices[invoiceID] = invoice
        if newAmount > oldAmount {
            post(.invoiceAdjusted, invoice.currency, reference: invoiceID, [
                .debit(.receivable, newAmount - oldAmount, invoice: invoiceID),
                .credit(.revenue, newAmount - oldAmount),
            ])
            return
        }
        var lines: [JournalLine] = [.debit(.revenue, oldAmount - newAmount)]
        let receivableReduction = oldBalance - invoice.balance
        if receivableReduction.isPositive { lines.append(.credit(.receivable, receivableReduction, invoice: invoiceID)) }
        if excess.isPositive { lines.append(.credit(.unappliedCredit, excess)) }
        post(.invoiceAdjusted, invoice.currency, reference: invoiceID, lines)
        if excess.isPositive { unwindToCredit(invoiceID: invoiceID, amount: excess) }
    }

    /// Cancels an invoice; money applied to it becomes credit of its origins.
    public mutating func void(invoiceID: String) throws(BooksRejection) {
        guard var invoice = invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) not loaded") }
        guard !invoice.status.isFinal else { throw .invalidState("invoice \(invoiceID) is already \(invoice.status.rawValue)") }
        let outstanding = invoice.balance
        let amount = invoice.amount
        let applied = invoice.void()
        invoices[invoiceID] = invoice
        guard amount.isPositive else { return }
        var lines: [JournalLine] = [.debit(.revenue, amount)]
        if outstanding.isPositive { lines.append(.credit(.receivable, outstanding, invoice: invoiceID)) }
        if applied.isPositive { lines.append(.credit(.unappliedCredit, applied)) }
        post(.invoiceVoided, invoice.currency, reference: invoiceID, lines)
        if applied.isPositive { unwindToCredit(invoiceID: invoiceID, amount: applied) }
    }

    /// Closes the remaining balance to the write-off account.
    public mutating func writeOff(invoiceID: String) throws(BooksRejection) {
        guard var invoice = invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) not loaded") }
        guard invoice.status.isOpen else {
            throw .invalidState("invoice \(invoiceID) is \(invoice.status.rawValue): there is no balance to write off")
        }
        let remaining = invoice.writeOff()
        invoices[invoiceID] = invoice
        post(.invoiceWrittenOff, invoice.currency, reference: invoiceID, [
            .debit(.writeOff, remaining),
            .credit(.receivable, remaining, invoice: invoiceID),
        ])
    }

    // MARK: credit notes

    /// Grants a credit note: applied to the named invoice while it is open, the rest becomes
    /// credit. A named invoice not issued yet gets the credit reserved for it.
    public mutating func issueCreditNote(id: String, amount: Money, invoiceID: String?, invoiceKnown: Bool) throws(BooksRejection) {
        precondition(amount.isPositive)
        let origin = MoneyOrigin(.creditNote, id)
        var appliedAmount = Money.zero(amount.currency)
        var reservedFor: String?
        if let invoiceID {
            if let invoice = invoices[invoiceID] {
                guard invoice.currency == amount.currency else {
                    throw .currencyMismatch("credit note \(id) is in \(amount.currency), invoice \(invoiceID) in \(invoice.currency)")
                }
                if invoice.status.isOpen { appliedAmount = Money.min(amount, invoice.balance) }
            } else {
                precondition(!invoiceKnown, "invoice \(invoiceID) known but not loaded")
                reservedFor = invoiceID
            }
        }
        let rest = amount - appliedAmount
        var lines: [JournalLine] = [.debit(.creditNotes, amount)]
        if appliedAmount.isPositive, let invoiceID { lines.append(.credit(.receivable, appliedAmount, invoice: invoiceID)) }
        if rest.isPositive { lines.append(.credit(.unappliedCredit, rest)) }
        post(.creditNoteIssued, amount.currency, reference: id, lines)
        if appliedAmount.isPositive, let invoiceID {
            applyMoney(appliedAmount, from: origin, to: invoiceID)
        }
        if rest.isPositive {
            lots.append(CreditLot(id: nil, origin: origin, original: rest, remaining: rest, reservedForInvoice: reservedFor))
        }
    }

    // MARK: money movement (shared by payments and credit)

    /// Applies `money` of `origin` straight to an open invoice (no credit involved).
    mutating func applyMoney(_ money: Money, from origin: MoneyOrigin, to invoiceID: String) {
        guard var invoice = invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) not loaded") }
        invoice.apply(money)
        invoices[invoiceID] = invoice
        applications.append(Application(id: nil, invoiceID: invoiceID, origin: origin, amount: money, unwound: .zero(money.currency)))
    }

    /// Spends credit on an open invoice: lots reserved for it first, then unreserved lots of
    /// its currency oldest first, until the invoice is paid or the credit is gone.
    private mutating func applyAvailableCredit(to invoiceID: String, lotOrder: [Int]) {
        guard let invoice = invoices[invoiceID], invoice.status.isOpen else { return }
        let currency = invoice.currency
        var total = Money.zero(currency)
        for index in lotOrder {
            guard let current = invoices[invoiceID], current.balance.isPositive else { break }
            let lot = lots[index]
            guard lot.original.currency == currency, lot.reservedForInvoice == nil, lot.remaining.isPositive else { continue }
            let take = Money.min(lot.remaining, current.balance)
            lots[index].remaining -= take
            applyMoney(take, from: lot.origin, to: invoiceID)
            total += take
        }
        if total.isPositive {
            post(.creditApplied, currency, reference: invoiceID, [
                .debit(.unappliedCredit, total),
                .credit(.receivable, total, invoice: invoiceID),
            ])
        }
    }

    /// Takes `amount` of applied money off an invoice, newest application first, and returns it
    /// to credit lots of the same origins (void, downward adjustment). Journal posted by caller.
    private mutating func unwindToCredit(invoiceID: String, amount: Money) {
        var left = amount
        for index in applications.indices.reversed() where left.isPositive {
            guard applications[index].invoiceID == invoiceID, applications[index].standing.isPositive else { continue }
            let take = Money.min(applications[index].standing, left)
            applications[index].unwound += take
            left -= take
            lots.append(CreditLot(id: nil, origin: applications[index].origin, original: take, remaining: take, reservedForInvoice: nil))
        }
        precondition(left.isZero, "invoice \(invoiceID): applications loaded do not cover \(amount)")
    }

    mutating func appendLots(_ new: [CreditLot]) { lots.append(contentsOf: new) }

    mutating func post(_ kind: JournalKind, _ currency: Currency, reference: String, _ lines: [JournalLine]) {
        journal.append(JournalEntry(kind: kind, customerID: customerID, currency: currency, reference: reference, lines: lines))
    }
}
