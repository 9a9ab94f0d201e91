/// Failed payments (SPEC section 4): a retryable failure is retried after the policy's delays;
/// a hard decline or the last failure tells the customer. Exact rules in docs/dunning.md.
public enum FailedPaymentDecision: Hashable, Sendable {
    /// Ask the gateway (`payment.retry_requested`) for attempt `attempt`, not before `notBefore`.
    case retry(attempt: Int, notBefore: Instant)
    /// No further attempt: tell the customer (`payment.failed_notice`, `next_attempt: "none"`).
    case giveUp(GiveUpReason)
}

/// Why a failed payment is not retried.
public enum GiveUpReason: String, Hashable, Sendable {
    /// The gateway said `retryable: false`.
    case notRetryable = "not_retryable"
    /// The failure code is in the configured hard-decline list (stolen card, closed account...).
    case hardDecline = "hard_decline"
    /// Every delay of the policy's retry schedule has been used.
    case retriesExhausted = "retries_exhausted"
}

public enum PaymentRetrySchedule {
    /// The largest attempt number the contract carries (schemas/payment.*.json).
    public static let maximumAttempt = 100

    /// The decision for the failure of attempt `failedAttempt` (1 = the original payment) at
    /// `failedAt`: attempt n is retried as attempt n + 1 after `delaysDays[n - 1]` days; with no
    /// delay left, or a hard decline, the customer is told.
    public static func decide(failedAttempt: Int, retryable: Bool, failureCode: String, hardDeclineCodes: Set<String>,
                              delaysDays: [Int], failedAt: Instant) -> FailedPaymentDecision {
        precondition(failedAttempt >= 1, "attempts count from 1")
        if hardDeclineCodes.contains(normalised(failureCode)) { return .giveUp(.hardDecline) }
        guard retryable else { return .giveUp(.notRetryable) }
        guard failedAttempt <= delaysDays.count, failedAttempt < maximumAttempt else { return .giveUp(.retriesExhausted) }
        let delay = delaysDays[failedAttempt - 1]
        return .retry(attempt: failedAttempt + 1, notBefore: failedAt.adding(seconds: Int64(delay) * 86_400))
    }

    /// Whether a retry that fell due is still requested: not when every invoice it was for is
    /// closed by other money meanwhile (charging again would double-collect). A retry for no
    /// named invoices is always requested.
    public static func shouldRequest(invoiceStatuses: [InvoiceStatus]) -> Bool {
        invoiceStatuses.isEmpty || invoiceStatuses.contains { $0.isOpen }
    }

    /// Failure codes are labels (SPEC section 2): compared case-insensitively, trimmed.
    public static func normalised(_ code: String) -> String {
        var text = Substring(code)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text.lowercased()
    }
}
