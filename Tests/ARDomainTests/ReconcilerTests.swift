import ARDomain
import Testing

/// The reconciliation rules of SPEC section 3, one or more examples per rule and per outcome,
/// with adversarial remittance texts. Each test reads: invoices, a credit, the decision.
@Suite struct ReconcilerTests {
    static let policy = ReconciliationPolicy(tolerances: [
        eur: Tolerance(shortfallLimit: .of("25.00", eur), shortfallShare: BasisPoints(100),
                       payoutFeeLimit: .of("500.00", eur), payoutFeeShare: BasisPoints(500)),
    ])

    func invoice(_ id: String, _ customer: String, _ number: String, _ amount: String, currency: Currency = eur, balance: String? = nil,
                 status: InvoiceStatus? = nil, due: String = "2026-02-01", reference: String? = nil) -> InvoiceFact {
        let total = Money.of(amount, currency)
        let left = balance.map { Money.of($0, currency) } ?? total
        return InvoiceFact(id: id, customerID: customer, number: number, paymentReference: reference, amount: total, balance: left,
                           status: status ?? .following(balance: left, amount: total), issueDate: date("2026-01-01"), dueDate: date(due))
    }

    func credit(_ amount: String, _ currency: Currency = eur, text: String? = nil, structured: String? = nil, endToEnd: String? = nil,
                debtor: String? = nil, id: String = "E1") -> BankCredit {
        BankCredit(entryID: id, amount: .of(amount, currency), debtorAccount: debtor, debtorName: nil, remittanceInfo: text,
                   structuredReference: structured, endToEndID: endToEnd)
    }

    func decide(_ credit: BankCredit, _ invoices: [InvoiceFact] = [], owners: [String] = [], oldestFirst: Set<String> = [],
                payouts: [PayoutFact] = [], policy: ReconciliationPolicy = ReconcilerTests.policy) -> ReconciliationDecision {
        Reconciler.decide(credit, facts: ReconciliationFacts(invoices: invoices, accountOwners: owners, oldestFirstCustomers: oldestFirst,
                                                             payouts: payouts), policy: policy)
    }

    /// "invoice paid[+writtenOff]" per allocation, then "credit X".
    func summary(_ decision: ReconciliationDecision) -> [String] {
        decision.allocations.map { "\($0.invoiceID) \($0.paid.decimalString)" + ($0.writtenOff.isPositive ? "+\($0.writtenOff.decimalString)" : "") }
            + (decision.toCredit.isPositive ? ["credit \(decision.toCredit.decimalString)"] : [])
    }

    // MARK: rule 1

    @Test func validCreditorReferenceIsTheInvoicesPaymentReference() {
        let books = [invoice("I1", "C1", "INV-1", "100.00", reference: "RF18539007547034"), invoice("I2", "C2", "INV-2", "100.00")]
        let decision = decide(credit("100.00", text: "Payment RF18 5390 0754 7034"), books)
        #expect(decision.state == .matched)
        #expect(decision.rule == .structuredReference)
        #expect(decision.confidence == 100)
        #expect(decision.customerID == "C1")
        #expect(summary(decision) == ["I1 100.00"])
        #expect(decision.candidates.first?.won == true)
        #expect(decision.notes.contains { $0.contains("check digits verified") })
    }

    @Test func creditorReferenceCarryingTheInvoiceNumber() {
        // RF + check digits + "INV20240042": the creditor generated the reference from the number.
        let reference = "RF" + checkDigits(for: "INV20240042") + "INV20240042"
        #expect(CreditorReference.isValid(reference))
        let books = [invoice("I1", "C1", "INV-2024-0042", "80.00")]
        let decision = decide(credit("80.00", structured: reference), books)
        #expect(decision.rule == .structuredReference)
        #expect(summary(decision) == ["I1 80.00"])
    }

    @Test func structuredFieldEqualToAPaymentReferenceThatIsNoRF() {
        let books = [invoice("I1", "C1", "A-7", "50.00", reference: "7731 0042 9981")]
        let decision = decide(credit("50.00", structured: "773100429981"), books)
        #expect(decision.rule == .structuredReference)
        #expect(decision.confidence == 100)
        #expect(summary(decision) == ["I1 50.00"])
    }

