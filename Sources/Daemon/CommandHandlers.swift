import AMQPClient
import ARContract
import ARDomain
import PostgresClient
import Store

/// Everything one message's handling needs; collects the events it causes.
final class HandlerContext {
    let message: InboundMessage
    let received: Received
    let store: Store
    let pipeline: MessagePipeline
    var configuration: DaemonConfiguration { pipeline.configuration }
    /// True when the message is being applied from the held table (its inbox key exists).
    let released: Bool
    let events: EventFactory
    /// The inbox claim left to the handler, which sends it with its first reads (one round trip
    /// less); the handler sets `claimRefused` when the inbox already had the message.
    private(set) var deferredClaim: InboxClaim?
    var claimRefused = false

    init(message: InboundMessage, delivery: Received, store: Store, pipeline: MessagePipeline, released: Bool = false) {
        self.message = message
        self.received = delivery
        self.store = store
        self.pipeline = pipeline
        self.released = released
        let configuration = pipeline.configuration
        self.events = EventFactory(source: configuration.eventSource, exchange: configuration.topology.eventsExchange,
                                   cause: [message.envelope.source, message.envelope.id], time: WallClock.now())
    }

    var envelope: CloudEventEnvelope { message.envelope }
    var cause: [String] { [envelope.source, envelope.id] }

    func deferClaim(_ claim: InboxClaim) { deferredClaim = claim }

    /// The deferred claim, once: the handler that takes it must send it before anything else.
    func takeClaim() -> InboxClaim? {
        defer { deferredClaim = nil }
        return deferredClaim
    }
}

/// The effects of each inbound type (SPEC section 2). Each handler: lock what it changes
/// (the customer row), check business identity, load the books, run the pure decision, write
/// the result and its events. Throws `Rejection` for input that can never apply; any
/// `PostgresError` is transient and fails the batch.
enum CommandHandlers {
    static func handle(_ context: HandlerContext) throws -> Disposition {
        let envelope = context.envelope
        if case .accountSummaryRequested(let request) = context.message.command {
            return try accountSummary(request, context)
        }
        if case .statementRequested(let request) = context.message.command { return try RequestHandlers.statement(request, context) }
        if case .paymentHistoryRequested(let request) = context.message.command { return try RequestHandlers.paymentHistory(request, context) }
        if !context.released {
            let claim = InboxClaim(source: envelope.source, eventID: envelope.id, type: envelope.type, outcome: "applied")
            switch context.message.command {
            case .paymentSucceeded, .invoiceIssued, .customerUpserted:
                context.deferClaim(claim)  // the hottest messages: claimed with their first reads
            default:
                guard try context.store.claimInbox(source: claim.source, eventID: claim.eventID, type: claim.type, outcome: claim.outcome) else {
                    return .duplicate
                }
            }
        }
        let disposition: Disposition
        do {
            disposition = try apply(context)
        } catch let rejection as BooksRejection {
            throw Rejection(code: RejectionCode(rawValue: rejection.code), detail: rejection.detail)
        }
        // A deferred claim the handler did not take would leave the message unrecorded.
        precondition(context.deferredClaim == nil, "\(envelope.type): the handler did not send the inbox claim")
        if context.claimRefused { return .duplicate }
        switch disposition {
        case .held:
            try context.store.setInboxOutcome(source: envelope.source, eventID: envelope.id, outcome: "held")
        case .duplicate:
            try context.store.setInboxOutcome(source: envelope.source, eventID: envelope.id, outcome: "noop")
        default:
            if context.released { try context.store.setInboxOutcome(source: envelope.source, eventID: envelope.id, outcome: "applied") }
        }
        try context.store.enqueue(context.events.drain())
        return disposition
    }

