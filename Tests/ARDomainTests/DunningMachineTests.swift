import ARDomain
import Testing

/// The reminder state machine as scripts of facts and ticks (docs/dunning.md). The standard
/// policy: L1 -3 upcoming, L2 0 due, L3 +7 overdue, L4 +14 overdue, L5 +30 final notice,
/// L6 +45 escalation; grace 3 days.
@Suite struct DunningMachineTests {
    @Test func eachStepGoesOutOnItsDayOnceAndTheEscalationIsLast() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        #expect(script.days("2026-03-01", "2026-06-30") == [
            "2026-03-07: L1 reminder.upcoming I1 100.00 USD",
            "2026-03-10: L2 reminder.due I1 100.00 USD",
            "2026-03-17: L3 reminder.overdue I1 100.00 USD",
            "2026-03-24: L4 reminder.overdue I1 100.00 USD",
            "2026-04-09: L5 reminder.final_notice I1 100.00 USD",
            "2026-04-24: L6 dunning.escalated I1 100.00 USD",
        ])
        #expect(script.state("I1") == .upToDate(lastSentOffset: 45, next: nil))
        #expect(script.sent.map(\.step.template) == ["invoice-upcoming", "invoice-due", "invoice-overdue-1", "invoice-overdue-2", "final-notice", "escalation"])
    }

    @Test func statesSayWhatComesNext() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.tick("2026-03-01")
        #expect(script.state("I1") == .notYetDue(next: ScheduledStep(step: DunningPolicy.standard.steps[0], level: 1, date: date("2026-03-07"))))
        script.tick("2026-03-07")
        #expect(script.state("I1") == .sending(ScheduledStep(step: DunningPolicy.standard.steps[0], level: 1, date: date("2026-03-07"))))
        script.tick("2026-03-08")
        #expect(script.state("I1") == .upToDate(lastSentOffset: -3, next: ScheduledStep(step: DunningPolicy.standard.steps[1], level: 2, date: date("2026-03-10"))))
    }

    @Test func aCustomersInvoicesAtTheSameStepShareOneReminderPerCurrency() {
        var script = DunningScript()
        script.issue("I2", usd("20.00"), due: "2026-03-10")
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("E1", .of("30.00", eur), due: "2026-03-10")
        script.issue("I4", usd("5.00"), due: "2026-03-11")
        #expect(script.run("2026-03-07") == ["L1 reminder.upcoming E1 30.00 EUR", "L1 reminder.upcoming I1,I2 120.00 USD"])
        let usdReminder = script.sent.last!
        #expect(usdReminder.invoices.map(\.daysOverdue) == [-3, -3])
        #expect(usdReminder.localDate == date("2026-03-07"))
        #expect(usdReminder.total == usd("120.00"))
        #expect(script.run("2026-03-08") == ["L1 reminder.upcoming I4 5.00 USD"])
        #expect(script.run("2026-03-10") == ["L2 reminder.due E1 30.00 EUR", "L2 reminder.due I1,I2 120.00 USD"])
        #expect(script.run("2026-03-11") == ["L2 reminder.due I4 5.00 USD"])
        #expect(script.run("2026-03-17") == ["L3 reminder.overdue E1 30.00 EUR", "L3 reminder.overdue I1,I2 120.00 USD"])
        #expect(script.run("2026-03-18") == ["L3 reminder.overdue I4 5.00 USD"])
    }

    @Test func afterDowntimeOnlyTheHighestDueStepIsSentAndThePassedOnesNever() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("I2", usd("50.00"), due: "2026-02-01")
        #expect(script.run("2026-03-07") == ["L1 reminder.upcoming I1 100.00 USD", "L5 reminder.final_notice I2 50.00 USD"])
        // 25 days without a pass: I1 passed due (+0), +7 and +14; I2 passed the escalation.
        #expect(script.run("2026-04-01") == ["L4 reminder.overdue I1 100.00 USD", "L6 dunning.escalated I2 50.00 USD"])
        #expect(script.run("2026-04-01").isEmpty, "a second pass the same day sends nothing")
        #expect(script.days("2026-04-02", "2026-05-31") == [
            "2026-04-09: L5 reminder.final_notice I1 100.00 USD",
            "2026-04-24: L6 dunning.escalated I1 100.00 USD",
        ])
    }

    @Test func paidStopsPartialPaymentContinuesWithTheBalanceAndARefundReentersAtTheHighestDueStep() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-10")
        script.balance("I1", usd("60.00"))
        #expect(script.days("2026-03-11", "2026-03-17") == ["2026-03-17: L3 reminder.overdue I1 60.00 USD"])
        script.balance("I1", .zero(usd))
        #expect(script.days("2026-03-18", "2026-04-09").isEmpty)
        #expect(script.state("I1") == .stopped(.paid))
        script.balance("I1", usd("100.00"))  // refunded on 2026-04-10: open again
        #expect(script.run("2026-04-10") == ["L5 reminder.final_notice I1 100.00 USD"], "+14 and earlier were passed over")
        #expect(script.days("2026-04-11", "2026-05-10") == ["2026-04-24: L6 dunning.escalated I1 100.00 USD"])
    }

    @Test func aReopenedInvoiceWhoseHighestDueStepWasSentWaitsForTheNextOne() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-17")
        script.balance("I1", .zero(usd))
        _ = script.days("2026-03-18", "2026-03-19")
        script.balance("I1", usd("25.00"))  // chargeback of part of the payment
        #expect(script.days("2026-03-20", "2026-03-24") == ["2026-03-24: L4 reminder.overdue I1 25.00 USD"])
    }

    @Test(arguments: [InvoiceStatus.voided, .writtenOff, .paid])
    func closedInvoicesAreNeverReminded(_ status: InvoiceStatus) {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("I2", usd("10.00"), due: "2026-03-10")
        script.close("I1", status)
        #expect(script.days("2026-03-01", "2026-06-01").allSatisfy { !$0.contains("I1") })
        #expect(script.state("I1") == .stopped(status))
        #expect(script.sent.count == 6, "the other invoice walks every step")
    }

    @Test func aDisputePausesAndItsResolutionResumesAtTheHighestDueStep() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("I2", usd("10.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-10")
        script.dispute("I1", "D-1")
        #expect(script.run("2026-03-17") == ["L3 reminder.overdue I2 10.00 USD"])
        #expect(script.waits("I1") == ["disputed"])
        #expect(script.days("2026-03-18", "2026-03-31") == ["2026-03-24: L4 reminder.overdue I2 10.00 USD"])
        script.resolve("I1", "D-1")
        #expect(script.run("2026-04-01") == ["L4 reminder.overdue I1 100.00 USD"])
        #expect(script.days("2026-04-02", "2026-04-09") == ["2026-04-09: L5 reminder.final_notice I1,I2 110.00 USD"])
    }

    @Test func twoOpenDisputesBothHaveToEnd() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.dispute("I1", "D-1")
        script.dispute("I1", "D-2")
        script.tick("2026-03-10")
        #expect(script.waits("I1") == ["disputed", "disputed"])
        script.resolve("I1", "D-2")
        #expect(script.run("2026-03-11").isEmpty)
        script.resolve("I1", "D-1")
        #expect(script.run("2026-03-12") == ["L2 reminder.due I1 100.00 USD"])
    }

    @Test func aBrokenPromiseResumesAfterDatePlusGraceAtTheHighestDueStep() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-12")
        script.promise(["I1"], by: "2026-03-20")  // paused through 2026-03-23 (grace 3)
        #expect(script.days("2026-03-13", "2026-03-23").isEmpty)
        #expect(script.waits("I1") == ["promise_to_pay"])
        if case .waiting(_, let reasons)? = script.state("I1") {
            #expect(reasons == [.promisedToPay(promisedDate: date("2026-03-20"), until: date("2026-03-23"))])
        }
        #expect(script.run("2026-03-24") == ["L4 reminder.overdue I1 100.00 USD"], "+7 was passed over while paused")
    }

    @Test func aKeptPromiseEndsDunning() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-12")
        script.promise(["I1"], by: "2026-03-20")
        _ = script.days("2026-03-13", "2026-03-19")
        script.balance("I1", .zero(usd))
        #expect(script.days("2026-03-20", "2026-06-01").isEmpty)
    }

    @Test func aPartlyKeptPromiseResumesWithTheRemainingBalance() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-10")
        script.promise(["I1"], by: "2026-03-15")
        script.balance("I1", usd("30.00"))
        #expect(script.days("2026-03-11", "2026-03-19") == ["2026-03-19: L3 reminder.overdue I1 30.00 USD"])
    }

    @Test func aPendingPaymentHoldsItsInvoicesOrTheWholeCurrencyWhenItNamesNone() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("I2", usd("10.00"), due: "2026-03-10")
        script.issue("E1", .of("10.00", eur), due: "2026-03-10")
        script.payments = [PaymentInFlight(paymentID: "P1", kind: .pending, currency: usd, invoiceIDs: ["I1"])]
        #expect(script.run("2026-03-10") == ["L2 reminder.due E1 10.00 EUR", "L2 reminder.due I2 10.00 USD"])
        #expect(script.waits("I1") == ["payment_pending"])
        script.payments = [PaymentInFlight(paymentID: "P2", kind: .pending, currency: usd, invoiceIDs: [])]
        #expect(script.run("2026-03-17") == ["L3 reminder.overdue E1 10.00 EUR"])
        #expect(script.waits("I1") == ["payment_pending"] && script.waits("I2") == ["payment_pending"])
        script.payments = []  // it failed: dunning resumes
        #expect(script.run("2026-03-18") == ["L3 reminder.overdue I1,I2 110.00 USD"])
    }

    @Test func aScheduledRetryHoldsUntilItIsRequestedAndAnsweredOrTwoDaysPass() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        let notBefore = Instant.at("2026-03-11T08:00:00Z")
        script.payments = [PaymentInFlight(paymentID: "P1", kind: .retry(attempt: 2, notBefore: notBefore, requested: false), currency: usd, invoiceIDs: ["I1"])]
        #expect(script.run("2026-03-10").isEmpty)
        #expect(script.waits("I1") == ["retry_scheduled"])
        script.payments = [PaymentInFlight(paymentID: "P1", kind: .retry(attempt: 2, notBefore: notBefore, requested: true), currency: usd, invoiceIDs: ["I1"])]
        #expect(script.run("2026-03-12", now: .at("2026-03-12T12:00:00Z")).isEmpty, "requested, outcome awaited")
        #expect(script.run("2026-03-13", now: .at("2026-03-13T07:59:59Z")).isEmpty)
        #expect(script.run("2026-03-13", now: .at("2026-03-13T08:00:00Z")) == ["L2 reminder.due I1 100.00 USD"], "no outcome within 2 days: dunning resumes")
    }

    @Test func aCustomerHoldWaitsEveryInvoiceOrOneCurrencyAndSaysWhy() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.issue("E1", .of("10.00", eur), due: "2026-03-10")
        script.holds = [CustomerHold(reason: "bank_exception", reference: "ENTRY-9")]
        #expect(script.run("2026-03-10").isEmpty)
        #expect(script.waits("I1") == ["bank_exception"] && script.waits("E1") == ["bank_exception"])
        if case .waiting(_, let reasons)? = script.state("I1") { #expect(reasons == [.customerHold(reason: "bank_exception", reference: "ENTRY-9")]) }
        script.holds = [CustomerHold(reason: "bank_exception", reference: "ENTRY-9", currency: eur)]
        #expect(script.run("2026-03-11") == ["L2 reminder.due I1 100.00 USD"])
        script.holds = []
        #expect(script.run("2026-03-12") == ["L2 reminder.due E1 10.00 EUR"])
    }

    @Test func belowTheMinimumBalanceNobodyIsRemindedAndTheSumOfOpenInvoicesCounts() throws {
        let policy = try DunningPolicy(name: "min", steps: DunningPolicy.standard.steps, minimumBalance: [usd: usd("5.00")],
                                       graceDays: 3, retryDelaysDays: [1, 3, 7])
        var script = DunningScript(policy: policy)
        script.issue("I1", usd("4.00"), due: "2026-03-10")
        script.issue("J1", jpy("100"), due: "2026-03-10")
        #expect(script.run("2026-03-10") == ["L2 reminder.due J1 100 JPY"], "no minimum in JPY")
        if case .waiting(_, let reasons)? = script.state("I1") { #expect(reasons == [.belowMinimum(balance: usd("4.00"), minimum: usd("5.00"))]) }
        script.issue("I2", usd("1.00"), due: "2026-04-30")  // not due, but the balance is now 5.00
        #expect(script.run("2026-03-11") == ["L2 reminder.due I1 4.00 USD"])
    }

    @Test func oneReminderPerStepAndDay_aLaterInvoiceFollowsTheNextDay() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        #expect(script.run("2026-03-10", now: .at("2026-03-10T01:00:00Z")) == ["L2 reminder.due I1 100.00 USD"])
        script.issue("I2", usd("7.00"), due: "2026-03-10")  // issued the same day, after the reminder went out
        #expect(script.run("2026-03-10", now: .at("2026-03-10T15:00:00Z")).isEmpty)
        #expect(script.waits("I2") == ["reminded_today"])
        #expect(script.run("2026-03-11") == ["L2 reminder.due I2 7.00 USD"])
    }

    @Test func anInvoiceIssuedLateGetsTheStepItsAgeCallsFor() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        #expect(script.run("2026-03-09") == ["L1 reminder.upcoming I1 100.00 USD"])
        script.issue("I2", usd("100.00"), due: "2026-01-01")
        #expect(script.run("2026-03-09") == ["L6 dunning.escalated I2 100.00 USD"])
    }

    @Test func aGroupAboveTheContractLimitIsSplitInParts() {
        var script = DunningScript()
        for index in 0..<1_001 { script.issue("I\(String(1_000_000 + index))", usd("1.00"), due: "2026-03-10") }
        let reminders = script.tick("2026-03-10")
        #expect(reminders.map(\.invoices.count) == [1000, 1])
        #expect(reminders.map(\.part) == [0, 1])
        #expect(reminders.map(\.total) == [usd("1000.00"), usd("1.00")])
    }

    @Test func aNewPolicyContinuesFromTheStepsAlreadySent() throws {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        _ = script.days("2026-03-07", "2026-03-10")
        script.policy = try DunningPolicy(name: "gentle", steps: [
            DunningStep(offsetDays: 0, action: .due, channel: "email", template: "key-due"),
            DunningStep(offsetDays: 14, action: .overdue, channel: "email", template: "key-overdue"),
            DunningStep(offsetDays: 45, action: .finalNotice, channel: "email", template: "key-final"),
        ], minimumBalance: [:], graceDays: 7, retryDelaysDays: [2, 5, 10])
        #expect(script.days("2026-03-11", "2026-05-31") == [
            "2026-03-24: L2 reminder.overdue I1 100.00 USD",
            "2026-04-24: L3 reminder.final_notice I1 100.00 USD",
        ])
    }

    @Test func everyReasonThatAppliesIsListed() {
        var script = DunningScript()
        script.issue("I1", usd("100.00"), due: "2026-03-10")
        script.dispute("I1", "D-1")
        script.promise(["I1"], by: "2026-03-12")
        script.payments = [PaymentInFlight(paymentID: "P1", kind: .pending, currency: usd, invoiceIDs: ["I1"])]
        script.holds = [CustomerHold(reason: "bank_exception", reference: "E-1")]
        script.tick("2026-03-10")
        #expect(script.waits("I1") == ["disputed", "promise_to_pay", "payment_pending", "bank_exception"])
        let waitActions = script.last!.actions.filter { if case .recordWait = $0 { return true } else { return false } }
        #expect(waitActions.count == 1)
    }
}