    @Test func aValidReferenceThatNamesNothingIsUnknownReference() {
        let decision = decide(credit("100.00", text: "RF18 5390 0754 7034"), [invoice("I1", "C1", "INV-1", "100.00")])
        #expect(decision.state == .exception)
        #expect(decision.reason == .unknownReference)
        #expect(decision.allocations.isEmpty)
    }

    @Test func aReferenceFailingItsCheckDigitsIsNotTrusted() {
        let decision = decide(credit("100.00", text: "RF19 5390 0754 7034"), [invoice("I1", "C1", "INV-1", "100.00", reference: "RF18539007547034")])
        #expect(decision.state == .exception)
        #expect(decision.reason == .noMatch)
        #expect(decision.notes.contains { $0.contains("check digits fail") })
    }

    // MARK: rule 2

    @Test("messy texts name the invoice", arguments: [
        "Rg.Nr. inv 2024 42 / thx", "INV20240042", "invoice INV-2024-0042.", "Zahlung INV 2024-0042 Kunde 77", "inv_2024_00042",
    ])
    func messyText(_ text: String) {
        let books = [invoice("I1", "C1", "INV-2024-0042", "120.00"), invoice("I2", "C1", "INV-2024-0043", "120.00")]
        let decision = decide(credit("120.00", text: text), books)
        #expect(decision.state == .matched, "\(text): \(decision.notes)")
        #expect(decision.rule == .invoiceNumber)
        #expect(summary(decision) == ["I1 120.00"], "\(text)")
    }

    @Test func severalInvoicesWithoutAmounts() {
        let books = [invoice("I1", "C1", "INV-10", "100.00", due: "2026-01-10"), invoice("I2", "C1", "INV-11", "50.00", due: "2026-01-05"),
                     invoice("I3", "C1", "INV-12", "70.00")]
        let decision = decide(credit("150.00", text: "INV-10, INV-11"), books)
        #expect(decision.state == .matched)
        #expect(summary(decision) == ["I2 50.00", "I1 100.00"])  // oldest due first
    }

    @Test func severalInvoicesWithAmountsWrittenBesideThem() {
        let books = [invoice("I1", "C1", "INV-10", "100.00"), invoice("I2", "C1", "INV-11", "300.00")]
        let decision = decide(credit("150.00", text: "INV-10 EUR 40,00; INV-11 110.00"), books)
        #expect(decision.state == .matched)
        #expect(summary(decision) == ["I1 40.00", "I2 110.00"])
        #expect(decision.notes.contains { $0.contains("amounts written beside the invoices add up") })
    }

    @Test func overPaymentLeavesTheRestAsCredit() {
        let decision = decide(credit("130.00", text: "INV-10"), [invoice("I1", "C1", "INV-10", "100.00")])
        #expect(decision.state == .partiallyMatched)
        #expect(summary(decision) == ["I1 100.00", "credit 30.00"])
    }

    @Test func partialPaymentBeyondTheTolerance() {
        let decision = decide(credit("60.00", text: "INV-10"), [invoice("I1", "C1", "INV-10", "100.00")])
        #expect(decision.state == .matched)
        #expect(summary(decision) == ["I1 60.00"])
        #expect(decision.fees.isZero)
    }

    @Test func bankChargesWithinToleranceAreWrittenOff() {
        let decision = decide(credit("990.00", text: "INV-10"), [invoice("I1", "C1", "INV-10", "1000.00")])
        #expect(decision.state == .matched)
        #expect(decision.rule == .invoiceNumber)
        #expect(summary(decision) == ["I1 990.00+10.00"])
        #expect(decision.fees == .of("10.00", eur))
        // 1 % of 1,000.00 is 10.00: one cent more is beyond the share (though under 25.00).
        let beyond = decide(credit("989.99", text: "INV-10"), [invoice("I1", "C1", "INV-10", "1000.00")])
        #expect(summary(beyond) == ["I1 989.99"])
    }