    private static func apply(_ context: HandlerContext) throws -> Disposition {
        switch context.message.command {
        case .customerUpserted(let command): return try customerUpserted(command, context)
        case .invoiceIssued(let command): return try invoiceIssued(command, context)
        case .invoiceAdjusted(let command): return try invoiceChanged(command.invoiceID, context) { books, invoice throws in
            if let currency = command.currency, currency != invoice.currency {
                throw Rejection(code: .currencyMismatch, detail: "invoice \(invoice.id) is in \(invoice.currency), the adjustment says \(currency)")
            }
            let amount: Money
            do { amount = try command.newTotal.money(in: invoice.currency) } catch {
                throw Rejection(code: .wrongMinorDigits, detail: "amount \(command.newTotal) has more fraction digits than \(invoice.currency) allows")
            }
            try books.adjust(invoiceID: invoice.id, to: amount)
        }
        case .invoiceVoided(let command): return try invoiceChanged(command.invoiceID, context) { books, invoice throws in
            try books.void(invoiceID: invoice.id)
        }
        case .invoiceWrittenOff(let command): return try invoiceChanged(command.invoiceID, context) { books, invoice throws in
            try books.writeOff(invoiceID: invoice.id)
        }
        case .creditNoteIssued(let command): return try creditNoteIssued(command, context)
        case .paymentSucceeded(let command): return try PaymentHandlers.succeeded(command, context)
        case .paymentPending(let command): return try PaymentHandlers.pending(command, context)
        case .paymentFailed(let command): return try DunningHandlers.paymentFailed(command, context)
        case .disputeOpened(let command): return try DunningHandlers.disputeOpened(command, context)
        case .disputeResolved(let command): return try DunningHandlers.disputeResolved(command, context)
        case .promiseToPayRecorded(let command): return try DunningHandlers.promiseToPayRecorded(command, context)
        case .paymentRefunded(let command):
            return try PaymentHandlers.takeBack(paymentID: command.paymentID, takebackID: command.refundID, kind: .refund,
                                                amount: command.amount, currency: command.currency, reason: command.reason, context)
        case .paymentReversed(let command):
            return try PaymentHandlers.takeBack(paymentID: command.paymentID,
                                                takebackID: command.reversalID ?? "reversal:\(context.envelope.source):\(context.envelope.id)",
                                                kind: .reversal, amount: command.amount, currency: command.currency,
                                                reason: command.reason.rawValue, context)
        case .bankCreditReceived(let command): return try ReconciliationHandlers.creditReceived(command, context)
        case .bankStatementReceived(let command): return try ReconciliationHandlers.statementReceived(command, context)
        case .reconciliationResolved(let command): return try ReconciliationHandlers.resolved(command, context)
        case .statementRequested, .paymentHistoryRequested, .accountSummaryRequested:
            preconditionFailure("\(context.envelope.type) is routed before apply")
        }
    }

    // MARK: customers

    private static func customerUpserted(_ command: CustomerUpserted, _ context: HandlerContext) throws -> Disposition {
        // Claim, lock, "does anything wait for this customer" and the time zone: one round trip.
        let intake = try context.store.customerIntake(claim: context.takeClaim(), customerID: command.customerID, timeZone: command.timeZone)
        guard intake.claimed else {
            context.claimRefused = true
            return .duplicate
        }
        try context.store.upsertCustomer(CustomerRecord(id: command.customerID, name: command.name, email: command.email, locale: command.locale,
                                                       timeZone: command.timeZone, dunningPolicy: command.dunningPolicy, bankAccounts: command.bankAccounts))
        if command.timeZone != nil && intake.knownTimeZone == nil { DunningHandlers.warnUnknownTimeZone(command, context) }
        // Nothing can start waiting for this customer before the commit: its lock is held.
        if intake.awaited { try releaseHeld(waitingKind: "customer", waitingID: command.customerID, context) }
        return .applied
    }

    // MARK: invoices

    private static func invoiceIssued(_ command: InvoiceIssued, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        // Claim, customer and invoice locks, the stored invoice and the books: one round trip.
        let intake = try store.invoiceIntake(claim: context.takeClaim(), invoiceID: command.invoiceID, customerID: command.customerID)
        guard intake.claimed else {
            context.claimRefused = true
            return .duplicate
        }
        guard intake.customerExists else {
            return try hold(context, waitingKind: "customer", waitingID: command.customerID)
        }
        let fingerprint = Fingerprint.of(command)
        let loaded = intake.books
        if let existing = intake.existing {
            guard existing.document.fingerprint == fingerprint else {
                throw Rejection(code: .conflictingDuplicate,
                                detail: "invoice \(command.invoiceID) was already issued with different content; send invoice.adjusted to change it")
            }
            return .duplicate
        }
        var books = loaded
        books.issue(Invoice(id: command.invoiceID, customerID: command.customerID, number: command.number, amount: command.amount,
                            issueDate: command.issueDate, dueDate: command.dueDate, paymentReference: command.paymentReference))
        let posted = try store.saveBooks(books, newInvoiceDocuments: [
            command.invoiceID: InvoiceDocument(poNumber: command.poNumber, documentURL: command.documentURL, fingerprint: fingerprint),
        ], cause: context.cause)
        try store.releaseForeignReservations(invoiceID: command.invoiceID, customerID: command.customerID)
        context.events.booksChanged(books, posted: posted)
        // Nothing can start waiting for this invoice before the commit: its lock is held.
        if intake.awaited { try releaseHeld(waitingKind: "invoice", waitingID: command.invoiceID, context) }
        return .applied
    }

