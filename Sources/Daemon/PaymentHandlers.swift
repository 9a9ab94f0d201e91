import ARContract
import ARDomain
import PostgresClient
import Store

/// payment.* handlers (SPEC section 2 and the "Money rules").
enum PaymentHandlers {
    static func succeeded(_ command: PaymentSucceeded, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        // Claim, locks (customer, payment, named invoices in key order) and every read the
        // decision needs, in one round trip.
        let intake = try store.paymentIntake(claim: context.takeClaim(), customerID: command.customerID, paymentID: command.paymentID,
                                             namedInvoiceIDs: command.allocations.map(\.invoiceID), openInvoicesIn: command.amount.currency)
        guard intake.claimed else {
            context.claimRefused = true
            return .duplicate
        }
        guard intake.customerExists else {
            return try CommandHandlers.hold(context, waitingKind: "customer", waitingID: command.customerID)
        }
        let fingerprint = Fingerprint.of(command)
        if let existing = intake.existing {
            guard existing.fingerprint == fingerprint else {
                throw Rejection(code: .conflictingDuplicate, detail: "payment \(command.paymentID) was already received with different content")
            }
            return .duplicate
        }
        var unknown: Set<String> = []
        // Checked in the allocations' order; the books hold exactly the named invoices that are the customer's.
        for (allocation, found) in zip(command.allocations, intake.namedInvoices) {
            if let invoice = found {
                guard invoice.invoice.customerID == command.customerID else {
                    throw Rejection(code: .foreignReference, detail: "payment \(command.paymentID) allocates to invoice \(allocation.invoiceID), which belongs to another customer")
                }
            } else {
                unknown.insert(allocation.invoiceID)
            }
        }
        var books = intake.books
        let origin = MoneyOrigin(.payment, command.paymentID)
        let result = try books.receive(origin, amount: command.amount, cashAccount: .cash(command.method.clearingAccountKey),
                                       explicit: command.allocations.map { RequestedAllocation(invoiceID: $0.invoiceID, amount: $0.amount) },
                                       unknownInvoices: unknown)
        try store.insertPayment(id: command.paymentID, customerID: command.customerID, amount: command.amount, method: command.method.rawValue,
                                receivedAt: command.receivedAt, gatewayReference: command.gatewayReference, payoutID: command.payoutID,
                                fingerprint: fingerprint)
        try store.closePending(paymentID: command.paymentID, state: "settled")
        try DunningHandlers.paymentSucceeded(paymentID: command.paymentID, context)
        let posted = try store.saveBooks(books, cause: context.cause)
        context.events.booksChanged(books, posted: posted)
        // The books hold every open invoice of the customer in this currency, under the customer's lock.
        confirmed(paymentID: command.paymentID, customerID: command.customerID, amount: command.amount, method: command.method.rawValue,
                  result: result, customerBalance: books.openBalance(in: command.amount.currency),
                  credit: books.credit(in: command.amount.currency), context)
        // Nothing can start waiting for this payment before the commit: its lock is held.
        if intake.awaited { try CommandHandlers.releaseHeld(waitingKind: "payment", waitingID: command.paymentID, context) }
        return .applied
    }

    /// `payment.confirmed` for the notification service and the portal.
    static func confirmed(paymentID: String, customerID: String, amount: Money, method: String, result: PaymentApplicationResult,
                          customerBalance: Money, credit: Money, _ context: HandlerContext) {
        let allocations: [JSONValue] = result.allocations.map { allocation in
            .object(JSONObject([("invoice_id", .string(allocation.invoiceID)), ("amount", .money(allocation.amount)),
                                ("invoice_balance", .money(allocation.invoiceBalance))]))
        }
        context.events.emit("payment.confirmed", id: EventIdentity.paymentConfirmed(paymentID: paymentID), subject: customerID, [
            ("payment_id", .string(paymentID)), ("customer_id", .string(customerID)), ("amount", .money(amount)),
            ("currency", .string(amount.currency.code)), ("method", .string(method)),
        ] + (PaymentMethod(rawValue: method).family.map { [("method_family", .string($0.rawValue))] } ?? []) + [
            ("allocations", .array(allocations)),
            ("unapplied_amount", .money(result.unapplied)), ("customer_balance", .money(customerBalance)),
            ("credit_balance", .money(credit)),
        ])
    }

    static func pending(_ command: PaymentPending, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        guard try store.lockCustomer(command.customerID) else {
            return try CommandHandlers.hold(context, waitingKind: "customer", waitingID: command.customerID)
        }
        if try store.payment(command.paymentID) != nil { return .duplicate }  // settled already: nothing pending
        let inserted = try store.recordPending(paymentID: command.paymentID, customerID: command.customerID, amount: command.amount,
                                               method: command.method.rawValue, invoiceIDs: command.invoiceIDs,
                                               initiatedAt: command.initiatedAt, expectedSettlement: command.expectedSettlementDate)
        return inserted ? .applied : .duplicate
    }