    // MARK: adversarial texts

    @Test func anotherCustomersInvoiceNumberAgainstTheDebtorAccount() {
        let books = [invoice("I1", "C1", "INV-10", "100.00"), invoice("B1", "C2", "INV-99", "100.00")]
        let decision = decide(credit("100.00", text: "INV-99", debtor: "DE89370400440532013000"), books, owners: ["C1"])
        #expect(decision.state == .exception)
        #expect(decision.reason == .ambiguous)
        #expect(decision.allocations.isEmpty)
        #expect(decision.candidateCustomers == ["C1", "C2"])
        #expect(decision.candidates.allSatisfy { !$0.won })
    }

    @Test func invoicesOfTwoCustomersNamed() {
        let books = [invoice("I1", "C1", "INV-10", "100.00"), invoice("B1", "C2", "INV-99", "100.00")]
        let decision = decide(credit("200.00", text: "INV-10 INV-99"), books)
        #expect(decision.reason == .ambiguous)
        #expect(decision.candidateCustomers == ["C1", "C2"])
    }

    @Test("look-alikes name nothing", arguments: [
        "from DE89 3704 0044 0532 0130 00",        // the invoice number is inside the IBAN (print form)
        "IBAN DE89370400440532013000",             // electronic form
        "ref XINV-0532 / INV-05321",               // inside longer runs
        "amount 4.400,53 date 05.32.2026",         // amounts and dates
        "order 532013",                            // digits that only look like it
    ])
    func lookAlikes(_ text: String) {
        let books = [invoice("I1", "C1", "INV-0532", "100.00"), invoice("I2", "C1", "0532013000", "100.00"), invoice("I3", "C2", "44053", "100.00")]
        let decision = decide(credit("100.00", text: text), books)
        #expect(decision.state == .exception, "\(text): \(decision.candidates)")
        #expect(decision.reason == .noMatch)
        #expect(decision.allocations.isEmpty)
    }

    @Test func oneTextNamingTwoInvoicesThatNormaliseAlike() {
        let books = [invoice("I1", "C1", "A-1-23", "100.00"), invoice("I2", "C1", "A-12-3", "100.00")]
        let decision = decide(credit("100.00", text: "A123"), books)
        #expect(decision.reason == .ambiguous)
        #expect(decision.allocations.isEmpty)
    }

    @Test func namedInvoiceAlreadyPaidIsAPossibleDoublePayment() {
        let decision = decide(credit("100.00", text: "INV-10"), [invoice("I1", "C1", "INV-10", "100.00", balance: "0.00")])
        #expect(decision.reason == .duplicate)
        #expect(decision.candidateCustomers == ["C1"])
    }

    @Test func namedInvoiceInAnotherCurrency() {
        let decision = decide(credit("100.00", text: "INV-10"), [invoice("I1", "C1", "INV-10", "100.00", currency: usd)])
        #expect(decision.reason == .currencyMismatch)
        #expect(decision.candidates.first?.why.contains("USD") == true)
    }

    @Test func debtorAccountThatAgreesRaisesConfidence() {
        let decision = decide(credit("100.00", text: "INV-10", debtor: "X1"), [invoice("I1", "C1", "INV-10", "100.00")], owners: ["C1"])
        #expect(decision.confidence == 95)
        #expect(decision.rule == .invoiceNumber)
    }

    // MARK: rule 3

    static let payout = PayoutFact(payoutID: "po_1NxYzAbC", gross: .of("1000.00", eur), paymentCount: 12, settledByEntry: nil)

    @Test func payoutByIDWithGatewayFees() {
        let decision = decide(credit("971.00", text: "STRIPE PAYOUT PO_1NXYZABC"), payouts: [Self.payout])
        #expect(decision.state == .matched)
        #expect(decision.rule == .gatewayPayout)
        #expect(decision.payout == PayoutSettlement(payoutID: "po_1NxYzAbC", gross: .of("1000.00", eur), fees: .of("29.00", eur)))
        #expect(decision.customerID == nil)
        #expect(decision.allocations.isEmpty)
    }

