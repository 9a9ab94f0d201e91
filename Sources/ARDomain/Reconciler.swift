/// The reconciliation rules of SPEC section 3, as one pure function:
/// (bank credit, facts, tolerances) → decision. No I/O, no clock; the facts are sorted first, so
/// the decision never depends on the order rows came back in.
///
/// Rules in order, the first confident one wins:
/// 1. structured reference: a valid ISO 11649 reference or an invoice's payment reference;
/// 2. invoice numbers in the texts (normalised by `MatchKey`), several invoices allowed, with or
///    without an amount written after each;
/// 3. a gateway payout, by its id in the text or by the amount of exactly one pending payout;
/// 4. the debtor account a customer registered: one open invoice of exactly that amount, the
///    exact sum of its open invoices (or more: the rest is credit), or oldest first when the
///    customer's policy allows it;
/// 5. a shortfall within tolerance written off to fees (for the invoices rules 1, 2 or 4 found).
///
/// Never a guess: evidence that points at two customers (an invoice of one, the debtor account
/// of another), two invoices equally good, or a named invoice already paid is an exception, and
/// nothing is applied. A credit in another currency than every candidate is `currency_mismatch`.
public enum Reconciler {
    public static func decide(_ credit: BankCredit, facts: ReconciliationFacts, policy: ReconciliationPolicy) -> ReconciliationDecision {
        decide(credit, scan: credit.scan, facts: facts, policy: policy)
    }

    /// The same, with the credit's texts already scanned (`credit.scan`).
    public static func decide(_ credit: BankCredit, scan: RemittanceScan, facts: ReconciliationFacts, policy: ReconciliationPolicy) -> ReconciliationDecision {
        var evaluation = Evaluation(credit: credit, scan: scan, facts: facts, tolerance: policy.tolerance(credit.currency))
        return evaluation.decide()
    }

    /// Scores of the evidence (0…100; the decision's confidence is the winner's score).
    enum Score {
        static let referenceField = 100
        static let referenceInText = 95
        static let referenceCarriesNumber = 95
        static let invoiceNumber = 90
        static let invoiceNumberLoose = 85
        static let debtorAgrees = 5
        static let payoutByID = 100
        static let payoutByAmount = 80
        static let debtorSingleInvoice = 85
        static let debtorAllInvoices = 80
        static let debtorMoreThanDue = 75
        static let tolerance = 70
        static let debtorOldestFirst = 60
        static let debtorNothingOpen = 60
    }
}

/// One run of the rules over one credit; collects candidates and notes as it goes.
private struct Evaluation {
    let credit: BankCredit
    let tolerance: Tolerance
    let scan: RemittanceScan
    let invoices: [InvoiceFact]
    let owners: [String]
    let oldestFirst: Set<String>
    let payouts: [PayoutFact]
    var candidates: [ReconciliationCandidate] = []
    var notes: [String] = []
    var otherCurrencySeen: [String] = []
    /// The mentions that named an invoice (an amount written after one belongs to it).
    var namingMentions: [RemittanceScan.Mention] = []

    init(credit: BankCredit, scan: RemittanceScan, facts: ReconciliationFacts, tolerance: Tolerance) {
        self.credit = credit
        self.tolerance = tolerance
        self.scan = scan
        var byID: [String: InvoiceFact] = [:]
        for invoice in facts.invoices { byID[invoice.id] = invoice }
        invoices = byID.values.sorted { $0.id < $1.id }
        owners = Array(Set(facts.accountOwners)).sorted()
        oldestFirst = facts.oldestFirstCustomers
        var payoutsByID: [String: PayoutFact] = [:]
        for payout in facts.payouts where payout.gross.currency == credit.currency || payoutsByID[payout.payoutID] == nil {
            payoutsByID[payout.payoutID] = payout
        }
        payouts = payoutsByID.values.sorted { $0.payoutID < $1.payoutID }
    }

    var amount: Money { credit.amount }
    var currency: Currency { credit.currency }

    mutating func decide() -> ReconciliationDecision {
        describeEvidence()
        let named = namedInvoices()
        if let decision = decideNamed(named) { return decision }
        if let decision = decidePayout(invoicesNamed: !named.isEmpty) { return decision }
        if let decision = decideDebtorAccount() { return decision }
        return noRuleMatched()
    }

    // MARK: evidence

