extension LedgerAccount {
    /// Our bank accounts: money a bank credit brought in.
    public static let bank = LedgerAccount.cash("bank")
}

extension CustomerBooks {
    /// Books a bank credit reconciled to this customer (SPEC section 3): each allocation paid from
    /// the credit, a shortfall on it written off to fees (rule 5), the rest kept as the customer's
    /// credit. All allocations are checked before anything moves.
    ///
    /// Journal: `bank_credit_received` (bank cash in; receivables and credit out) and, when a
    /// shortfall is written off, `shortfall_written_off` (fees; receivables out). Each invoice
    /// gets one application of the money's origin for what it settles, write-off included, so
    /// its applied total keeps equalling amount − balance.
    public mutating func applyBankCredit(entryID: String, received: Money, allocations: [PlannedAllocation],
                                         cashAccount: LedgerAccount = .bank) throws(BooksRejection) -> PaymentApplicationResult {
        precondition(received.isPositive)
        let currency = received.currency
        var seen: Set<String> = []
        var paidTotal = Money.zero(currency)
        for allocation in allocations {
            guard seen.insert(allocation.invoiceID).inserted else {
                throw BooksRejection("duplicate_allocation", "invoice \(allocation.invoiceID) is allocated twice")
            }
            guard let invoice = invoices[allocation.invoiceID] else { preconditionFailure("invoice \(allocation.invoiceID) not loaded") }
            guard allocation.paid.currency == currency, invoice.currency == currency else {
                throw .currencyMismatch("invoice \(invoice.id) is in \(invoice.currency), the bank credit in \(currency)")
            }
            guard invoice.status.isOpen else {
                throw .invalidState("invoice \(invoice.id) is \(invoice.status.rawValue); no money can be applied to it")
            }
            guard allocation.settled <= invoice.balance else {
                throw BooksRejection("amount_exceeds_balance", "\(allocation.settled.decimalString) for \(invoice.id) exceeds its balance \(invoice.balance.decimalString)")
            }
            paidTotal += allocation.paid
        }
        guard paidTotal <= received else {
            throw BooksRejection("allocations_exceed_payment", "allocations total \(paidTotal.decimalString) but the bank credit is \(received.decimalString) \(currency)")
        }
        let origin = MoneyOrigin(.bankCredit, entryID)
        var result: [Allocation] = []
        var lines: [JournalLine] = [.debit(cashAccount, received)]
        var writeOffLines: [JournalLine] = []
        var writtenOff = Money.zero(currency)
        for allocation in allocations {
            applyMoney(allocation.settled, from: origin, to: allocation.invoiceID)
            if allocation.paid.isPositive {
                lines.append(.credit(.receivable, allocation.paid, invoice: allocation.invoiceID))
                result.append(Allocation(invoiceID: allocation.invoiceID, amount: allocation.paid, invoiceBalance: invoices[allocation.invoiceID]!.balance))
            }
            if allocation.writtenOff.isPositive {
                writeOffLines.append(.credit(.receivable, allocation.writtenOff, invoice: allocation.invoiceID))
                writtenOff += allocation.writtenOff
            }
        }
        let rest = received - paidTotal
        if rest.isPositive { lines.append(.credit(.unappliedCredit, rest)) }
        post(.bankCreditReceived, currency, reference: entryID, lines)
        if writtenOff.isPositive { post(.shortfallWrittenOff, currency, reference: entryID, [.debit(.fees, writtenOff)] + writeOffLines) }
        if rest.isPositive { appendLots([CreditLot(id: nil, origin: origin, original: rest, remaining: rest, reservedForInvoice: nil)]) }
        return PaymentApplicationResult(allocations: result, unapplied: rest)
    }
}

/// A card payment held in clearing until its payout reaches the bank.
public struct PayoutPayment: Hashable, Sendable {
    public let paymentID: String
    public let customerID: String
    public let amount: Money
    /// Where the payment's money was booked when it succeeded (`cash:card`, …).
    public let clearingAccount: LedgerAccount