    @Test func payoutAlreadySettled() {
        let settled = PayoutFact(payoutID: "po_1NxYzAbC", gross: .of("1000.00", eur), paymentCount: 12, settledByEntry: "E0")
        let decision = decide(credit("971.00", text: "po_1NxYzAbC"), payouts: [settled])
        #expect(decision.reason == .duplicate)
    }

    @Test func payoutFeesBeyondTheTolerance() {
        let decision = decide(credit("900.00", text: "po_1NxYzAbC"), payouts: [Self.payout])
        #expect(decision.reason == .noMatch)
        #expect(decision.candidates.first?.why.contains("exceed the tolerance") == true)
    }

    @Test func payoutByTheAmountOfExactlyOnePendingPayout() {
        let other = PayoutFact(payoutID: "po_2", gross: .of("2000.00", eur), paymentCount: 3, settledByEntry: nil)
        let decision = decide(credit("980.00", text: "GATEWAY SETTLEMENT"), payouts: [Self.payout, other])
        #expect(decision.rule == .gatewayPayout)
        #expect(decision.confidence == 80)
        #expect(decision.payout?.payoutID == "po_1NxYzAbC")
        let twin = PayoutFact(payoutID: "po_3", gross: .of("990.00", eur), paymentCount: 2, settledByEntry: nil)
        let ambiguous = decide(credit("980.00"), payouts: [Self.payout, twin])
        #expect(ambiguous.reason == .ambiguous)
        #expect(Set(ambiguous.candidates.compactMap(\.payoutID)) == ["po_1NxYzAbC", "po_3"])
        // A customer's registered account means it is not a payout, whatever the amount.
        #expect(decide(credit("980.00", debtor: "X1"), owners: ["C1"], payouts: [Self.payout]).payout == nil)
    }

    // MARK: rule 4 (and 5)

    @Test func debtorAccountAndOneInvoiceOfExactlyThatAmount() {
        let books = [invoice("I1", "C1", "INV-1", "100.00"), invoice("I2", "C1", "INV-2", "75.00"), invoice("X", "C2", "INV-3", "75.00")]
        let decision = decide(credit("75.00", text: "thanks", debtor: "X1"), books, owners: ["C1"])
        #expect(decision.rule == .debtorAccount)
        #expect(decision.confidence == 85)
        #expect(summary(decision) == ["I2 75.00"])
    }

    @Test func debtorAccountAndTwoInvoicesOfThatAmount() {
        let books = [invoice("I1", "C1", "INV-1", "75.00"), invoice("I2", "C1", "INV-2", "75.00")]
        let decision = decide(credit("75.00", debtor: "X1"), books, owners: ["C1"])
        #expect(decision.reason == .ambiguous)
        #expect(decision.candidates.count == 2)
        #expect(decision.candidates.allSatisfy { $0.score == decision.candidates[0].score })
    }

    @Test func debtorAccountAndTheSumOfAllOpenInvoices() {
        let books = [invoice("I1", "C1", "INV-1", "100.00", due: "2026-01-02"), invoice("I2", "C1", "INV-2", "75.00", due: "2026-01-01")]
        #expect(summary(decide(credit("175.00", debtor: "X1"), books, owners: ["C1"])) == ["I2 75.00", "I1 100.00"])
        let more = decide(credit("200.00", debtor: "X1"), books, owners: ["C1"])
        #expect(more.state == .partiallyMatched)
        #expect(summary(more) == ["I2 75.00", "I1 100.00", "credit 25.00"])
    }

    @Test func oldestFirstOnlyWhenThePolicyAllows() {
        let books = [invoice("I1", "C1", "INV-1", "100.00", due: "2026-01-02"), invoice("I2", "C1", "INV-2", "75.00", due: "2026-01-01")]
        let allowed = decide(credit("120.00", debtor: "X1"), books, owners: ["C1"], oldestFirst: ["C1"])
        #expect(allowed.rule == .debtorAccount)
        #expect(summary(allowed) == ["I2 75.00", "I1 45.00"])
        let refused = decide(credit("120.00", debtor: "X1"), books, owners: ["C1"])
        #expect(refused.reason == .noMatch)
        #expect(refused.candidateCustomers == ["C1"])
    }