    mutating func describeEvidence() {
        notes.append("credit \(amount.decimalString) \(currency)")
        if let reference = credit.structuredReference { notes.append("structured reference \"\(reference)\"") }
        for reference in scan.creditorReferences { notes.append("ISO 11649 reference \(reference): check digits verified") }
        for reference in scan.invalidCreditorReferences { notes.append("\(reference) looks like an ISO 11649 reference but its check digits fail: not trusted as one") }
        for iban in scan.ibans { notes.append("IBAN \(Masked.account(iban)) in the text: not read as invoice numbers") }
        if let account = credit.debtorAccount {
            if owners.isEmpty {
                notes.append("debtor account \(Masked.account(account)) is not registered by any customer")
            } else {
                notes.append("debtor account \(Masked.account(account)) is registered by \(owners.joined(separator: ", "))")
            }
        } else {
            notes.append("no debtor account given")
        }
        if scan.truncated { notes.append("the texts held more than \(RemittanceScan.maximumMentions) possible numbers; the rest were not looked at") }
    }

    // MARK: rules 1 and 2: invoices named by reference or number

    struct Named {
        let invoice: InvoiceFact
        let rule: MatchRule
        let score: Int
        let via: String
        /// The mention that named it (for an amount written after it).
        let mention: RemittanceScan.Mention?
    }

    /// Invoices the texts name, each with its strongest evidence. Overlapping mentions keep the
    /// longest ("INV 2024 0042" names INV-2024-0042, not also INV-2024).
    mutating func namedInvoices() -> [Named] {
        var byReference: [String: [InvoiceFact]] = [:]
        var byNumber: [String: [InvoiceFact]] = [:]
        var byLooseNumber: [String: [InvoiceFact]] = [:]
        for invoice in invoices {
            if let key = invoice.referenceStrict { byReference[key, default: []].append(invoice) }
            byNumber[invoice.numberStrict, default: []].append(invoice)
            byLooseNumber[invoice.numberLoose, default: []].append(invoice)
        }
        var best: [String: Named] = [:]
        func offer(_ named: Named) {
            if let current = best[named.invoice.id], current.score >= named.score { return }
            best[named.invoice.id] = named
        }
        for reference in scan.creditorReferences {
            for invoice in byReference[reference] ?? [] {
                offer(Named(invoice: invoice, rule: .structuredReference, score: Reconciler.Score.referenceField,
                            via: "ISO 11649 reference \(reference) is its payment reference", mention: nil))
            }
            let body = CreditorReference.body(of: reference)
            for invoice in (byNumber[MatchKey.strict(body)] ?? []) + (byLooseNumber[MatchKey.loose(body)] ?? []) {
                offer(Named(invoice: invoice, rule: .structuredReference, score: Reconciler.Score.referenceCarriesNumber,
                            via: "ISO 11649 reference \(reference) carries its number \(invoice.number)", mention: nil))
            }
        }
        // Mentions that name something; longest first, overlapping shorter ones dropped.
        let naming = scan.mentions.filter { byReference[$0.strict] != nil || byNumber[$0.strict] != nil || byLooseNumber[$0.loose] != nil }
        var accepted: [RemittanceScan.Mention] = []
        let longestFirst = naming.sorted { a, b in
            if a.source != b.source { return a.source < b.source }
            if a.lastRun - a.firstRun != b.lastRun - b.firstRun { return a.lastRun - a.firstRun > b.lastRun - b.firstRun }
            return (a.firstRun, a.strict, a.loose) < (b.firstRun, b.strict, b.loose)
        }
        for mention in longestFirst {
            let overlaps = accepted.contains { $0.source == mention.source && $0.firstRun <= mention.lastRun && mention.firstRun <= $0.lastRun }
            if !overlaps { accepted.append(mention) }
        }
        namingMentions = accepted
        for mention in accepted {
            let place = mention.source.rawValue
            for invoice in byReference[mention.strict] ?? [] {
                offer(Named(invoice: invoice, rule: .structuredReference,
                            score: mention.wholeField ? Reconciler.Score.referenceField : Reconciler.Score.referenceInText,
                            via: "\(place) \"\(mention.text)\" is its payment reference", mention: mention))
            }
            for invoice in byNumber[mention.strict] ?? [] {
                offer(Named(invoice: invoice, rule: .invoiceNumber, score: Reconciler.Score.invoiceNumber,
                            via: "\(place) \"\(mention.text)\" is its number \(invoice.number)", mention: mention))
            }
            for invoice in byLooseNumber[mention.loose] ?? [] {
                offer(Named(invoice: invoice, rule: .invoiceNumber, score: Reconciler.Score.invoiceNumberLoose,
                            via: "\(place) \"\(mention.text)\" is its number \(invoice.number) (leading zeros ignored)", mention: mention))
            }
        }
        return best.values.sorted { $0.invoice.id < $1.invoice.id }
    }

