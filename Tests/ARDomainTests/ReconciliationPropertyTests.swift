import ARDomain
import PropertyBased
import Testing
import TestSupport

/// Invariants of reconciliation over random books and random bank credits with messy,
/// colliding and adversarial texts (SPEC section 3):
/// - a credit never applies more than its amount, and every decision accounts for all of it;
/// - a match never crosses customers or currencies, never pays more than a balance;
/// - the same booking twice is decided once; money is never applied twice;
/// - decisions do not depend on the order facts or (non-competing) credits come in;
/// - every decision books cleanly (balanced journal, balances as planned).
@Suite struct ReconciliationPropertyTests {
    static let cases = 300

    /// A random little world: five customers, their invoices, registered accounts, payouts.
    struct World {
        var rng: SplitMix
        var invoices: [InvoiceFact] = []
        var owners: [String: [String]] = [:]
        var payouts: [PayoutFact] = []
        var oldestFirst: Set<String> = []
        var policy = ReconciliationPolicy()
        let accounts = ["DE44500105175407324931", "ACC-1", "ACC-2", "ACC-3", "ACC-4"]
        static let customers = ["C0", "C1", "C2", "C3", "C4"]
        static let currencies = [eur, eur, usd, jpy]

        init(seed: UInt64) {
            rng = SplitMix(state: seed)
            var counter = 0
            for customer in Self.customers {
                for _ in 0..<rng.int(0...5) {
                    counter += 1
                    let currency = rng.pick(Self.currencies)!
                    let amount = Money(minorUnits: Int64(rng.int(1...40)) * (rng.chance(50) ? 2500 : 1234), currency: currency)
                    var balance = amount
                    if rng.chance(20) { balance = .zero(currency) } else if rng.chance(20) { balance = Money(minorUnits: amount.minorUnits / 2, currency: currency) }
                    // Numbers collide across customers now and then ("INV-7" twice), some normalise alike.
                    let number = rng.chance(15) ? "A-1-2\(rng.int(0...1))" : "INV-\(rng.int(1...30))"
                    let body = "X\(counter)Y"
                    let reference = rng.chance(40) ? "RF" + checkDigits(for: body) + body : nil
                    invoices.append(InvoiceFact(id: "I\(counter)", customerID: customer, number: number, paymentReference: reference, amount: amount,
                                                balance: balance, status: rng.chance(5) && balance.isPositive ? .voided : .following(balance: balance, amount: amount),
                                                issueDate: date("2026-01-01"), dueDate: date("2026-0\(rng.int(1...9))-1\(rng.int(0...9))")))
                }
                if rng.chance(30) { oldestFirst.insert(customer) }
            }
            for account in accounts where rng.chance(70) {
                owners[account] = rng.chance(15) ? [rng.pick(Self.customers)!, rng.pick(Self.customers)!] : [rng.pick(Self.customers)!]
            }
            for index in 0..<rng.int(0...3) {
                let currency = rng.pick(Self.currencies)!
                payouts.append(PayoutFact(payoutID: "po_\(index)x", gross: Money(minorUnits: Int64(rng.int(1...9)) * 10_000, currency: currency),
                                          paymentCount: rng.int(1...9), settledByEntry: rng.chance(20) ? "E-old" : nil))
            }
            for currency in [eur, usd] where rng.chance(70) {
                policy.tolerances[currency] = Tolerance(shortfallLimit: Money(minorUnits: Int64(rng.int(0...3000)), currency: currency),
                                                        shortfallShare: BasisPoints(rng.int(0...300)),
                                                        payoutFeeLimit: Money(minorUnits: Int64(rng.int(0...5000)), currency: currency),
                                                        payoutFeeShare: BasisPoints(rng.int(0...800)))
            }
        }