    public init(paymentID: String, customerID: String, amount: Money, clearingAccount: LedgerAccount) {
        self.paymentID = paymentID
        self.customerID = customerID
        self.amount = amount
        self.clearingAccount = clearingAccount
    }
}

/// The journal of a payout settled by a bank credit (rule 3): bank cash ← card clearing, the
/// gateway's fees to fees. Invoices are untouched: they were paid when each payment succeeded.
public enum PayoutPosting {
    /// One balanced `payout_settled` entry per customer (entries carry a customer): its payments
    /// leave clearing; the bank amount and the fees are split over customers by the largest
    /// remainder, so the parts add up to exactly what the bank received and the gateway kept.
    public static func entries(entryID: String, received: Money, payments: [PayoutPayment]) -> [JournalEntry] {
        let currency = received.currency
        precondition(!payments.isEmpty && payments.allSatisfy { $0.amount.currency == currency && $0.amount.isPositive })
        var byCustomer: [String: [PayoutPayment]] = [:]
        for payment in payments { byCustomer[payment.customerID, default: []].append(payment) }
        let customers = byCustomer.keys.sorted()
        let totals = customers.map { customer in byCustomer[customer]!.reduce(Money.zero(currency)) { $0 + $1.amount } }
        let gross = totals.reduce(Money.zero(currency), +)
        precondition(received <= gross, "a payout credit cannot exceed its payments")
        let shares = received.split(proportionalTo: totals.map(\.minorUnits))
        var entries: [JournalEntry] = []
        for (index, customer) in customers.enumerated() {
            var lines: [JournalLine] = []
            if shares[index].isPositive { lines.append(.debit(.bank, shares[index])) }
            let fee = totals[index] - shares[index]
            if fee.isPositive { lines.append(.debit(.fees, fee)) }
            var byAccount: [LedgerAccount: Money] = [:]
            for payment in byCustomer[customer]! { byAccount[payment.clearingAccount, default: .zero(currency)] += payment.amount }
            for account in byAccount.keys.sorted(by: { $0.rawValue < $1.rawValue }) { lines.append(.credit(account, byAccount[account]!)) }
            entries.append(JournalEntry(kind: .payoutSettled, customerID: customer, currency: currency, reference: entryID, lines: lines))
        }
        return entries
    }
}

/// Reconciles bank credits one after another against one working set of facts, the way the
/// daemon processes a statement: each booking once (by identity), each decision seeing the
/// effects of the ones before it (an invoice paid by the first credit is paid for the second).
/// Pure; the daemon loads the facts, runs this, and books each decision.
public struct ReconciliationRun: Sendable {
    public private(set) var invoices: [String: InvoiceFact]
    public private(set) var payouts: [String: PayoutFact]
    public private(set) var seen: Set<BankEntryIdentity>
    /// Debtor account (`MatchKey.account`) → the customers that registered it.
    public let accountOwners: [String: [String]]
    public let oldestFirstCustomers: Set<String>
    public let policy: ReconciliationPolicy
    // Look-up indexes over the working set (keys never change; balances do, in `invoices`).
    private let byStrict: [String: [String]]
    private let byLoose: [String: [String]]
    private let byCustomer: [String: [String]]
    private let payoutsByWord: [String: [String]]

    /// - Precondition: `invoices` holds every invoice whose keys the credits' texts may name and
    ///   every open invoice of the account owners (the Store loads exactly these).
    public init(invoices: [InvoiceFact], payouts: [PayoutFact], accountOwners: [String: [String]], oldestFirstCustomers: Set<String>,
                policy: ReconciliationPolicy, alreadySeen: Set<BankEntryIdentity> = []) {
        var byID: [String: InvoiceFact] = [:]
        var byStrict: [String: [String]] = [:]
        var byLoose: [String: [String]] = [:]
        var byCustomer: [String: [String]] = [:]
        for invoice in invoices where byID[invoice.id] == nil {
            byID[invoice.id] = invoice
            byStrict[invoice.numberStrict, default: []].append(invoice.id)
            if let reference = invoice.referenceStrict, reference != invoice.numberStrict { byStrict[reference, default: []].append(invoice.id) }
            byLoose[invoice.numberLoose, default: []].append(invoice.id)
            byCustomer[invoice.customerID, default: []].append(invoice.id)
        }
        self.invoices = byID
        self.byStrict = byStrict
        self.byLoose = byLoose
        self.byCustomer = byCustomer
        var payoutsByKey: [String: PayoutFact] = [:]
        var payoutsByWord: [String: [String]] = [:]
        for payout in payouts {
            let key = Self.key(payout)
            if payoutsByKey[key] == nil { payoutsByWord[payout.payoutID.lowercasedASCII, default: []].append(key) }
            payoutsByKey[key] = payout
        }
        self.payouts = payoutsByKey
        self.payoutsByWord = payoutsByWord
        self.accountOwners = accountOwners
        self.oldestFirstCustomers = oldestFirstCustomers
        self.policy = policy
        seen = alreadySeen
    }