    /// Adjust, void, write off: an invoice not yet known is waited for (held).
    private static func invoiceChanged(_ invoiceID: String, _ context: HandlerContext,
                                       _ change: (inout CustomerBooks, Invoice) throws -> Void) throws -> Disposition {
        let store = context.store
        try store.lockKey("invoice", invoiceID)
        guard let known = try store.invoice(invoiceID) else {
            return try hold(context, waitingKind: "invoice", waitingID: invoiceID)
        }
        _ = try store.lockCustomer(known.invoice.customerID)
        var books = try store.loadBooks(customerID: known.invoice.customerID, invoiceIDs: [invoiceID])
        guard let invoice = books.invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) vanished under lock") }
        try change(&books, invoice)
        let posted = try store.saveBooks(books, cause: context.cause)
        context.events.booksChanged(books, posted: posted)
        return .applied
    }

    // MARK: credit notes

    private static func creditNoteIssued(_ command: CreditNoteIssued, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        guard try store.lockCustomer(command.customerID) else {
            return try hold(context, waitingKind: "customer", waitingID: command.customerID)
        }
        let fingerprint = Fingerprint.of(command)
        if let existing = try store.creditNoteFingerprint(command.creditNoteID) {
            guard existing == fingerprint else {
                throw Rejection(code: .conflictingDuplicate, detail: "credit note \(command.creditNoteID) was already issued with different content")
            }
            return .duplicate
        }
        var invoiceKnown = false
        // Locked so the invoice cannot be issued (to anyone) between our look-up and commit.
        if let invoiceID = command.invoiceID { try store.lockKey("invoice", invoiceID) }
        if let invoiceID = command.invoiceID, let invoice = try store.invoice(invoiceID) {
            guard invoice.invoice.customerID == command.customerID else {
                throw Rejection(code: .foreignReference, detail: "credit note \(command.creditNoteID) names invoice \(invoiceID), which belongs to another customer")
            }
            invoiceKnown = true
        }
        var books = try store.loadBooks(customerID: command.customerID, invoiceIDs: invoiceKnown ? [command.invoiceID!] : [])
        try books.issueCreditNote(id: command.creditNoteID, amount: command.amount, invoiceID: command.invoiceID, invoiceKnown: invoiceKnown)
        try store.insertCreditNote(id: command.creditNoteID, customerID: command.customerID, amount: command.amount,
                                   invoiceID: command.invoiceID, invoiceKnown: invoiceKnown, fingerprint: fingerprint)
        let posted = try store.saveBooks(books, cause: context.cause)
        context.events.booksChanged(books, posted: posted)
        return .applied
    }

    // MARK: requests

    private static func accountSummary(_ request: AccountSummaryRequested, _ context: HandlerContext) throws -> Disposition {
        let replyTo = try RequestHandlers.replyQueue(context)
        let store = context.store
        var data: [(String, JSONValue)]
        if let summary = try store.accountSummary(customerID: request.customerID) {
            let graceDays = context.pipeline.policies.policies.policy(named: summary.dunningPolicy).graceDays
            data = SummaryRendering.render(summary, today: summary.today, graceDays: graceDays, asOf: context.events.time)
        } else {
            data = [("customer_id", .string(request.customerID)),
                    ("error", .object(JSONObject([("code", .string("unknown_customer")),
                                                  ("detail", .string("no customer \(request.customerID) is known"))])))]
        }
        context.events.reply("account.summary.reply", to: replyTo, correlationID: context.received.correlationID,
                             subject: request.customerID, data)
        try store.enqueue(context.events.drain())
        return .replied
    }

    // MARK: holding

    /// Keeps the message until `waitingKind` `waitingID` arrives. The caller holds the key's
    /// lock (`lockKey`/`lockCustomer`) taken before it found the thing missing. A released
    /// message that needs something else still missing is held again under the same key.
    static func hold(_ context: HandlerContext, waitingKind: String, waitingID: String) throws -> Disposition {
        try context.store.hold(source: context.envelope.source, eventID: context.envelope.id, type: context.envelope.type,
                               waitingKind: waitingKind, waitingID: waitingID, userID: context.received.userID, body: context.received.body)
        return .held(waitingFor: "\(waitingKind) \(waitingID)")
    }

    /// Applies, in arrival order, the messages that were waiting for what just arrived. Each
    /// runs in its own savepoint: one that is now invalid is dead-lettered alone.
    static func releaseHeld(waitingKind: String, waitingID: String, _ context: HandlerContext) throws {
        let store = context.store
        // The released messages read anything: rows kept back are written first, and theirs are not kept back.
        try store.flushWriteBehind()
        store.writingBehind = false
        // The releasing message's events describe the state before the released ones apply:
        // they go out first, so consumers see status changes in the order they happened. They
        // are written before the look-up (sent without waiting), so the look-up's round trip
        // carries them; this is the last thing a releasing handler does, so no event is left behind.
        try store.enqueue(context.events.drain())
        let released = try store.releaseHeld(waitingKind: waitingKind, waitingID: waitingID)
        for held in released { try applyHeld(held, pipeline: context.pipeline, store: store) }
    }

    /// Applies a message taken out of the held table, in its own savepoint; one that is now
    /// invalid is dead-lettered alone.
    static func applyHeld(_ held: HeldMessage, pipeline: MessagePipeline, store: Store) throws {
        let limits = DecodingLimits(maximumBodyBytes: Int.max, maximumDepth: pipeline.configuration.maximumJSONDepth)
        let received = Received(userID: held.userID, body: held.body, routingKey: held.type)
        switch pipeline.decoder.decode(body: held.body, limits: limits) {
        case .failure(let rejection):
            try pipeline.deadLetterHeld(held, rejection, store: store)
        case .success(let message):
            let child = HandlerContext(message: message, delivery: received, store: store, pipeline: pipeline, released: true)
            do {
                _ = try store.transaction { try handle(child) }
            } catch let rejection as Rejection {
                try pipeline.deadLetterHeld(held, rejection, store: store)
            }
        }
    }
}