    @Test func debtorAccountAndAShortfallWithinTolerance() {
        let books = [invoice("I1", "C1", "INV-1", "1000.00"), invoice("I2", "C1", "INV-2", "300.00")]
        let decision = decide(credit("992.00", debtor: "X1"), books, owners: ["C1"])
        #expect(decision.rule == .tolerance)
        #expect(summary(decision) == ["I1 992.00+8.00"])
        // 15.00 short is under 25.00 but more than 1 % of 1,000.00: no.
        #expect(decide(credit("985.00", debtor: "X1"), books, owners: ["C1"]).reason == .noMatch)
        #expect(decision.state == .matched)
    }

    @Test func accountRegisteredByTwoCustomers() {
        let decision = decide(credit("75.00", debtor: "X1"), [invoice("I1", "C1", "INV-1", "75.00")], owners: ["C2", "C1"])
        #expect(decision.reason == .ambiguous)
        #expect(decision.candidateCustomers == ["C1", "C2"])
    }

    @Test func knownDebtorWithNothingOpen() {
        let decision = decide(credit("75.00", debtor: "X1"), [], owners: ["C1"])
        #expect(decision.state == .partiallyMatched)
        #expect(decision.customerID == "C1")
        #expect(summary(decision) == ["credit 75.00"])
    }

    @Test func knownDebtorWhoseInvoicesAreInAnotherCurrency() {
        let decision = decide(credit("75.00", debtor: "X1"), [invoice("I1", "C1", "INV-1", "75.00", currency: usd)], owners: ["C1"])
        #expect(decision.reason == .currencyMismatch)
    }

    @Test func nothingAtAll() {
        let decision = decide(credit("75.00", text: "misc"), [invoice("I1", "C1", "INV-1", "75.00")])
        #expect(decision.reason == .noMatch)
        #expect(decision.candidates.isEmpty)
    }

    // MARK: determinism

    @Test func factsInAnyOrderGiveTheSameDecision() {
        let books = [invoice("I1", "C1", "INV-10", "100.00"), invoice("I2", "C1", "INV-11", "50.00"), invoice("B1", "C2", "INV-99", "100.00"),
                     invoice("I3", "C1", "INV-12", "70.00")]
        for text in ["INV-10 INV-11", "INV-10 INV-99", "INV-12 10.00 INV-11 40.00"] {
            let first = decide(credit("150.00", text: text, debtor: "X"), books, owners: ["C1"])
            for _ in 0..<10 {
                #expect(decide(credit("150.00", text: text, debtor: "X"), books.shuffled(), owners: ["C1"]) == first)
            }
        }
    }

    // MARK: booking a decision