    mutating func decideNamed(_ named: [Named]) -> ReconciliationDecision? {
        guard !named.isEmpty else { return nil }
        let customers = Array(Set(named.map(\.invoice.customerID))).sorted()
        func lose(_ items: [Named], _ why: String) {
            for item in items { record(item, won: false, why: why) }
        }
        if customers.count > 1 {
            notes.append("the texts name invoices of \(customers.count) customers (\(customers.joined(separator: ", "))): conflicting evidence")
            lose(named, "the texts also name invoices of another customer")
            addOwners(why: "debtor account owner; the texts name invoices of several customers")
            return exception(.ambiguous)
        }
        let customer = customers[0]
        if !owners.isEmpty && !owners.contains(customer) {
            notes.append("the texts name invoices of \(customer) but the debtor account is registered by \(owners.joined(separator: ", ")): conflicting evidence")
            lose(named, "belongs to \(customer), while the debtor account is registered by \(owners.joined(separator: ", "))")
            addOwners(why: "registered the debtor account, but the texts name another customer's invoices")
            return exception(.ambiguous)
        }
        if let payout = explicitlyNamedPayouts().first {
            notes.append("the texts name both invoices of \(customer) and payout \(payout.payoutID): conflicting evidence")
            lose(named, "the texts also name payout \(payout.payoutID)")
            candidates.append(ReconciliationCandidate(subject: .payout(payout.payoutID), customerID: nil, invoiceIDs: [], rule: .gatewayPayout,
                                                      score: Reconciler.Score.payoutByID, won: false, why: "the texts also name invoices of \(customer)"))
            return exception(.ambiguous)
        }
        let otherCurrency = named.filter { $0.invoice.currency != currency }
        let sameCurrency = named.filter { $0.invoice.currency == currency }
        let closed = sameCurrency.filter { !$0.invoice.isPayable }
        let payable = sameCurrency.filter { $0.invoice.isPayable }
        for item in otherCurrency { record(item, won: false, why: "is in \(item.invoice.currency), the credit in \(currency)") }
        otherCurrencySeen += otherCurrency.map(\.invoice.id)
        // One piece of text naming two payable invoices (numbers that normalise alike): which?
        for mention in namingMentions {
            let clash = payable.filter { $0.mention == mention }
            guard clash.count > 1 else { continue }
            notes.append("\"\(mention.text)\" names \(clash.count) open invoices (\(clash.map(\.invoice.id).joined(separator: ", "))): equally good")
            lose(payable, "\"\(mention.text)\" names more than one open invoice equally well")
            loseClosed(closed)
            return exception(.ambiguous)
        }
        if payable.isEmpty {
            if !closed.isEmpty {
                for item in closed { record(item, won: false, why: "already \(closedWord(item.invoice.status)): the credit may pay it twice") }
                notes.append("every invoice the texts name is already settled: a possible double payment")
                return exception(.duplicate)
            }
            notes.append("the invoices the texts name are in another currency; trying the other rules")
            return nil
        }
        loseClosed(closed)
        let rule = payable.contains { $0.rule == .structuredReference } ? MatchRule.structuredReference : MatchRule.invoiceNumber
        var score = payable.map(\.score).max() ?? 0
        if owners.contains(customer) {
            score = min(100, score + Reconciler.Score.debtorAgrees)
            notes.append("the debtor account agrees: it is registered by \(customer)")
        }
        notes.append("rule \(rule.number) (\(rule.rawValue)): \(payable.map(\.via).joined(separator: "; "))")
        let (allocations, rest) = allocateNamed(payable)
        for item in payable {
            let allocation = allocations.first { $0.invoiceID == item.invoice.id }
            record(item, won: allocation != nil, why: allocation.map { "named: \($0.paid.decimalString) applied" + ($0.writtenOff.isPositive ? ", \($0.writtenOff.decimalString) shortfall written off" : "") }
                   ?? "named, but the credit was used up by the invoices due earlier")
        }
        return match(rule: rule, score: score, customer: customer, allocations: allocations, rest: rest)
    }

