import ARDomain
import Testing

/// CustomerBooks examples, one SPEC "Money rules" sentence each.
@Suite struct CustomerBooksTests {
    static func fresh() -> CustomerBooks { CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: []) }

    @Test func explicitAllocationsThenOldestDueFirstThenCredit() throws {
        var books = Self.fresh()
        books.issue(invoice("I-late", usd("100.00"), issued: "2026-01-01", due: "2026-02-28"))
        books.issue(invoice("I-b", usd("100.00"), issued: "2026-01-05", due: "2026-01-31"))
        books.issue(invoice("I-a", usd("100.00"), issued: "2026-01-05", due: "2026-01-31"))
        books.issue(invoice("I-z", usd("100.00"), issued: "2026-01-01", due: "2026-01-31"))
        books.issue(invoice("EUR", Money.of("100.00", eur), issued: "2025-01-01", due: "2025-01-31"))
        // Ties on due date: earlier issue date first, then invoice id.
        #expect(books.openInvoicesOldestFirst(in: usd).map(\.id) == ["I-z", "I-a", "I-b", "I-late"])
        #expect(try books.pay("P1", usd("330.00"), explicit: [("I-late", usd("50.00"))]) == [
            "I-late 50.00 -> 50.00", "I-z 100.00 -> 0.00", "I-a 100.00 -> 0.00", "I-b 80.00 -> 20.00", "unapplied 0.00",
        ])
        #expect(try books.pay("P2", usd("100.00")) == ["I-b 20.00 -> 0.00", "I-late 50.00 -> 0.00", "unapplied 30.00"])
        #expect(books.credit(in: usd) == usd("30.00"))
        #expect(books.state("EUR") == "open 100.00")  // never mixes currencies
        // An explicit allocation and the spread landing on the same invoice are one allocation line.
        var second = Self.fresh()
        second.issue(invoice("A", usd("100.00"), due: "2026-01-31"))
        second.issue(invoice("B", usd("100.00"), due: "2026-02-28"))
        #expect(try second.pay("P", usd("150.00"), explicit: [("B", usd("30.00"))]) == ["B 50.00 -> 50.00", "A 100.00 -> 0.00", "unapplied 0.00"])
        #expect(second.journal.last?.lines == [
            .debit(.cash("card"), usd("150.00")), .credit(.receivable, usd("50.00"), invoice: "B"), .credit(.receivable, usd("100.00"), invoice: "A"),
        ])
    }

    /// The balance `payment.confirmed` reports: what the open invoices in the currency still owe,
    /// after the payment, in that currency only (paid, voided and other currencies' invoices left out).
    @Test func openBalanceIsWhatOpenInvoicesInTheCurrencyStillOwe() throws {
        var books = Self.fresh()
        books.issue(invoice("A", usd("100.00"), due: "2026-01-31"))
        books.issue(invoice("B", usd("80.00"), due: "2026-02-28"))
        books.issue(invoice("V", usd("40.00"), due: "2026-03-31"))
        books.issue(invoice("E", Money.of("70.00", eur), due: "2026-01-31"))
        #expect(books.openBalance(in: usd) == usd("220.00"))
        try books.void(invoiceID: "V")
        try books.pay("P1", usd("130.00"))  // A paid, B partly
        #expect(books.openBalance(in: usd) == usd("50.00"))
        #expect(books.openBalance(in: eur) == Money.of("70.00", eur))
        #expect(books.openBalance(in: jpy("1").currency) == jpy("0"))
    }

    @Test func creditIsAppliedToNewInvoicesOnlyOldestLotFirst() throws {
        var books = Self.fresh()
        books.issue(invoice("OLD", usd("100.00")))
        try books.pay("P1", usd("130.00"))  // OLD paid, 30.00 credit
        try books.issueCreditNote(id: "CN1", amount: usd("20.00"), invoiceID: nil, invoiceKnown: false)
        try books.pay("PJ", jpy("500"))
        books.issue(invoice("OPEN", usd("100.00")))
        // OPEN took the credit as it was issued; more credit later is not pushed onto it.
        #expect(books.state("OPEN") == "partially_paid 50.00")
        try books.issueCreditNote(id: "CN2", amount: usd("15.00"), invoiceID: nil, invoiceKnown: false)
        #expect(books.state("OPEN") == "partially_paid 50.00")
        #expect(books.credit(in: usd) == usd("15.00"))
        // A new invoice takes the oldest lot first and leaves the yen alone.
        try books.issueCreditNote(id: "CN3", amount: usd("25.00"), invoiceID: nil, invoiceKnown: false)
        books.issue(invoice("NEW", usd("30.00")))
        #expect(books.state("NEW") == "paid 0.00")
        #expect(books.lotSummary == ["PJ 500", "CN3 10.00"])
        #expect(books.applications.suffix(2).map { "\($0.origin.id) \($0.invoiceID) \($0.amount.decimalString)" } == ["CN2 NEW 15.00", "CN3 NEW 15.00"])
        #expect(books.journal.last?.kind == .creditApplied)
        #expect(books.journal.last?.lines == [.debit(.unappliedCredit, usd("30.00")), .credit(.receivable, usd("30.00"), invoice: "NEW")])
        #expect(books.state("OPEN") == "partially_paid 50.00")
    }

    @Test func heldAllocationWaitsForItsInvoice() throws {
        var books = Self.fresh()
        books.issue(invoice("E", usd("100.00")))
        #expect(try books.pay("P1", usd("100.00"), explicit: [("F", usd("60.00"))], unknown: ["F"]) == ["E 40.00 -> 60.00", "unapplied 60.00"])
        #expect(books.lotSummary == ["P1 60.00 for F"])
        #expect(books.credit(in: usd) == usd("60.00"))  // the customer's money, reported as credit
        // Not spent on another new invoice meanwhile.
        books.issue(invoice("G", usd("100.00")))
        #expect(books.state("G") == "open 100.00")
        // F arrives smaller than the held amount: F is paid, the rest becomes plain credit.
        books.issue(invoice("F", usd("50.00")))
        #expect(books.state("F") == "paid 0.00")
        #expect(books.lotSummary == ["P1 10.00"])
        books.issue(invoice("H", usd("25.00")))
        #expect(books.state("H") == "partially_paid 15.00")
        #expect(books.credit(in: usd) == usd("0.00"))
    }

    @Test func heldAllocationGoesFirstEvenBeforeOlderCredit() throws {
        var books = Self.fresh()
        try books.issueCreditNote(id: "CN1", amount: usd("40.00"), invoiceID: nil, invoiceKnown: false)
        try books.pay("P1", usd("30.00"), explicit: [("F", usd("30.00"))], unknown: ["F"])
        books.issue(invoice("F", usd("50.00")))
        #expect(books.applications.map { "\($0.origin.id) \($0.amount.decimalString)" } == ["P1 30.00", "CN1 20.00"])
        #expect(books.lotSummary == ["CN1 20.00"])
    }

    @Test func heldAllocationForAnInvoiceInAnotherCurrencyBecomesCredit() throws {
        var books = Self.fresh()
        try books.pay("P1", usd("100.00"), explicit: [("Y", usd("100.00"))], unknown: ["Y"])
        books.issue(invoice("Y", Money.of("100.00", eur)))
        #expect(books.state("Y") == "open 100.00")
        #expect(books.lotSummary == ["P1 100.00"])
        #expect(books.lots.allSatisfy { $0.reservedForInvoice == nil })
        books.issue(invoice("Z", usd("60.00")))
        #expect(books.state("Z") == "paid 0.00")
        #expect(books.credit(in: usd) == usd("40.00"))
    }

    @Test func refundOfAnOverPaymentLeavesThePaidInvoicePaid() throws {
        var books = Self.fresh()
        books.issue(invoice("I", usd("100.00")))
        #expect(try books.pay("P", usd("130.00")) == ["I 100.00 -> 0.00", "unapplied 30.00"])
        #expect(books.refund("P", usd("30.00")) == [])
        #expect(books.state("I") == "paid 0.00")
        #expect(books.credit(in: usd) == usd("0.00"))
        #expect(books.journal.last?.lines == [.debit(.unappliedCredit, usd("30.00")), .credit(.refunds, usd("30.00"))])
        #expect(books.refund("P", usd("10.00")) == ["I 10.00 -> 10.00"])
        #expect(books.state("I") == "partially_paid 10.00")
        #expect(books.standing(of: payment("P"), in: usd) == usd("90.00"))
    }

    @Test func refundUnwindsNewestApplicationFirstAcrossInvoices() throws {
        var books = Self.fresh()
        books.issue(invoice("A", usd("100.00"), due: "2026-01-10"))
        books.issue(invoice("B", usd("100.00"), due: "2026-01-20"))
        books.issue(invoice("C", usd("100.00"), due: "2026-01-30"))
        try books.pay("P", usd("250.00"))
        #expect(books.refund("P", usd("120.00"), kind: .reversal) == ["C 50.00 -> 100.00", "B 70.00 -> 70.00"])
        #expect(books.state("A") == "paid 0.00")
        #expect(books.state("B") == "partially_paid 70.00")
        #expect(books.state("C") == "open 100.00")
        #expect(books.journal.last?.kind == .paymentReversed)
        #expect(books.journal.last?.lines.last == .credit(.chargebacks, usd("120.00")))
    }

    @Test func refundWithinOneMessageTakesTheLastAppliedFirst() throws {
        var books = Self.fresh()
        books.issue(invoice("A", usd("100.00"), due: "2026-01-31"))
        books.issue(invoice("B", usd("100.00"), due: "2026-02-28"))
        // Applied in this order: B 30 (explicit), A 100, B 20 (oldest-first spread).
        try books.pay("P", usd("150.00"), explicit: [("B", usd("30.00"))])
        #expect(books.applications.map { "\($0.invoiceID) \($0.amount.decimalString)" } == ["B 30.00", "A 100.00", "B 20.00"])
        #expect(books.refund("P", usd("40.00")) == ["B 20.00 -> 70.00", "A 20.00 -> 20.00"])
        #expect(books.refund("P", usd("100.00")) == ["A 80.00 -> 100.00", "B 20.00 -> 90.00"])
        #expect(books.standing(of: payment("P"), in: usd) == usd("10.00"))
    }

    @Test func refundTouchesOnlyItsOwnPaymentsMoney() throws {
        var books = Self.fresh()
        books.issue(invoice("A", usd("100.00")))
        try books.pay("P1", usd("60.00"))
        try books.pay("P2", usd("40.00"))
        #expect(books.refund("P1", usd("60.00")) == ["A 60.00 -> 60.00"])
        #expect(books.standing(of: payment("P2"), in: usd) == usd("40.00"))
        #expect(books.applications.map { "\($0.origin.id) \($0.standing.decimalString)" } == ["P1 0.00", "P2 40.00"])
    }

    @Test func creditNoteToANamedInvoiceRestToCredit() throws {
        var books = Self.fresh()
        books.issue(invoice("I", kwd("100")))
        try books.pay("P", kwd("80"))
        try books.issueCreditNote(id: "CN1", amount: kwd("50.250"), invoiceID: "I", invoiceKnown: true)
        #expect(books.state("I") == "paid 0.000")
        #expect(books.lotSummary == ["CN1 30.250"])
        #expect(books.journal.last?.lines == [
            .debit(.creditNotes, kwd("50.250")), .credit(.receivable, kwd("20"), invoice: "I"), .credit(.unappliedCredit, kwd("30.250")),
        ])
        // A credit note naming a paid invoice is all credit; one naming a future invoice is held for it.
        try books.issueCreditNote(id: "CN2", amount: kwd("1"), invoiceID: "I", invoiceKnown: true)
        try books.issueCreditNote(id: "CN3", amount: kwd("2"), invoiceID: "LATER", invoiceKnown: false)
        #expect(books.lotSummary == ["CN1 30.250", "CN2 1.000", "CN3 2.000 for LATER"])
        books.issue(invoice("LATER", kwd("2.5")))
        #expect(books.applications.suffix(2).map { "\($0.origin.id) \($0.amount.decimalString)" } == ["CN3 2.000", "CN1 0.500"])
        #expect(books.state("LATER") == "paid 0.000")
    }

    @Test func voidOfAPartlyPaidInvoiceGivesTheMoneyBackToItsOrigins() throws {
        var books = Self.fresh()
        books.issue(invoice("I", usd("100.00")))
        try books.pay("P1", usd("30.00"))
        try books.issueCreditNote(id: "CN1", amount: usd("20.00"), invoiceID: "I", invoiceKnown: true)
        #expect(books.state("I") == "partially_paid 50.00")
        try books.void(invoiceID: "I")
        #expect(books.state("I") == "voided 0.00")
        #expect(Set(books.lotSummary) == ["P1 30.00", "CN1 20.00"])
        #expect(books.journal.last?.lines == [
            .debit(.revenue, usd("100.00")), .credit(.receivable, usd("50.00"), invoice: "I"), .credit(.unappliedCredit, usd("50.00")),
        ])
        #expect(books.refund("P1", usd("30.00")) == [])
        #expect(books.lotSummary == ["CN1 20.00"])
    }

    @Test func bankCreditMatchedToOneInvoiceKeepsTheRestAsCredit() throws {
        var books = Self.fresh()
        books.issue(invoice("A", usd("100.00"), due: "2026-01-10"))
        books.issue(invoice("B", usd("100.00"), due: "2026-01-20"))
        let result = try books.receive(
            MoneyOrigin(.bankCredit, "E1"), amount: usd("150.00"), cashAccount: .cash("bank"), kind: .bankCreditReceived,
            explicit: [RequestedAllocation(invoiceID: "B", amount: usd("100.00"))], spreadRest: false)
        #expect(result.allocations.map(\.invoiceID) == ["B"])
        #expect(result.unapplied == usd("50.00"))
        #expect(books.state("A") == "open 100.00")  // not spread onto A
        #expect(books.state("B") == "paid 0.00")
        #expect(books.journal.last?.kind == .bankCreditReceived)
        #expect(books.lotSummary == ["E1 50.00"])
    }

    @Test func heldAllocationRefundedBeforeItsInvoiceArrives() throws {
        var books = Self.fresh()
        try books.pay("P", usd("80.00"), explicit: [("X", usd("50.00"))], unknown: ["X"])
        #expect(books.lotSummary == ["P 50.00 for X", "P 30.00"])
        // The payment's plain credit goes first, then what was held.
        books.refund("P", usd("40.00"))
        #expect(books.lotSummary == ["P 40.00 for X"])
        books.refund("P", usd("40.00"))
        #expect(books.lotSummary.isEmpty)
        books.issue(invoice("X", usd("50.00")))
        #expect(books.state("X") == "open 50.00")
        #expect(books.credit.isEmpty)
    }

    @Test func creditFromAVoidedInvoiceIsRefundedFromItsPayment() throws {
        var books = Self.fresh()
        books.issue(invoice("A", jpy("1000")))
        try books.pay("P", jpy("1000"))
        try books.void(invoiceID: "A")
        books.issue(invoice("B", jpy("600")))  // the returned credit pays B
        #expect(books.state("B") == "paid 0")
        #expect(books.refund("P", jpy("700")) == ["B 300 -> 300"])
        #expect(books.state("B") == "partially_paid 300")
        #expect(books.standing(of: payment("P"), in: jpy) == jpy("300"))
    }

    @Test func changesSinceLoadForTheStore() throws {
        // Books as the Store would load them: one stored lot and one stored application.
        let stored = Invoice(
            id: "I", customerID: "C1", number: "N-I", amount: usd("100.00"), balance: usd("60.00"), status: .partiallyPaid,
            issueDate: date("2026-01-01"), dueDate: date("2026-01-31"), paymentReference: nil, writtenOffAmount: usd("0.00"))
        var books = CustomerBooks(
            customerID: "C1", invoices: [stored],
            lots: [CreditLot(id: 7, origin: payment("P"), original: usd("25.00"), remaining: usd("25.00"), reservedForInvoice: nil)],
            applications: [Application(id: 3, invoiceID: "I", origin: payment("P"), amount: usd("40.00"), unwound: usd("0.00"))])
        #expect(books.statusChanges.isEmpty && books.creditChanges.isEmpty && books.changedLots.isEmpty && books.newLots.isEmpty)
        #expect(books.standing(of: payment("P"), in: usd) == usd("65.00"))
        books.refund("P", usd("35.00"))
        #expect(books.changedLots.map(\.remaining) == [usd("0.00")])
        #expect(books.changedApplications.map(\.unwound) == [usd("10.00")])
        #expect(books.newLots.isEmpty && books.newApplications.isEmpty)
        #expect(books.statusChanges.map { "\($0.invoice.id) \($0.from?.rawValue ?? "new") -> \($0.to.rawValue)" } == [])
        #expect(books.creditChanges == [usd("0.00")])
        books.issue(invoice("J", usd("5.00")))
        try books.pay("Q", usd("75.00"))
        #expect(books.statusChanges.map { "\($0.invoice.id) \($0.from?.rawValue ?? "new") -> \($0.to.rawValue)" } == ["I partially_paid -> paid", "J new -> paid"])
        #expect(books.newApplications.map { "\($0.invoiceID) \($0.amount.decimalString)" } == ["I 70.00", "J 5.00"])
        #expect(books.changedInvoices.map(\.id) == ["I", "J"])
        #expect(books.creditChanges == [usd("0.00")])  // loaded with 25.00, now none
    }
}
