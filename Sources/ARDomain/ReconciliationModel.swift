/// The values reconciliation works on (SPEC section 3): a bank credit, the facts the Store loaded
/// for it through indexes, the configured tolerances, and the decision the pure `Reconciler` makes.

/// A credit on one of our bank accounts.
public struct BankCredit: Hashable, Sendable {
    public let entryID: String
    public let amount: Money
    /// `MatchKey.account` form, or nil when the bank did not say.
    public let debtorAccount: String?
    public let debtorName: String?
    public let remittanceInfo: String?
    public let structuredReference: String?
    public let endToEndID: String?

    public init(entryID: String, amount: Money, debtorAccount: String?, debtorName: String?, remittanceInfo: String?,
                structuredReference: String?, endToEndID: String?) {
        precondition(amount.isPositive, "a bank credit is positive")
        self.entryID = entryID
        self.amount = amount
        self.debtorAccount = debtorAccount.map(MatchKey.account).flatMap { $0.isEmpty ? nil : $0 }
        self.debtorName = debtorName
        self.remittanceInfo = remittanceInfo
        self.structuredReference = structuredReference
        self.endToEndID = endToEndID
    }

    public var currency: Currency { amount.currency }

    /// What the payer's texts say (references, invoice numbers, amounts, words).
    public var scan: RemittanceScan {
        RemittanceScan.scan(structuredReference: structuredReference, endToEndID: endToEndID, remittance: remittanceInfo, currency: currency)
    }
}

/// What identifies one booking across files and formats: the account it was booked on and the
/// bank's reference (or, when the bank gives none, a digest of the booking that leaves the file
/// format out, so a camt.054 and the camt.053 repeating it agree). Two bookings with the same
/// identity are the same booking: applied once (SPEC section 3).
public struct BankEntryIdentity: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let account: String
    public let reference: String

    public init(account: String, reference: String) {
        self.account = MatchKey.account(account)
        self.reference = reference
    }

    public static func < (a: BankEntryIdentity, b: BankEntryIdentity) -> Bool { (a.account, a.reference) < (b.account, b.reference) }
    public var description: String { "\(account)/\(reference)" }

    /// The reference of a booking without a bank reference: `"bk:"` + the first 32 hex digits of
    /// SHA-256 over account, currency, direction, amount in minor units, booking date, end-to-end
    /// id, structured reference, remittance text (white space collapsed) and the occurrence (0 for
    /// the first booking with these fields in its file, 1 for the second, …), joined by 0x1F.
    public static func digestReference(account: String, amount: Money, credit: Bool, bookingDate: String?, endToEndID: String?,
                                       structuredReference: String?, remittance: String?, occurrence: Int) -> String {
        let collapsed = remittance.map { text in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined(separator: " ") }
        let fields = [MatchKey.account(account), amount.currency.code, credit ? "credit" : "debit", String(amount.minorUnits),
                      bookingDate ?? "", endToEndID ?? "", structuredReference ?? "", collapsed ?? "", String(occurrence)]
        var input: [UInt8] = []
        for (index, field) in fields.enumerated() {
            if index > 0 { input.append(0x1F) }
            input.append(contentsOf: field.utf8)
        }
        return "bk:" + String(SHA256Digest.hex(input).prefix(32))
    }
}

/// An invoice as reconciliation sees it, with its match keys.
public struct InvoiceFact: Hashable, Sendable {
    public let id: String
    public let customerID: String
    public let number: String
    public let paymentReference: String?
    public let amount: Money
    public let balance: Money
    public let status: InvoiceStatus
    public let issueDate: BusinessDate
    public let dueDate: BusinessDate
    public let numberStrict: String
    public let numberLoose: String
    public let referenceStrict: String?

    public init(id: String, customerID: String, number: String, paymentReference: String?, amount: Money, balance: Money,
                status: InvoiceStatus, issueDate: BusinessDate, dueDate: BusinessDate) {
        self.id = id
        self.customerID = customerID
        self.number = number
        self.paymentReference = paymentReference
        self.amount = amount
        self.balance = balance
        self.status = status
        self.issueDate = issueDate
        self.dueDate = dueDate
        numberStrict = MatchKey.strict(number)
        numberLoose = MatchKey.loose(number)
        referenceStrict = paymentReference.map(MatchKey.strict).flatMap { $0.isEmpty ? nil : $0 }
    }