    /// Spreads the credit over the invoices the texts name: the amounts written beside them when
    /// there is one for each and they add up to the credit; else their balances, oldest due
    /// first, the rest as credit; a shortfall within tolerance written off (rule 5).
    mutating func allocateNamed(_ payable: [Named]) -> ([PlannedAllocation], Money) {
        let ordered = payable.sorted { InvoiceFact.dueOrder($0.invoice, $1.invoice) }
        let written = ordered.map { item in item.mention.flatMap { writtenAmount(after: $0) } }
        if written.allSatisfy({ $0 != nil }) {
            let amounts = written.compactMap { $0 }
            if amounts.reduce(Money.zero(currency), +) == amount {
                notes.append("amounts written beside the invoices add up to the credit: \(zip(ordered, amounts).map { "\($0.invoice.id) \($1.decimalString)" }.joined(separator: ", "))")
                var allocations: [PlannedAllocation] = []
                var rest = Money.zero(currency)
                for (item, written) in zip(ordered, amounts) {
                    let paid = Money.min(written, item.invoice.balance)
                    rest += written - paid
                    if paid.isPositive { allocations.append(PlannedAllocation(invoiceID: item.invoice.id, paid: paid, writtenOff: .zero(currency))) }
                }
                if rest.isPositive { notes.append("\(rest.decimalString) written for invoices beyond their balances: kept as credit") }
                return (allocations, rest)
            }
            notes.append("amounts written beside the invoices do not add up to the credit: their balances are used")
        }
        return spread(over: ordered.map(\.invoice), writeOffAllowed: true)
    }

    /// The first amount written after `mention` and before the next mention that names something.
    func writtenAmount(after mention: RemittanceScan.Mention) -> Money? {
        let later = namingMentions.filter { $0.source == mention.source && $0.firstRun > mention.lastRun }.map(\.firstRun)
        let limit = later.min() ?? Int.max
        return scan.amounts.first { $0.source == mention.source && $0.run > mention.lastRun && $0.run < limit }?.amount
    }

    /// Balances oldest due first; the rest as credit; a shortfall within tolerance written off.
    mutating func spread(over ordered: [InvoiceFact], writeOffAllowed: Bool) -> ([PlannedAllocation], Money) {
        let due = ordered.reduce(Money.zero(currency)) { $0 + $1.balance }
        var left = amount
        var paid: [(InvoiceFact, Money)] = []
        for invoice in ordered {
            let take = Money.min(left, invoice.balance)
            paid.append((invoice, take))
            left -= take
        }
        let shortfall = due - amount
        let writeOff = writeOffAllowed && tolerance.allowsShortfall(shortfall, of: due)
        if shortfall.isPositive {
            if writeOff {
                notes.append("rule 5 (tolerance): \(shortfall.decimalString) short of \(due.decimalString) due, within the tolerance (\(tolerance.shortfallLimit.decimalString) and \(tolerance.shortfallShare)): written off to fees")
            } else {
                notes.append("\(shortfall.decimalString) short of \(due.decimalString) due, beyond the tolerance: applied oldest due first, the rest stays open")
            }
        }
        var allocations: [PlannedAllocation] = []
        for (invoice, take) in paid {
            let off = writeOff ? invoice.balance - take : .zero(currency)
            if take.isPositive || off.isPositive { allocations.append(PlannedAllocation(invoiceID: invoice.id, paid: take, writtenOff: off)) }
        }
        if left.isPositive { notes.append("\(left.decimalString) more than the \(due.decimalString) due: kept as the customer's credit") }
        return (allocations, left)
    }

    mutating func loseClosed(_ closed: [Named]) {
        for item in closed { record(item, won: false, why: "already \(closedWord(item.invoice.status))") }
    }

    func closedWord(_ status: InvoiceStatus?) -> String {
        switch status {
        case .paid?: "paid"
        case .voided?: "voided"
        case .writtenOff?: "written off"
        case .open?, .partiallyPaid?, nil: "settled"
        }
    }

    // MARK: rule 3: gateway payouts