    static func key(_ payout: PayoutFact) -> String { payout.payoutID + "\u{1F}" + payout.gross.currency.code }

    /// The facts for one credit, from the working set (through the indexes).
    public func facts(for credit: BankCredit) -> ReconciliationFacts { facts(for: credit, scan: credit.scan) }

    /// The same, with the credit's texts already scanned (`credit.scan`), as `reconcile` does.
    public func facts(for credit: BankCredit, scan: RemittanceScan) -> ReconciliationFacts {
        var ids: Set<String> = []
        for key in scan.strictKeys { ids.formUnion(byStrict[key] ?? []) }
        for key in scan.looseKeys { ids.formUnion(byLoose[key] ?? []) }
        let owners = credit.debtorAccount.flatMap { accountOwners[$0] } ?? []
        for owner in owners {
            for id in byCustomer[owner] ?? [] where invoices[id]?.isPayable == true { ids.insert(id) }
        }
        var payoutKeys: Set<String> = []
        for word in scan.words { payoutKeys.formUnion(payoutsByWord[word] ?? []) }
        let fitting = payouts.filter { key, payout in
            payoutKeys.contains(key) || (payout.isPending && payout.gross.currency == credit.currency && payout.gross >= credit.amount)
        }.map(\.value)
        return ReconciliationFacts(invoices: ids.compactMap { invoices[$0] }, accountOwners: owners,
                                   oldestFirstCustomers: oldestFirstCustomers.intersection(owners), payouts: fitting)
    }

    /// Decides about one credit and takes its effects into the working set; nil when a booking
    /// with this identity was already reconciled (it is the same booking seen again).
    public mutating func reconcile(_ credit: BankCredit, identity: BankEntryIdentity) -> ReconciliationDecision? {
        guard seen.insert(identity).inserted else { return nil }
        let scan = credit.scan
        let decision = Reconciler.decide(credit, scan: scan, facts: facts(for: credit, scan: scan), policy: policy)
        record(decision)
        return decision
    }

    /// Takes a decision's effects (made here or manually) into the working set.
    public mutating func record(_ decision: ReconciliationDecision) {
        for allocation in decision.allocations {
            guard let invoice = invoices[allocation.invoiceID] else { continue }
            invoices[allocation.invoiceID] = invoice.settling(allocation.settled)
        }
        if let settlement = decision.payout {
            let key = settlement.payoutID + "\u{1F}" + settlement.gross.currency.code
            if let payout = payouts[key] {
                payouts[key] = PayoutFact(payoutID: payout.payoutID, gross: payout.gross, paymentCount: payout.paymentCount,
                                          settledByEntry: decision.entryID)
            }
        }
    }
}

extension EventIdentity {
    /// Money of one bank entry applied to its customer (an entry is settled once).
    public static func bankCreditConfirmed(entryID: String) -> String {
        StableID.make(["payment.confirmed", "bank_entry", entryID])
    }

    /// A bank entry matched (automatically or by a resolution; an entry is settled once).
    public static func reconciliationMatched(entryID: String) -> String {
        StableID.make(["reconciliation.matched", entryID])
    }

    /// A bank entry's automatic decision was an exception (it is decided automatically once).
    public static func reconciliationException(entryID: String) -> String {
        StableID.make(["reconciliation.exception", entryID])
    }
}