        /// A bank credit that names, half-names or misnames things.
        mutating func credit(_ index: Int) -> BankCredit {
            let target = rng.pick(invoices)
            let currency = rng.chance(85) ? (target?.currency ?? eur) : rng.pick(Self.currencies)!
            var minor: Int64
            switch rng.int(0...4) {
            case 0: minor = target?.balance.minorUnits ?? 1000
            case 1: minor = (target?.balance.minorUnits ?? 1000) - Int64(rng.int(1...900))
            case 2: minor = (target?.balance.minorUnits ?? 1000) + Int64(rng.int(1...5000))
            case 3: minor = rng.pick(payouts)?.gross.minorUnits ?? 5000
            default: minor = Int64(rng.int(1...200_000))
            }
            if rng.chance(10), let payout = rng.pick(payouts) { minor = payout.gross.minorUnits - Int64(rng.int(0...2000)) }
            minor = max(1, minor)
            var parts: [String] = []
            for _ in 0..<rng.int(0...3) {
                guard let invoice = rng.pick(invoices) else { break }
                switch rng.int(0...6) {
                case 0: parts.append(invoice.number)
                case 1: parts.append(invoice.number.lowercased().replacingDashes(with: " "))
                case 2: parts.append(invoice.number.replacingDashes(with: "-000"))
                case 3: if let reference = invoice.paymentReference { parts.append(reference) }
                case 4: parts.append("X" + invoice.number + "9")  // a longer run that contains it
                case 5: parts.append("\(invoice.number) \(rng.int(1...99)),\(rng.int(10...99))")
                default: parts.append("DE44 5001 0517 5407 3249 31")  // an IBAN with digit groups
                }
            }
            if rng.chance(15), let payout = rng.pick(payouts) { parts.append(rng.chance(50) ? payout.payoutID.uppercased() : payout.payoutID) }
            if rng.chance(30) { parts.append(rng.pick(["thanks", "Rg. 2026-03-01", "qty 12345", "order 7", "INV", "RF19 5390 0754"])!) }
            rng.shuffleInPlace(&parts)
            return BankCredit(entryID: "E\(index)", amount: Money(minorUnits: minor, currency: currency),
                              debtorAccount: rng.chance(50) ? rng.pick(accounts) : nil, debtorName: nil,
                              remittanceInfo: parts.isEmpty ? nil : parts.joined(separator: rng.pick([" ", ", ", " / ", "; "])!),
                              structuredReference: rng.chance(10) ? invoices.first?.paymentReference : nil, endToEndID: nil)
        }

        func run() -> ReconciliationRun {
            ReconciliationRun(invoices: invoices, payouts: payouts, accountOwners: owners, oldestFirstCustomers: oldestFirst, policy: policy)
        }
    }

    /// Problems with one decision against the facts it was made from.
    static func problems(_ decision: ReconciliationDecision, _ credit: BankCredit, _ facts: ReconciliationFacts, _ policy: ReconciliationPolicy) -> [String] {
        var problems: [String] = []
        let currency = credit.currency
        switch decision.state {
        case .matched, .partiallyMatched:
            if let payout = decision.payout {
                if payout.gross - payout.fees != credit.amount { problems.append("payout settles \(payout.gross) - \(payout.fees), credit \(credit.amount)") }
                if !decision.allocations.isEmpty || decision.customerID != nil { problems.append("a payout also pays invoices") }
                if !policy.tolerance(currency).allowsPayoutFee(payout.fees, of: payout.gross) { problems.append("payout fees beyond tolerance") }
            } else {
                if decision.applied + decision.toCredit != credit.amount { problems.append("applied \(decision.applied) + credit \(decision.toCredit) != \(credit.amount)") }
                guard let customer = decision.customerID else { problems.append("a match without a customer"); break }
                var seen: Set<String> = []
                for allocation in decision.allocations {
                    guard seen.insert(allocation.invoiceID).inserted else { problems.append("\(allocation.invoiceID) twice"); continue }
                    guard let invoice = facts.invoices.first(where: { $0.id == allocation.invoiceID }) else { problems.append("unknown \(allocation.invoiceID)"); continue }
                    if invoice.customerID != customer { problems.append("\(invoice.id) of \(invoice.customerID) paid for \(customer)") }
                    if invoice.currency != currency { problems.append("\(invoice.id) in \(invoice.currency) paid in \(currency)") }
                    if !invoice.isPayable { problems.append("\(invoice.id) is \(invoice.status)") }
                    if allocation.settled > invoice.balance { problems.append("\(invoice.id) settled \(allocation.settled) > balance \(invoice.balance)") }
                }
                if decision.fees > policy.tolerance(currency).shortfallLimit { problems.append("written off \(decision.fees) beyond the limit") }
                if decision.state == .matched && decision.toCredit.isPositive { problems.append("matched with credit left") }
                if decision.state == .partiallyMatched && decision.toCredit.isZero { problems.append("partially matched with nothing left") }
            }
            if decision.rule == nil || decision.reason != nil { problems.append("a match needs a rule and no reason") }
        case .exception:
            if !decision.allocations.isEmpty || decision.toCredit.isPositive || decision.payout != nil { problems.append("an exception moved money") }
            if decision.reason == nil { problems.append("an exception without a reason") }
        case .ignored:
            problems.append("the rules never ignore")
        }
        return problems
    }