    public init(_ invoice: Invoice) {
        self.init(id: invoice.id, customerID: invoice.customerID, number: invoice.number, paymentReference: invoice.paymentReference,
                  amount: invoice.amount, balance: invoice.balance, status: invoice.status, issueDate: invoice.issueDate,
                  dueDate: invoice.dueDate)
    }

    public var currency: Currency { amount.currency }
    /// Money can still be applied to it.
    public var isPayable: Bool { status.isOpen && balance.isPositive }

    /// The invoice after `money` was applied or written off (the working set of a statement run).
    public func settling(_ money: Money) -> InvoiceFact {
        let balance = self.balance - money
        return InvoiceFact(id: id, customerID: customerID, number: number, paymentReference: paymentReference, amount: amount,
                           balance: balance, status: .following(balance: balance, amount: amount), issueDate: issueDate, dueDate: dueDate)
    }

    /// Oldest due first (ties: issue date, id): the order money is spread over invoices.
    static func dueOrder(_ a: InvoiceFact, _ b: InvoiceFact) -> Bool {
        (a.dueDate, a.issueDate, a.id) < (b.dueDate, b.issueDate, b.id)
    }
}

/// A gateway payout: card payments held in clearing (`payments.payout_id`) until one bank credit
/// settles them all.
public struct PayoutFact: Hashable, Sendable {
    public let payoutID: String
    /// Sum of the payout's payments (what the gateway owes before its fees).
    public let gross: Money
    public let paymentCount: Int
    /// The bank entry that settled it, or nil while pending.
    public let settledByEntry: String?

    public init(payoutID: String, gross: Money, paymentCount: Int, settledByEntry: String?) {
        self.payoutID = payoutID
        self.gross = gross
        self.paymentCount = paymentCount
        self.settledByEntry = settledByEntry
    }

    public var isPending: Bool { settledByEntry == nil }
}

/// Everything a decision about one credit may look at. The Store loads it through indexes:
/// invoices whose number or payment reference matches a key of the credit's texts, every open
/// invoice of the customers that registered the debtor account, and the payouts named in the
/// text or pending with a fitting amount. Order does not matter: the Reconciler sorts.
public struct ReconciliationFacts: Hashable, Sendable {
    public var invoices: [InvoiceFact]
    /// Customers that registered the credit's debtor account (`customers.bank_accounts`).
    public var accountOwners: [String]
    /// Customers whose policy allows spreading an unreferenced credit over open invoices oldest first.
    public var oldestFirstCustomers: Set<String>
    public var payouts: [PayoutFact]

    public init(invoices: [InvoiceFact] = [], accountOwners: [String] = [], oldestFirstCustomers: Set<String> = [], payouts: [PayoutFact] = []) {
        self.invoices = invoices
        self.accountOwners = accountOwners
        self.oldestFirstCustomers = oldestFirstCustomers
        self.payouts = payouts
    }
}

/// A share of an amount, in basis points (1 % = 100), parsed from "0.5" / "1" / "2.25".
public struct BasisPoints: Hashable, Sendable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) {
        precondition((0...10_000).contains(value))
        self.value = value
    }

    /// "1.5" → 150; at most two decimals, 0...100.
    public init?(percent text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 3, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }),
              let whole = Int(parts[0]) else { return nil }
        var fraction = 0
        if parts.count == 2 {
            guard (1...2).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let digits = Int(parts[1]) else { return nil }
            fraction = parts[1].count == 1 ? digits * 10 : digits
        }
        let value = whole * 100 + fraction
        guard value <= 10_000 else { return nil }
        self.value = value
    }

    public var description: String {
        let fraction = value % 100
        return fraction == 0 ? "\(value / 100) %" : "\(value / 100).\(fraction < 10 ? "0" : "")\(fraction) %"
    }

    /// amount <= share of base, computed exactly (no floating point).
    func covers(_ amount: Money, of base: Money) -> Bool {
        Int128(amount.minorUnits) * 10_000 <= Int128(value) * Int128(base.minorUnits)
    }
}