extension MessagePipeline {
    func deadLetterHeld(_ held: HeldMessage, _ rejection: Rejection, store: Store) throws {
        try deadLetter(held.body, routingKey: held.type, properties: .init(contentType: "application/cloudevents+json", userID: held.userID),
                       rejection: rejection, source: held.source, eventID: held.eventID, type: held.type, store: store)
        try store.setInboxOutcome(source: held.source, eventID: held.eventID, outcome: "rejected")
    }
}

/// The business identity check of SPEC section 7: the same id with the same content is a
/// harmless re-send; with different content it is a conflict. The fingerprint lists the
/// content fields explicitly (not a memory dump) so it is stable across versions.
enum Fingerprint {
    static func of(_ c: InvoiceIssued) -> String {
        join(["invoice", c.invoiceID, c.customerID, c.number, c.amount.currency.code, String(c.amount.minorUnits),
              c.issueDate.description, c.dueDate.description, c.paymentReference ?? "", c.poNumber ?? "", c.documentURL ?? ""])
    }
    static func of(_ c: CreditNoteIssued) -> String {
        join(["credit_note", c.creditNoteID, c.customerID, c.amount.currency.code, String(c.amount.minorUnits), c.invoiceID ?? ""])
    }
    static func of(_ c: PaymentSucceeded) -> String {
        join(["payment", c.paymentID, c.customerID, c.amount.currency.code, String(c.amount.minorUnits), c.method.rawValue,
              c.receivedAt.description, c.gatewayReference ?? "", c.payoutID ?? ""]
             + c.allocations.flatMap { [$0.invoiceID, String($0.amount.minorUnits)] })
    }
    static func takeBack(paymentID: String, kind: TakeBackKind, amount: Money, reason: String?) -> String {
        join(["takeback", paymentID, kind == .refund ? "refund" : "reversal", amount.currency.code, String(amount.minorUnits), reason ?? ""])
    }
    /// Unit separator between fields so no field value can imitate another split.
    static func join(_ fields: [String]) -> String { fields.joined(separator: "\u{1F}") }
}