    func explicitlyNamedPayouts() -> [PayoutFact] {
        let words = Set(scan.words)
        return payouts.filter { words.contains($0.payoutID.lowercasedASCII) }
    }

    mutating func decidePayout(invoicesNamed: Bool) -> ReconciliationDecision? {
        let named = explicitlyNamedPayouts()
        if !named.isEmpty {
            var passing: [PayoutFact] = []
            var settled = false
            var otherCurrency = false
            for payout in named {
                let why: String?
                if payout.gross.currency != currency {
                    why = "is in \(payout.gross.currency), the credit in \(currency)"
                    otherCurrency = true
                } else if let entry = payout.settledByEntry {
                    why = "already settled by bank entry \(entry)"
                    settled = true
                } else if amount > payout.gross {
                    why = "the credit exceeds its \(payout.paymentCount) payments (\(payout.gross.decimalString))"
                } else if !tolerance.allowsPayoutFee(payout.gross - amount, of: payout.gross) {
                    why = "fees of \(( payout.gross - amount).decimalString) on \(payout.gross.decimalString) exceed the tolerance (\(tolerance.payoutFeeLimit.decimalString) and \(tolerance.payoutFeeShare))"
                } else {
                    why = nil
                    passing.append(payout)
                }
                if let why {
                    candidates.append(ReconciliationCandidate(subject: .payout(payout.payoutID), customerID: nil, invoiceIDs: [], rule: .gatewayPayout,
                                                              score: Reconciler.Score.payoutByID, won: false, why: "named in the text, but " + why))
                }
            }
            if passing.count == 1 { return settlePayout(passing[0], score: Reconciler.Score.payoutByID, how: "named in the text") }
            if passing.count > 1 { return ambiguousPayouts(passing, score: Reconciler.Score.payoutByID, how: "named in the text") }
            notes.append("rule 3: the payouts named cannot take this credit")
            if settled { return exception(.duplicate) }
            if otherCurrency { return exception(.currencyMismatch) }
            return exception(.noMatch)
        }
        // By amount only when nothing else points elsewhere: a registered debtor account or a named
        // invoice means the money is not a payout.
        guard owners.isEmpty, !invoicesNamed else { return nil }
        let fitting = payouts.filter { payout in
            payout.isPending && payout.gross.currency == currency && payout.gross >= amount
                && tolerance.allowsPayoutFee(payout.gross - amount, of: payout.gross)
        }
        if fitting.count == 1 { return settlePayout(fitting[0], score: Reconciler.Score.payoutByAmount, how: "the only pending payout this amount settles") }
        if fitting.count > 1 { return ambiguousPayouts(fitting, score: Reconciler.Score.payoutByAmount, how: "a pending payout this amount settles") }
        return nil
    }

    mutating func settlePayout(_ payout: PayoutFact, score: Int, how: String) -> ReconciliationDecision {
        let fees = payout.gross - amount
        notes.append("rule 3 (gateway_payout): payout \(payout.payoutID), \(how): \(payout.paymentCount) card payments of \(payout.gross.decimalString) held in clearing"
                     + (fees.isPositive ? ", gateway fees \(fees.decimalString) to fees" : ""))
        candidates.append(ReconciliationCandidate(subject: .payout(payout.payoutID), customerID: nil, invoiceIDs: [], rule: .gatewayPayout,
                                                  score: score, won: true, why: how))
        return ReconciliationDecision(entryID: credit.entryID, amount: amount, state: .matched, reason: nil, rule: .gatewayPayout,
                                      confidence: score, customerID: nil, allocations: [], toCredit: .zero(currency),
                                      payout: PayoutSettlement(payoutID: payout.payoutID, gross: payout.gross, fees: fees),
                                      candidates: candidates, notes: notes)
    }

    mutating func ambiguousPayouts(_ payouts: [PayoutFact], score: Int, how: String) -> ReconciliationDecision {
        notes.append("rule 3: \(payouts.count) payouts fit equally well (\(payouts.map(\.payoutID).joined(separator: ", ")))")
        for payout in payouts {
            candidates.append(ReconciliationCandidate(subject: .payout(payout.payoutID), customerID: nil, invoiceIDs: [], rule: .gatewayPayout,
                                                      score: score, won: false, why: how + ", as do others: equally good"))
        }
        return exception(.ambiguous)
    }

    // MARK: rule 4 (and 5): the debtor account