/// How far a credit may fall short and still settle (SPEC section 3, rule 5), and how much a
/// gateway may keep as fees from a payout: both an absolute amount and a share; both must hold.
public struct Tolerance: Hashable, Sendable {
    public let shortfallLimit: Money
    public let shortfallShare: BasisPoints
    public let payoutFeeLimit: Money
    public let payoutFeeShare: BasisPoints

    public init(shortfallLimit: Money, shortfallShare: BasisPoints, payoutFeeLimit: Money, payoutFeeShare: BasisPoints) {
        precondition(shortfallLimit.currency == payoutFeeLimit.currency && !shortfallLimit.isNegative && !payoutFeeLimit.isNegative)
        self.shortfallLimit = shortfallLimit
        self.shortfallShare = shortfallShare
        self.payoutFeeLimit = payoutFeeLimit
        self.payoutFeeShare = payoutFeeShare
    }

    /// Exact amounts only.
    public static func none(_ currency: Currency) -> Tolerance {
        Tolerance(shortfallLimit: .zero(currency), shortfallShare: BasisPoints(0), payoutFeeLimit: .zero(currency), payoutFeeShare: BasisPoints(0))
    }

    public func allowsShortfall(_ shortfall: Money, of due: Money) -> Bool {
        shortfall.isPositive && shortfall <= shortfallLimit && shortfallShare.covers(shortfall, of: due)
    }

    public func allowsPayoutFee(_ fee: Money, of gross: Money) -> Bool {
        fee.isZero || (fee.isPositive && fee <= payoutFeeLimit && payoutFeeShare.covers(fee, of: gross))
    }
}

/// The tolerances per currency (config `reconciliation.tolerances`); a currency not listed
/// settles on exact amounts only.
public struct ReconciliationPolicy: Hashable, Sendable {
    public var tolerances: [Currency: Tolerance]
    public init(tolerances: [Currency: Tolerance] = [:]) { self.tolerances = tolerances }
    public func tolerance(_ currency: Currency) -> Tolerance { tolerances[currency] ?? .none(currency) }
}

/// The rules of SPEC section 3, by the names events and explanations use.
public enum MatchRule: String, Sendable, Hashable, CaseIterable {
    /// 1: ISO 11649 reference (check digits verified) or the invoice's payment reference.
    case structuredReference = "structured_reference"
    /// 2: invoice numbers in the remittance text.
    case invoiceNumber = "invoice_number"
    /// 3: a gateway payout settling card payments held in clearing.
    case gatewayPayout = "gateway_payout"
    /// 4: the debtor account a customer registered.
    case debtorAccount = "debtor_account"
    /// 5: a shortfall within tolerance written off to fees.
    case tolerance
    /// `reconciliation.resolved`.
    case manual

    /// The rule's number in SPEC section 3 (0 for manual work).
    public var number: Int {
        switch self {
        case .structuredReference: 1
        case .invoiceNumber: 2
        case .gatewayPayout: 3
        case .debtorAccount: 4
        case .tolerance: 5
        case .manual: 0
        }
    }
}

/// Why no safe match was made (`reconciliation.exception` reason).
public enum ExceptionReason: String, Sendable, Hashable, CaseIterable {
    case noMatch = "no_match"
    case ambiguous
    case currencyMismatch = "currency_mismatch"
    case unknownReference = "unknown_reference"
    case duplicate
}

/// Where a bank credit ends (SPEC section 3): exactly one of these.
public enum BankCreditState: String, Sendable, Hashable, CaseIterable {
    /// All of it applied to invoices (with a shortfall written off, or a payout settled).
    case matched
    /// A customer identified, some or all of it left as that customer's credit.
    case partiallyMatched = "partially_matched"
    /// No safe match: nothing applied until someone resolves it.
    case exception
    /// Resolved as not customer money.
    case ignored
}

/// Money of the credit applied to one invoice, and the shortfall written off on it (rule 5).
public struct PlannedAllocation: Hashable, Sendable {
    public let invoiceID: String
    public let paid: Money
    public let writtenOff: Money

    public init(invoiceID: String, paid: Money, writtenOff: Money) {
        precondition(paid.currency == writtenOff.currency && !paid.isNegative && !writtenOff.isNegative && (paid + writtenOff).isPositive)
        self.invoiceID = invoiceID
        self.paid = paid
        self.writtenOff = writtenOff
    }

