import ARContract
import ARDomain
import Logging
import PostgresClient
import Store

/// The inbound messages that steer dunning (SPEC sections 2 and 4, docs/dunning.md): disputes,
/// promises to pay, failed payments. Each locks the customer (as every books change does), so a
/// dunning pass deciding about that customer sees all of a message's effects or none.
enum DunningHandlers {
    // MARK: disputes

    static func disputeOpened(_ command: DisputeOpened, _ context: HandlerContext) throws -> Disposition {
        let facts: DisputeFacts
        switch try disputeFacts(disputeID: command.disputeID, invoiceID: command.invoiceID, context) {
        case .held(let disposition): return disposition
        case .known(let known): facts = known
        }
        if facts.existing != nil { return .duplicate }  // re-sent, or its resolution arrived first: the dispute is over
        try context.store.openDispute(disputeID: command.disputeID, invoiceID: command.invoiceID, customerID: facts.customerID,
                                      reason: command.reason, at: context.envelope.time)
        return .applied
    }

    /// Any outcome ends the pause: the outcome is a label (SPEC section 2), kept as sent and never
    /// switched on here, so new outcomes need no code.
    static func disputeResolved(_ command: DisputeResolved, _ context: HandlerContext) throws -> Disposition {
        let facts: DisputeFacts
        switch try disputeFacts(disputeID: command.disputeID, invoiceID: command.invoiceID, context) {
        case .held(let disposition): return disposition
        case .known(let known): facts = known
        }
        if facts.existing?.state == "resolved" { return .duplicate }
        try context.store.resolveDispute(disputeID: command.disputeID, invoiceID: command.invoiceID, customerID: facts.customerID,
                                         outcome: command.outcome.rawValue, at: context.envelope.time)
        return .applied
    }

    struct DisputeFacts {
        let customerID: String
        let existing: (invoiceID: String, state: String, reason: String?)?
    }

    enum DisputeLookup {
        case held(Disposition)
        case known(DisputeFacts)
    }

    /// Locks the invoice (waiting for it when unknown), its customer and the dispute id, and
    /// reads the dispute; a dispute id reused for another invoice is a conflict.
    private static func disputeFacts(disputeID: String, invoiceID: String, _ context: HandlerContext) throws -> DisputeLookup {
        let store = context.store
        try store.lockKey("invoice", invoiceID)
        guard let known = try store.invoice(invoiceID) else {
            return .held(try CommandHandlers.hold(context, waitingKind: "invoice", waitingID: invoiceID))
        }
        _ = try store.lockCustomer(known.invoice.customerID)
        try store.lockKey("dispute", disputeID)
        let existing = try store.dispute(disputeID)
        if let existing, existing.invoiceID != invoiceID {
            throw Rejection(code: .conflictingDuplicate, detail: "dispute \(disputeID) concerns invoice \(existing.invoiceID), this message names \(invoiceID)")
        }
        return .known(DisputeFacts(customerID: known.invoice.customerID, existing: existing))
    }

    // MARK: promises to pay

    /// Pauses the named invoices' dunning through promised_date + the policy's grace days. All
    /// invoices must be known (else the message waits for the first missing one) and belong to
    /// one customer; an amount must be in their currency.
    static func promiseToPayRecorded(_ command: PromiseToPayRecorded, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        let invoiceIDs = Array(Set(command.invoiceIDs)).sorted()
        for invoiceID in invoiceIDs { try store.lockKey("invoice", invoiceID) }
        var customerID: String?
        for invoiceID in invoiceIDs {
            guard let known = try store.invoice(invoiceID) else {
                return try CommandHandlers.hold(context, waitingKind: "invoice", waitingID: invoiceID)
            }
            if let customerID, customerID != known.invoice.customerID {
                throw Rejection(code: .foreignReference,
                                detail: "the promise names invoices of customers \(customerID) and \(known.invoice.customerID); a promise covers one customer's invoices")
            }
            customerID = known.invoice.customerID
            if let amount = command.amount, amount.currency != known.invoice.currency {
                throw Rejection(code: .currencyMismatch, detail: "invoice \(invoiceID) is in \(known.invoice.currency), the promised amount in \(amount.currency)")
            }
        }
        guard let customerID else { preconditionFailure("the schema requires at least one invoice id") }
        _ = try store.lockCustomer(customerID)
        try store.recordPromise(promiseID: StableID.make(["promise", context.envelope.source, context.envelope.id]), customerID: customerID,
                                invoiceIDs: invoiceIDs, promisedDate: command.promisedDate, amount: command.amount, at: context.envelope.time)
        return .applied
    }