    @Test func decisionsAccountForTheCreditAndNeverCrossCustomersOrCurrencies() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var world = World(seed: seed)
            let run = world.run()
            for index in 0..<8 {
                let credit = world.credit(index)
                let facts = run.facts(for: credit)
                let decision = Reconciler.decide(credit, facts: facts, policy: world.policy)
                let found = Self.problems(decision, credit, facts, world.policy)
                #expect(found.isEmpty, "seed \(seed) credit \(credit) → \(decision.state) \(decision.reason?.rawValue ?? "") \(found)\n\(decision.notes)")
                // The same inputs in another order: the same decision.
                var shuffled = facts
                shuffled.invoices.shuffle(using: &world.rng)
                shuffled.accountOwners.shuffle(using: &world.rng)
                shuffled.payouts.shuffle(using: &world.rng)
                #expect(Reconciler.decide(credit, facts: shuffled, policy: world.policy) == decision, "seed \(seed): order of facts changed the decision")
                // It books cleanly on the customer's books.
                if let customer = decision.customerID {
                    let invoices = facts.invoices.filter { $0.customerID == customer }.map { fact in
                        Invoice(id: fact.id, customerID: fact.customerID, number: fact.number, amount: fact.amount, balance: fact.balance, status: fact.status,
                                issueDate: fact.issueDate, dueDate: fact.dueDate, paymentReference: fact.paymentReference, writtenOffAmount: .zero(fact.currency))
                    }
                    var books = CustomerBooks(customerID: customer, invoices: invoices, lots: [], applications: [])
                    do {
                        let result = try books.applyBankCredit(entryID: credit.entryID, received: credit.amount, allocations: decision.allocations)
                        #expect(result.unapplied == decision.toCredit)
                        for allocation in decision.allocations {
                            let before = facts.invoices.first { $0.id == allocation.invoiceID }!
                            #expect(books.invoice(allocation.invoiceID).balance == before.balance - allocation.settled)
                        }
                        #expect(books.credit(in: credit.currency) == decision.toCredit)
                    } catch {
                        Issue.record("seed \(seed): the decision does not book: \(error)")
                    }
                }
            }
        }
    }

    @Test func theSameBookingTwiceIsDecidedOnceAndNothingIsAppliedTwice() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var world = World(seed: seed)
            var run = world.run()
            let credits = (0..<10).map { world.credit($0) }
            // Each booking arrives up to three times (intraday advice, statement, re-sent file).
            var arrivals: [(BankCredit, BankEntryIdentity)] = []
            for credit in credits {
                for _ in 0..<world.rng.int(1...3) { arrivals.append((credit, BankEntryIdentity(account: "DE00", reference: credit.entryID))) }
            }
            world.rng.shuffleInPlace(&arrivals)
            var decided: [String: Int] = [:]
            var settledPerInvoice: [String: Money] = [:]
            for (credit, identity) in arrivals {
                guard let decision = run.reconcile(credit, identity: identity) else { continue }
                decided[credit.entryID, default: 0] += 1
                for allocation in decision.allocations { settledPerInvoice[allocation.invoiceID, default: .zero(credit.currency)] += allocation.settled }
            }
            #expect(decided.count == credits.count && decided.values.allSatisfy { $0 == 1 }, "seed \(seed): \(decided)")
            for (invoiceID, settled) in settledPerInvoice {
                let original = world.invoices.first { $0.id == invoiceID }!
                #expect(settled <= original.balance, "seed \(seed): \(invoiceID) settled \(settled) of \(original.balance)")
                #expect(run.invoices[invoiceID]?.balance == original.balance - settled)
            }
            let settledPayouts = run.payouts.values.filter { $0.settledByEntry != nil && $0.settledByEntry != "E-old" }
            #expect(Set(settledPayouts.compactMap(\.settledByEntry)).count == settledPayouts.count, "seed \(seed): an entry settled two payouts")
        }
    }

    @Test func nonCompetingCreditsGiveTheSameDecisionsInAnyOrder() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var world = World(seed: seed)
            let start = world.run()
            // Keep credits whose footprints (invoices, owners, payouts they may touch) are disjoint.
            var taken: Set<String> = []
            var credits: [BankCredit] = []
            for index in 0..<12 {
                let credit = world.credit(index)
                let facts = start.facts(for: credit)
                let footprint = Set(facts.invoices.map { "i:" + $0.id } + facts.invoices.map { "c:" + $0.customerID } + facts.accountOwners.map { "c:" + $0 }
                                    + facts.payouts.map { "p:" + $0.payoutID })
                if footprint.isDisjoint(with: taken) {
                    taken.formUnion(footprint)
                    credits.append(credit)
                }
            }
            func decisions(_ order: [BankCredit]) -> [String: ReconciliationDecision] {
                var run = start
                var result: [String: ReconciliationDecision] = [:]
                for credit in order { result[credit.entryID] = run.reconcile(credit, identity: BankEntryIdentity(account: "A", reference: credit.entryID)) }
                return result
            }
            var shuffled = credits
            world.rng.shuffleInPlace(&shuffled)
            #expect(decisions(credits) == decisions(shuffled), "seed \(seed)")
            #expect(decisions(credits) == decisions(credits.reversed()), "seed \(seed)")
        }
    }
}

extension SplitMix {
    mutating func shuffleInPlace<T>(_ items: inout [T]) { items.shuffle(using: &self) }
}

extension String {
    func replacingDashes(with replacement: String) -> String {
        split(separator: "-", omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