    @Test func applyingABankCreditWithAShortfallAndCredit() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(ARDomain.Invoice(id: "I1", customerID: "C1", number: "INV-1", amount: usd("100.00"), issueDate: date("2026-01-01"), dueDate: date("2026-01-31")))
        books.issue(ARDomain.Invoice(id: "I2", customerID: "C1", number: "INV-2", amount: usd("50.00"), issueDate: date("2026-01-01"), dueDate: date("2026-01-31")))
        let result = try books.applyBankCredit(entryID: "E1", received: usd("148.00"), allocations: [
            PlannedAllocation(invoiceID: "I1", paid: usd("98.00"), writtenOff: usd("2.00")),
            PlannedAllocation(invoiceID: "I2", paid: usd("40.00"), writtenOff: usd("0.00")),
        ])
        #expect(result.unapplied == usd("10.00"))
        #expect(books.state("I1") == "paid 0.00")
        #expect(books.state("I2") == "partially_paid 10.00")
        #expect(books.credit(in: usd) == usd("10.00"))
        let entries = books.journal.suffix(2)
        #expect(entries.map(\.kind) == [.bankCreditReceived, .shortfallWrittenOff])
        #expect(entries.first?.lines == [.debit(.bank, usd("148.00")), .credit(.receivable, usd("98.00"), invoice: "I1"),
                                         .credit(.receivable, usd("40.00"), invoice: "I2"), .credit(.unappliedCredit, usd("10.00"))])
        #expect(entries.last?.lines == [.debit(.fees, usd("2.00")), .credit(.receivable, usd("2.00"), invoice: "I1")])
        #expect(books.receivableFromJournal["I1"] == 0)
        #expect(books.newApplications.map(\.amount) == [usd("100.00"), usd("40.00")])
        let before = books.snapshot
        #expect(rejection { _ = try books.applyBankCredit(entryID: "E2", received: usd("5.00"), allocations: [
            PlannedAllocation(invoiceID: "I2", paid: usd("5.00"), writtenOff: usd("6.00")),
        ]) } == "amount_exceeds_balance")
        #expect(rejection { _ = try books.applyBankCredit(entryID: "E2", received: usd("5.00"), allocations: [
            PlannedAllocation(invoiceID: "I1", paid: usd("5.00"), writtenOff: usd("0.00")),
        ]) } == "invalid_state")
        #expect(books.snapshot == before)
    }

    @Test func payoutJournalSplitsBankAndFeesOverCustomers() {
        let payments = [
            PayoutPayment(paymentID: "P1", customerID: "C2", amount: usd("100.00"), clearingAccount: .cash("card")),
            PayoutPayment(paymentID: "P2", customerID: "C1", amount: usd("200.00"), clearingAccount: .cash("card")),
            PayoutPayment(paymentID: "P3", customerID: "C1", amount: usd("33.33"), clearingAccount: .cash("wallet")),
        ]
        let entries = PayoutPosting.entries(entryID: "E9", received: usd("320.00"), payments: payments)
        #expect(entries.map(\.customerID) == ["C1", "C2"])
        #expect(entries.allSatisfy { $0.kind == .payoutSettled && $0.reference == "E9" })
        let bank = entries.flatMap(\.lines).filter { $0.account == .bank }.reduce(Int64(0)) { $0 + $1.debit }
        let fees = entries.flatMap(\.lines).filter { $0.account == .fees }.reduce(Int64(0)) { $0 + $1.debit }
        #expect(bank == 32000)
        #expect(fees == 1333)
        #expect(entries[0].lines.filter { $0.credit > 0 }.map(\.account) == [.cash("card"), .cash("wallet")])
    }

    @Test func aRunSeesEarlierCreditsAndEachBookingOnce() {
        var run = ReconciliationRun(invoices: [invoice("I1", "C1", "INV-10", "100.00")], payouts: [Self.payout], accountOwners: [:],
                                    oldestFirstCustomers: [], policy: Self.policy)
        let first = run.reconcile(credit("100.00", text: "INV-10", id: "E1"), identity: BankEntryIdentity(account: "A", reference: "R1"))
        #expect(first?.state == .matched)
        #expect(run.reconcile(credit("100.00", text: "INV-10", id: "E1"), identity: BankEntryIdentity(account: "a", reference: "R1")) == nil)
        let second = run.reconcile(credit("100.00", text: "INV-10", id: "E2"), identity: BankEntryIdentity(account: "A", reference: "R2"))
        #expect(second?.reason == .duplicate)  // the invoice is paid now
        let payout = run.reconcile(credit("990.00", text: "po_1NxYzAbC", id: "E3"), identity: BankEntryIdentity(account: "A", reference: "R3"))
        #expect(payout?.rule == .gatewayPayout)
        let again = run.reconcile(credit("990.00", text: "po_1NxYzAbC", id: "E4"), identity: BankEntryIdentity(account: "A", reference: "R4"))
        #expect(again?.reason == .duplicate)
    }
}

/// Two check digits that make "RF" + digits + body valid (ISO 11649).
func checkDigits(for body: String) -> String {
    var scalars = Array(body.unicodeScalars)
    scalars += "RF00".unicodeScalars
    let remainder = Mod97.remainder(scalars) ?? 0
    let check = 98 - remainder
    return check < 10 ? "0\(check)" : String(check)
}
