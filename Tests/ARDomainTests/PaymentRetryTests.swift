import ARDomain
import Testing

/// Failed payments (SPEC section 4): attempt n is retried as n + 1 after delays[n - 1] days from
/// the failure; a hard decline, `retryable: false` or the last failure gives up.
@Suite struct PaymentRetryTests {
    static let failedAt = Instant.at("2026-05-04T13:30:00Z")
    static let hard: Set<String> = ["stolen_card", "r02"]

    struct Case: Sendable, CustomTestStringConvertible {
        let attempt: Int
        let retryable: Bool
        let code: String
        let expected: FailedPaymentDecision
        var testDescription: String { "attempt \(attempt) \(code) retryable \(retryable)" }
    }

    @Test(arguments: [
        Case(attempt: 1, retryable: true, code: "insufficient_funds", expected: .retry(attempt: 2, notBefore: .at("2026-05-05T13:30:00Z"))),
        Case(attempt: 2, retryable: true, code: "insufficient_funds", expected: .retry(attempt: 3, notBefore: .at("2026-05-07T13:30:00Z"))),
        Case(attempt: 3, retryable: true, code: "insufficient_funds", expected: .retry(attempt: 4, notBefore: .at("2026-05-11T13:30:00Z"))),
        Case(attempt: 4, retryable: true, code: "insufficient_funds", expected: .giveUp(.retriesExhausted)),
        Case(attempt: 9, retryable: true, code: "insufficient_funds", expected: .giveUp(.retriesExhausted)),
        Case(attempt: 1, retryable: false, code: "insufficient_funds", expected: .giveUp(.notRetryable)),
        Case(attempt: 1, retryable: true, code: "stolen_card", expected: .giveUp(.hardDecline)),
        Case(attempt: 2, retryable: true, code: " Stolen_Card ", expected: .giveUp(.hardDecline)),
        Case(attempt: 1, retryable: true, code: "R02", expected: .giveUp(.hardDecline)),
    ])
    func theStandardScheduleRetriesAfterOneThreeAndSevenDays(_ c: Case) {
        #expect(PaymentRetrySchedule.decide(failedAttempt: c.attempt, retryable: c.retryable, failureCode: c.code, hardDeclineCodes: Self.hard,
                                            delaysDays: [1, 3, 7], failedAt: Self.failedAt) == c.expected)
    }

    @Test func anotherPolicysDelaysAndAnEmptyScheduleNeverRetries() {
        #expect(PaymentRetrySchedule.decide(failedAttempt: 1, retryable: true, failureCode: "x", hardDeclineCodes: [], delaysDays: [2, 5, 10],
                                            failedAt: Self.failedAt) == .retry(attempt: 2, notBefore: .at("2026-05-06T13:30:00Z")))
        #expect(PaymentRetrySchedule.decide(failedAttempt: 1, retryable: true, failureCode: "x", hardDeclineCodes: [], delaysDays: [],
                                            failedAt: Self.failedAt) == .giveUp(.retriesExhausted))
    }

    @Test func aDueRetryIsRequestedUnlessEveryInvoiceItWasForIsClosed() {
        #expect(PaymentRetrySchedule.shouldRequest(invoiceStatuses: []))
        #expect(PaymentRetrySchedule.shouldRequest(invoiceStatuses: [.paid, .partiallyPaid]))
        #expect(PaymentRetrySchedule.shouldRequest(invoiceStatuses: [.open]))
        #expect(!PaymentRetrySchedule.shouldRequest(invoiceStatuses: [.paid, .voided, .writtenOff]))
    }
}

/// Policy checks: every problem named, so `check-config` and a refused reload can say them all.
@Suite struct DunningPolicyTests {
    @Test func everyProblemOfAPolicyIsNamed() {
        let steps = [
            DunningStep(offsetDays: 50, action: .escalate, channel: "collections", template: "esc"),
            DunningStep(offsetDays: 60, action: .overdue, channel: "", template: "late"),
            DunningStep(offsetDays: 60, action: .overdue, channel: "email\u{7}", template: "later"),
            DunningStep(offsetDays: 5000, action: .overdue, channel: "email", template: String(repeating: "t", count: 129)),
        ]
        do {
            _ = try DunningPolicy(name: "bad", steps: steps, minimumBalance: [usd: Money(minorUnits: -1, currency: usd)], graceDays: 400,
                                  retryDelaysDays: [0] + Array(repeating: 1, count: 20))
            Issue.record("an invalid policy was accepted")
        } catch {
            let text = error.description
            for fragment in ["two steps on the same day", "outside -365...3650", "escalation must be the last step", "channel and a template",
                             "printable text", "grace_days 400", "retry delays must be 1...365", "at most 20 retry delays", "minimum balances"] {
                #expect(text.contains(fragment), "missing '\(fragment)' in: \(text)")
            }
        }
    }

    @Test func levelsAndDatesFollowTheOrderOfSteps() {
        let scheduled = DunningPolicy.standard.scheduled(dueDate: date("2026-02-20"))
        #expect(scheduled.map(\.level) == [1, 2, 3, 4, 5, 6])
        #expect(scheduled.map(\.date.description) == ["2026-02-17", "2026-02-20", "2026-02-27", "2026-03-06", "2026-03-22", "2026-04-06"])
        #expect(DunningPolicy.standard.level(ofOffset: 14) == 4)
        #expect(DunningPolicy.standard.level(ofOffset: 15) == nil)
    }
}