    mutating func decideDebtorAccount() -> ReconciliationDecision? {
        guard !owners.isEmpty else { return nil }
        if owners.count > 1 {
            notes.append("rule 4: the debtor account is registered by \(owners.count) customers: equally good")
            addOwners(why: "registered the debtor account, as did another customer")
            return exception(.ambiguous)
        }
        let customer = owners[0]
        let open = invoices.filter { $0.customerID == customer && $0.isPayable }
        let payable = open.filter { $0.currency == currency }.sorted(by: InvoiceFact.dueOrder)
        func candidate(_ invoices: [InvoiceFact], rule: MatchRule = .debtorAccount, score: Int, won: Bool, why: String) {
            candidates.append(ReconciliationCandidate(subject: invoices.count == 1 ? .invoice(invoices[0].id) : .customer(customer), customerID: customer,
                                                      invoiceIDs: invoices.map(\.id), rule: rule, score: score, won: won, why: why))
        }
        if payable.isEmpty {
            if !open.isEmpty {
                otherCurrencySeen += open.map(\.id)
                candidate(open, score: Reconciler.Score.debtorNothingOpen, won: false,
                          why: "registered the debtor account; its open invoices are in \(Set(open.map(\.currency.code)).sorted().joined(separator: ", ")), the credit in \(currency)")
                notes.append("rule 4: \(customer) has open invoices only in other currencies")
                return nil
            }
            notes.append("rule 4 (debtor_account): \(customer) has no open invoice: the whole credit is kept as its credit")
            candidate([], score: Reconciler.Score.debtorNothingOpen, won: true, why: "registered the debtor account; nothing open: all to credit")
            return match(rule: .debtorAccount, score: Reconciler.Score.debtorNothingOpen, customer: customer, allocations: [], rest: amount)
        }
        let due = payable.reduce(Money.zero(currency)) { $0 + $1.balance }
        let exact = payable.filter { $0.balance == amount }
        if exact.count == 1 {
            notes.append("rule 4 (debtor_account): \(customer)'s invoice \(exact[0].id) has exactly this balance")
            candidate(exact, score: Reconciler.Score.debtorSingleInvoice, won: true, why: "the one open invoice of exactly this amount")
            for other in payable where other.id != exact[0].id {
                candidate([other], score: 0, won: false, why: "balance \(other.balance.decimalString) differs from the credit")
            }
            return match(rule: .debtorAccount, score: Reconciler.Score.debtorSingleInvoice, customer: customer,
                         allocations: [PlannedAllocation(invoiceID: exact[0].id, paid: amount, writtenOff: .zero(currency))], rest: .zero(currency))
        }
        if exact.count > 1 {
            notes.append("rule 4: \(exact.count) open invoices of \(customer) have exactly this balance: equally good")
            for invoice in exact { candidate([invoice], score: Reconciler.Score.debtorSingleInvoice, won: false, why: "exactly this balance, as has another open invoice: equally good") }
            return exception(.ambiguous)
        }
        if amount >= due {
            let more = amount > due
            let score = more ? Reconciler.Score.debtorMoreThanDue : Reconciler.Score.debtorAllInvoices
            notes.append("rule 4 (debtor_account): the credit \(more ? "exceeds" : "equals") the sum of \(customer)'s \(payable.count) open invoices (\(due.decimalString))")
            let (allocations, rest) = spread(over: payable, writeOffAllowed: false)
            candidate(payable, score: score, won: true, why: more ? "all open invoices paid, the rest kept as credit" : "exactly the sum of all open invoices")
            return match(rule: .debtorAccount, score: score, customer: customer, allocations: allocations, rest: rest)
        }
        if oldestFirst.contains(customer) {
            notes.append("rule 4 (debtor_account): \(customer)'s policy allows oldest-first: applied to its open invoices oldest due first")
            let (allocations, rest) = spread(over: payable, writeOffAllowed: false)
            candidate(payable, score: Reconciler.Score.debtorOldestFirst, won: true, why: "oldest due first (the customer's policy allows it)")
            return match(rule: .debtorAccount, score: Reconciler.Score.debtorOldestFirst, customer: customer, allocations: allocations, rest: rest)
        }
        // Rule 5 for the debtor's invoices: one invoice, or all of them, short by bank charges.
        let short = payable.filter { $0.balance > amount && tolerance.allowsShortfall($0.balance - amount, of: $0.balance) }
        if short.count == 1 {
            let shortfall = short[0].balance - amount
            notes.append("rule 5 (tolerance): \(customer)'s invoice \(short[0].id) of \(short[0].balance.decimalString) is \(shortfall.decimalString) more than the credit, within the tolerance: written off to fees")
            candidate(short, rule: .tolerance, score: Reconciler.Score.tolerance, won: true, why: "short by \(shortfall.decimalString), within tolerance")
            return match(rule: .tolerance, score: Reconciler.Score.tolerance, customer: customer,
                         allocations: [PlannedAllocation(invoiceID: short[0].id, paid: amount, writtenOff: shortfall)], rest: .zero(currency))
        }
        if short.count > 1 {
            notes.append("rule 5: \(short.count) invoices of \(customer) are within tolerance of the credit: equally good")
            for invoice in short { candidate([invoice], rule: .tolerance, score: Reconciler.Score.tolerance, won: false, why: "within tolerance, as is another invoice: equally good") }
            return exception(.ambiguous)
        }
        if tolerance.allowsShortfall(due - amount, of: due) {
            let (allocations, rest) = spread(over: payable, writeOffAllowed: true)
            candidate(payable, rule: .tolerance, score: Reconciler.Score.tolerance, won: true, why: "all open invoices, short by \((due - amount).decimalString), within tolerance")
            return match(rule: .tolerance, score: Reconciler.Score.tolerance, customer: customer, allocations: allocations, rest: rest)
        }
        notes.append("rule 4: none of \(customer)'s \(payable.count) open invoices (\(due.decimalString) due) fits the credit, and its policy does not allow oldest-first")
        candidate(payable, score: Reconciler.Score.debtorOldestFirst, won: false,
                  why: "registered the debtor account, but no open invoice or sum of them fits and oldest-first is not allowed")
        return exception(.noMatch)
    }

