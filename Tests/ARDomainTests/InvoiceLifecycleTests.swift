import ARDomain
import Testing

/// The invoice state machine (SPEC "Money rules"), driven through CustomerBooks as a script.
@Suite struct InvoiceLifecycleTests {
    @Test func statusFollowsBalance() {
        #expect(InvoiceStatus.following(balance: usd("100.00"), amount: usd("100.00")) == .open)
        #expect(InvoiceStatus.following(balance: usd("0.01"), amount: usd("100.00")) == .partiallyPaid)
        #expect(InvoiceStatus.following(balance: usd("99.99"), amount: usd("100.00")) == .partiallyPaid)
        #expect(InvoiceStatus.following(balance: usd("0.00"), amount: usd("100.00")) == .paid)
        #expect(InvoiceStatus.following(balance: usd("0.00"), amount: usd("0.00")) == .paid)
        #expect(InvoiceStatus.allCases.filter(\.isFinal) == [.voided, .writtenOff])
        #expect(InvoiceStatus.allCases.filter(\.isOpen) == [.open, .partiallyPaid])
        #expect(InvoiceStatus.allCases.map(\.rawValue) == ["open", "partially_paid", "paid", "voided", "written_off"])
    }

    @Test func payRefundAdjustVoid() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(invoice("I1", usd("100.00")))
        #expect(books.state("I1") == "open 100.00")
        #expect(try books.pay("P1", usd("30.00")) == ["I1 30.00 -> 70.00", "unapplied 0.00"])
        #expect(books.state("I1") == "partially_paid 70.00")
        #expect(try books.pay("P2", usd("70.00")) == ["I1 70.00 -> 0.00", "unapplied 0.00"])
        #expect(books.state("I1") == "paid 0.00")
        // A refund reopens the invoice.
        #expect(books.refund("P2", usd("20.00")) == ["I1 20.00 -> 20.00"])
        #expect(books.state("I1") == "partially_paid 20.00")
        // Adjusting up raises the balance by the difference.
        try books.adjust(invoiceID: "I1", to: usd("150.00"))
        #expect(books.state("I1") == "partially_paid 70.00")
        // Adjusting below what was applied pays it and turns the excess into credit,
        // taken from the newest application (P2's).
        try books.adjust(invoiceID: "I1", to: usd("50.00"))
        #expect(books.state("I1") == "paid 0.00")
        #expect(books.credit(in: usd) == usd("30.00"))
        #expect(books.lotSummary == ["P2 30.00"])
        #expect(books.standing(of: payment("P2"), in: usd) == usd("50.00"))
        #expect(books.standing(of: payment("P1"), in: usd) == usd("30.00"))
        // Same amount: nothing happens, nothing is posted.
        let entries = books.journal.count
        try books.adjust(invoiceID: "I1", to: usd("50.00"))
        #expect(books.journal.count == entries)
        // A paid invoice adjusted up is partially paid again; credit is not pushed onto it.
        try books.adjust(invoiceID: "I1", to: usd("80.00"))
        #expect(books.state("I1") == "partially_paid 30.00")
        #expect(books.credit(in: usd) == usd("30.00"))
        // Void returns the applied money to its origins as credit.
        try books.void(invoiceID: "I1")
        #expect(books.state("I1") == "voided 0.00")
        #expect(books.credit(in: usd) == usd("80.00"))
        #expect(books.invoice("I1").applied == usd("0.00"))
        #expect(books.standing(of: payment("P1"), in: usd) == usd("30.00"))
        #expect(books.standing(of: payment("P2"), in: usd) == usd("50.00"))
        // A voided invoice is final.
        #expect(rejection { try books.void(invoiceID: "I1") } == "invalid_state")
        #expect(rejection { try books.writeOff(invoiceID: "I1") } == "invalid_state")
        #expect(rejection { try books.adjust(invoiceID: "I1", to: usd("10.00")) } == "invalid_state")
        #expect(rejection { try books.pay("P3", usd("5.00"), explicit: [("I1", usd("5.00"))]) } == "invalid_state")
        // Refunding P1 now takes its credit, not the voided invoice.
        #expect(books.refund("P1", usd("30.00")) == [])
        #expect(books.credit(in: usd) == usd("50.00"))
        #expect(books.state("I1") == "voided 0.00")
    }

    @Test func writeOffThenRefund() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(invoice("I2", usd("100.00")))
        try books.pay("P1", usd("40.00"))
        try books.writeOff(invoiceID: "I2")
        #expect(books.state("I2") == "written_off 0.00")
        #expect(books.invoice("I2").writtenOffAmount == usd("60.00"))
        #expect(books.invoice("I2").applied == usd("40.00"))
        #expect(books.journal.last?.lines == [.debit(.writeOff, usd("60.00")), .credit(.receivable, usd("60.00"), invoice: "I2")])
        // Money taken back from a written-off invoice grows the loss; the invoice stays closed.
        books.refund("P1", usd("10.00"))
        #expect(books.state("I2") == "written_off 0.00")
        #expect(books.invoice("I2").writtenOffAmount == usd("70.00"))
        #expect(books.invoice("I2").applied == usd("30.00"))
        #expect(books.journal.last?.lines == [.debit(.writeOff, usd("10.00")), .credit(.refunds, usd("10.00"))])
        #expect(books.receivableFromJournal["I2"] == 0)
        // Final: nothing more.
        #expect(rejection { try books.writeOff(invoiceID: "I2") } == "invalid_state")
        #expect(rejection { try books.void(invoiceID: "I2") } == "invalid_state")
        #expect(rejection { try books.adjust(invoiceID: "I2", to: usd("1.00")) } == "invalid_state")
    }

    @Test func paidInvoiceCannotBeWrittenOffButCanBeVoided() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(invoice("I3", jpy("5000")))
        try books.pay("P1", jpy("5000"))
        #expect(rejection { try books.writeOff(invoiceID: "I3") } == "invalid_state")
        try books.void(invoiceID: "I3")
        #expect(books.state("I3") == "voided 0")
        #expect(books.credit(in: jpy) == jpy("5000"))
    }

    @Test func zeroAmountInvoiceIsPaidAtOnce() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(invoice("I0", kwd("0")))
        #expect(books.state("I0") == "paid 0.000")
        #expect(books.journal.isEmpty)
        try books.adjust(invoiceID: "I0", to: kwd("1.5"))
        #expect(books.state("I0") == "open 1.500")
    }

    @Test func rejectionCodes() throws {
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        books.issue(invoice("U1", usd("100.00")))
        books.issue(invoice("U2", usd("50.00")))
        books.issue(invoice("E1", Money.of("80.00", eur)))
        let before = books.snapshot
        #expect(rejection { try books.adjust(invoiceID: "U1", to: Money.of("100.00", eur)) } == "currency_mismatch")
        #expect(rejection { try books.pay("P1", usd("10.00"), explicit: [("E1", usd("10.00"))]) } == "currency_mismatch")
        #expect(rejection { try books.pay("P1", usd("10.00"), explicit: [("U1", Money.of("10.00", eur))]) } == "currency_mismatch")
        #expect(rejection { try books.issueCreditNote(id: "CN1", amount: Money.of("5.00", eur), invoiceID: "U1", invoiceKnown: true) } == "currency_mismatch")
        #expect(rejection { try books.pay("P1", usd("200.00"), explicit: [("U1", usd("100.01"))]) } == "amount_exceeds_balance")
        #expect(rejection { try books.pay("P1", usd("100.00"), explicit: [("U1", usd("60.00")), ("U2", usd("50.00"))]) } == "allocations_exceed_payment")
        #expect(rejection { try books.pay("P1", usd("100.00"), explicit: [("U1", usd("10.00")), ("U1", usd("10.00"))]) } == "duplicate_allocation")
        #expect(rejection { try books.pay("P1", usd("100.00"), explicit: [("N1", usd("60.00")), ("U2", usd("50.00"))], unknown: ["N1"]) } == "allocations_exceed_payment")
        // A rejected operation changes nothing, even when its first allocations were fine.
        #expect(books.snapshot == before)
    }
}