    // MARK: failed payments

    /// Records the failure and decides (PaymentRetrySchedule): schedule the next attempt at the
    /// customer's policy delay after the failure's CloudEvents `time`, or tell the customer.
    /// A failure without `attempt` reports on the retry we last requested (else attempt 1).
    static func paymentFailed(_ command: PaymentFailed, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        guard try store.lockCustomer(command.customerID) else {
            return try CommandHandlers.hold(context, waitingKind: "customer", waitingID: command.customerID)
        }
        try store.lockKey("payment", command.paymentID)
        let recorded = try store.recordedFailures(paymentID: command.paymentID)
        if let recorded, recorded.customerID != command.customerID {
            throw Rejection(code: .foreignReference, detail: "payment \(command.paymentID) failed before for another customer")
        }
        let attempt = try command.attempt ?? store.requestedRetryAttempt(paymentID: command.paymentID) ?? 1
        if recorded?.attempts.contains(attempt) == true { return .duplicate }
        try store.closePending(paymentID: command.paymentID, state: "failed")
        guard try store.recordFailure(paymentID: command.paymentID, attempt: attempt, customerID: command.customerID, amount: command.amount,
                                      method: command.method.rawValue, failureCode: command.failureCode, retryable: command.retryable,
                                      invoiceIDs: command.invoiceIDs) else {
            return .duplicate  // this attempt's failure is known: the customer was told already (one fact, one notice)
        }
        // A late report of an earlier attempt, or of a payment that succeeded meanwhile, changes
        // nothing: the schedule follows the newest attempt, and received money is not retried.
        if let newest = recorded?.attempts.max(), newest > attempt { return .applied }
        if try store.payment(command.paymentID) != nil { return .applied }
        try store.endRetries(paymentID: command.paymentID, state: "superseded", reason: "attempt \(attempt) failed")
        let policy = context.pipeline.policies.policies.policy(named: try store.customerPolicyName(command.customerID))
        let decision = PaymentRetrySchedule.decide(failedAttempt: attempt, retryable: command.retryable, failureCode: command.failureCode,
                                                   hardDeclineCodes: context.configuration.hardDeclineCodes,
                                                   delaysDays: policy.retryDelaysDays, failedAt: context.envelope.time)
        switch decision {
        case .retry(let next, let notBefore):
            try store.scheduleRetry(paymentID: command.paymentID, attempt: next, customerID: command.customerID, amount: command.amount,
                                    invoiceIDs: command.invoiceIDs, notBefore: notBefore)
        case .giveUp:
            context.events.emit("payment.failed_notice", id: EventIdentity.paymentFailedNotice(paymentID: command.paymentID, attempt: attempt),
                                subject: command.customerID, [
                ("payment_id", .string(command.paymentID)), ("customer_id", .string(command.customerID)),
                ("failure_code", .string(command.failureCode)), ("next_attempt", .string("none")),
                ("amount", .money(command.amount)), ("currency", .string(command.amount.currency.code)), ("attempt", .number(String(attempt))),
            ])
        }
        return .applied
    }

    /// A payment that succeeded needs no retry.
    static func paymentSucceeded(paymentID: String, _ context: HandlerContext) throws {
        try context.store.endRetries(paymentID: paymentID, state: "cancelled", reason: "payment succeeded")
    }

    // MARK: customers

    /// A `time_zone` PostgreSQL does not know is kept as sent, never refused (it only describes
    /// when reminders go out): dunning uses UTC for the customer, and we say so once here.
    static func warnUnknownTimeZone(_ command: CustomerUpserted, _ context: HandlerContext) {
        guard let zone = command.timeZone else { return }
        DaemonMetrics.unknownTimeZone()
        context.pipeline.logger.warning("unknown time zone: dunning uses UTC for this customer", metadata: [
            "customer": "\(command.customerID)", "time_zone": "\(zone)",
        ])
    }
}