    mutating func addOwners(why: String) {
        for owner in owners {
            candidates.append(ReconciliationCandidate(subject: .customer(owner), customerID: owner, invoiceIDs: [], rule: .debtorAccount,
                                                      score: Reconciler.Score.debtorNothingOpen, won: false, why: why))
        }
    }

    // MARK: outcomes

    mutating func noRuleMatched() -> ReconciliationDecision {
        if !otherCurrencySeen.isEmpty {
            notes.append("every candidate is in another currency than the credit")
            return exception(.currencyMismatch)
        }
        if !scan.creditorReferences.isEmpty || !(credit.structuredReference ?? "").isEmpty {
            notes.append("the structured reference names no invoice we know")
            return exception(.unknownReference)
        }
        notes.append("no rule found a candidate")
        return exception(.noMatch)
    }

    mutating func record(_ named: Named, won: Bool, why: String) {
        candidates.append(ReconciliationCandidate(subject: .invoice(named.invoice.id), customerID: named.invoice.customerID, invoiceIDs: [named.invoice.id],
                                                  rule: named.rule, score: named.score, won: won, why: "\(named.via); \(why)"))
    }

    func match(rule: MatchRule, score: Int, customer: String, allocations: [PlannedAllocation], rest: Money) -> ReconciliationDecision {
        precondition(allocations.reduce(Money.zero(currency), { $0 + $1.paid }) + rest == amount, "a decision must account for the whole credit")
        return ReconciliationDecision(entryID: credit.entryID, amount: amount, state: rest.isPositive ? .partiallyMatched : .matched, reason: nil,
                                      rule: rule, confidence: score, customerID: customer, allocations: allocations, toCredit: rest, payout: nil,
                                      candidates: candidates, notes: notes)
    }

    func exception(_ reason: ExceptionReason) -> ReconciliationDecision {
        ReconciliationDecision(entryID: credit.entryID, amount: amount, state: .exception, reason: reason, rule: nil,
                               confidence: candidates.map(\.score).max() ?? 0, customerID: nil, allocations: [], toCredit: .zero(currency),
                               payout: nil, candidates: candidates, notes: notes)
    }
}

/// Account numbers in explanations and logs: the last four characters only.
public enum Masked {
    public static func account(_ account: String) -> String {
        let compact = MatchKey.account(account)
        guard compact.count > 4 else { return "****" }
        return "****" + compact.suffix(4)
    }
}