    /// Refunds and reversals: a payment not seen yet is waited for (held).
    static func takeBack(paymentID: String, takebackID: String, kind: TakeBackKind, amount text: DecimalAmount, currency: Currency?,
                         reason: String?, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        try store.lockKey("payment", paymentID)
        guard let payment = try store.payment(paymentID) else {
            return try CommandHandlers.hold(context, waitingKind: "payment", waitingID: paymentID)
        }
        _ = try store.lockCustomer(payment.customerID)
        if let currency, currency != payment.amount.currency {
            throw Rejection(code: .currencyMismatch, detail: "payment \(paymentID) is in \(payment.amount.currency), the message says \(currency)")
        }
        let amount: Money
        do { amount = try text.money(in: payment.amount.currency) } catch {
            throw Rejection(code: .wrongMinorDigits, detail: "amount \(text) has more fraction digits than \(payment.amount.currency) allows")
        }
        guard amount.isPositive else { throw Rejection(code: .schemaViolation, detail: "amount must be positive") }
        let fingerprint = Fingerprint.takeBack(paymentID: paymentID, kind: kind, amount: amount, reason: reason)
        if let existing = try store.takebackFingerprint(takebackID) {
            guard existing == fingerprint else {
                throw Rejection(code: .conflictingDuplicate, detail: "\(kind == .refund ? "refund" : "reversal") \(takebackID) was already recorded with different content")
            }
            return .duplicate
        }
        let remaining = payment.amount.minorUnits - (try store.takenBack(paymentID: paymentID))
        guard amount.minorUnits <= remaining else {
            throw Rejection(code: .amountExceedsBalance,
                            detail: "\(amount.decimalString) \(amount.currency) exceeds the \(Money.format(minorUnits: remaining, digits: amount.currency.minorUnitDigits)) left of payment \(paymentID)")
        }
        let origin = MoneyOrigin(.payment, paymentID)
        var books = try store.loadBooks(customerID: payment.customerID, applicationsOf: origin)
        books.takeBack(amount, of: origin, kind: kind, reference: takebackID)
        try store.insertTakeback(id: takebackID, paymentID: paymentID, kind: kind == .refund ? "refund" : "reversal", amount: amount,
                                 reason: reason, fingerprint: fingerprint)
        let posted = try store.saveBooks(books, cause: context.cause)
        context.events.booksChanged(books, posted: posted)
        return .applied
    }
}

/// The `account.summary.reply` data (schemas/account.summary.reply.json).
enum SummaryRendering {
    /// `today` is the customer's local date; a promise pauses dunning through its date + `graceDays`.
    static func render(_ summary: AccountSummary, today: BusinessDate, graceDays: Int, asOf: Instant) -> [(String, JSONValue)] {
        let balances: [JSONValue] = summary.positions.map { position in
            .object(JSONObject([
                ("currency", .string(position.currency.code)), ("balance", .money(position.balance)),
                ("unapplied_credit", .money(position.unappliedCredit)), ("pending", .money(position.pending)),
                ("overdue", .money(position.overdue)),
            ]))
        }
        let invoices: [JSONValue] = summary.openInvoices.map { open in
            let invoice = open.invoice
            return .object(JSONObject([
                ("invoice_id", .string(invoice.id)), ("number", .string(invoice.number)), ("currency", .string(invoice.currency.code)),
                ("amount", .money(invoice.amount)), ("balance", .money(invoice.balance)), ("status", .string(invoice.status.rawValue)),
                ("issue_date", .string(invoice.issueDate.description)), ("due_date", .string(invoice.dueDate.description)),
                ("days_overdue", .number(String(max(0, today.days(since: invoice.dueDate))))),
                ("dunning_level", .number(String(open.dunningLevel))), ("pending_payment", .bool(open.pendingPayment)),
                ("disputed", .bool(open.disputed)),
                ("promise_to_pay", open.promisedDate.map { promised in
                    .object(JSONObject([("promised_date", .string(promised.description)),
                                        ("paused_until", .string(promised.adding(days: graceDays).description)),
                                        ("active", .bool(today <= promised.adding(days: graceDays)))]))
                } ?? .null),
            ]))
        }
        let upcoming = summary.openInvoices.first { $0.invoice.dueDate >= today } ?? summary.openInvoices.first
        let nextDue: JSONValue = upcoming.map { open in
            .object(JSONObject([("invoice_id", .string(open.invoice.id)), ("due_date", .string(open.invoice.dueDate.description)),
                                ("balance", .money(open.invoice.balance)), ("currency", .string(open.invoice.currency.code))]))
        } ?? .null
        return [
            ("customer_id", .string(summary.customerID)), ("name", .string(summary.customerName)), ("as_of", .string(asOf.description)),
            ("balances", .array(balances)), ("open_invoices", .array(invoices)), ("next_due", nextDue),
        ]
    }
}