    public var settled: Money { paid + writtenOff }
}

/// One candidate the rules considered, with its score (0…100) and why it won or lost.
public struct ReconciliationCandidate: Hashable, Sendable {
    public enum Subject: Hashable, Sendable {
        case invoice(String)
        case customer(String)
        case payout(String)
    }

    public let subject: Subject
    public let customerID: String?
    public let invoiceIDs: [String]
    public let rule: MatchRule
    public let score: Int
    public let won: Bool
    public let why: String

    public init(subject: Subject, customerID: String?, invoiceIDs: [String], rule: MatchRule, score: Int, won: Bool, why: String) {
        self.subject = subject
        self.customerID = customerID
        self.invoiceIDs = invoiceIDs
        self.rule = rule
        self.score = score
        self.won = won
        self.why = why
    }

    public var payoutID: String? {
        if case .payout(let id) = subject { return id }
        return nil
    }

    /// Winners first, then by score, rule order and ids: a total order, so the ranking never
    /// depends on the order facts were loaded in.
    static func ranked(_ a: ReconciliationCandidate, _ b: ReconciliationCandidate) -> Bool {
        if a.won != b.won { return a.won }
        if a.score != b.score { return a.score > b.score }
        if a.rule.number != b.rule.number { return a.rule.number < b.rule.number }
        return (a.customerID ?? "", a.subjectKey, a.why) < (b.customerID ?? "", b.subjectKey, b.why)
    }

    var subjectKey: String {
        switch subject {
        case .invoice(let id): "1:" + id
        case .customer(let id): "2:" + id
        case .payout(let id): "3:" + id
        }
    }
}

/// A payout settled by a credit: the gateway's fees are what it kept of the payments.
public struct PayoutSettlement: Hashable, Sendable {
    public let payoutID: String
    public let gross: Money
    public let fees: Money

    public init(payoutID: String, gross: Money, fees: Money) {
        precondition(gross.currency == fees.currency && !fees.isNegative && fees <= gross)
        self.payoutID = payoutID
        self.gross = gross
        self.fees = fees
    }
}

/// What to do with one bank credit, and why.
public struct ReconciliationDecision: Hashable, Sendable {
    public let entryID: String
    public let amount: Money
    public let state: BankCreditState
    /// Set for `exception` only.
    public let reason: ExceptionReason?
    /// The rule that decided (nil for an exception).
    public let rule: MatchRule?
    /// 0…100 (events carry it as 0…1).
    public let confidence: Int
    /// The one customer the money goes to (nil for exceptions and payouts).
    public let customerID: String?
    public let allocations: [PlannedAllocation]
    /// Left as the customer's unapplied credit.
    public let toCredit: Money
    public let payout: PayoutSettlement?
    /// Every candidate considered, ranked (`ReconciliationCandidate.ranked`).
    public let candidates: [ReconciliationCandidate]
    /// The evidence and the steps of the rules, in order, for `reconcile explain`.
    public let notes: [String]

    public init(entryID: String, amount: Money, state: BankCreditState, reason: ExceptionReason?, rule: MatchRule?, confidence: Int,
                customerID: String?, allocations: [PlannedAllocation], toCredit: Money, payout: PayoutSettlement?,
                candidates: [ReconciliationCandidate], notes: [String]) {
        self.entryID = entryID
        self.amount = amount
        self.state = state
        self.reason = reason
        self.rule = rule
        self.confidence = confidence
        self.customerID = customerID
        self.allocations = allocations
        self.toCredit = toCredit
        self.payout = payout
        self.candidates = candidates.sorted(by: ReconciliationCandidate.ranked)
        self.notes = notes
    }

    /// Money of the credit applied to invoices.
    public var applied: Money { allocations.reduce(.zero(amount.currency)) { $0 + $1.paid } }
    /// Shortfalls written off to fees (rule 5) or gateway fees of a payout.
    public var fees: Money { payout?.fees ?? allocations.reduce(.zero(amount.currency)) { $0 + $1.writtenOff } }
    /// The customers among the candidates (whose dunning waits while this is an exception).
    public var candidateCustomers: [String] { Array(Set(candidates.compactMap(\.customerID))).sorted() }
}
