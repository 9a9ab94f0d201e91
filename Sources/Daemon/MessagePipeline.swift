import AMQPClient
import ARContract
import ARDomain
import Logging
import PostgresClient
import Store

/// What became of one delivery.
enum Disposition: Equatable {
    case applied
    case duplicate
    case held(waitingFor: String)
    case rejected(RejectionCode)
    case replied
}

/// The one seam every inbound message passes: decode → apply → commit (the caller acks).
///
/// A batch is applied in ONE transaction, each message inside its own savepoint, so a
/// rejected message rolls back alone and is dead-lettered while the others commit. A transient
/// database error fails the whole batch (nothing acked, all redelivered, the inbox makes the
/// replay exact); a deadlock with another instance retries the batch.
struct MessagePipeline: Sendable {
    let configuration: DaemonConfiguration
    let logger: Logger
    /// Compiled once from the embedded JSON Schemas; shared read-only by all workers.
    let decoder: InboundDecoder
    /// The dunning policies in force (retry delays, promise grace); replaced on reload.
    var policies = PolicyHolder.builtIn()
    /// Reconciliation tolerances and policies in force (replaced on reload).
    let reconciliation: ReconciliationSettingsHolder

    init(configuration: DaemonConfiguration, logger: Logger, decoder: InboundDecoder, policies: PolicyHolder = .builtIn(),
         reconciliation: ReconciliationSettingsHolder? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.decoder = decoder
        self.policies = policies
        self.reconciliation = reconciliation ?? ReconciliationSettingsHolder(configuration.reconciliation)
    }

    static let inboundTypes = [
        "customer.upserted", "invoice.issued", "invoice.adjusted", "invoice.voided", "invoice.written_off",
        "credit_note.issued", "payment.succeeded", "payment.pending", "payment.failed", "payment.refunded",
        "payment.reversed", "bank.credit.received", "bank.statement.received", "dispute.opened", "dispute.resolved",
        "promise_to_pay.recorded", "reconciliation.resolved", "account.summary.requested", "statement.requested",
        "payment_history.requested",
    ]

    /// `beforeCommit` runs inside the batch's transaction after the messages (the consumer
    /// records how far each partition was applied, atomically with the effects).
    @discardableResult
    func process(_ batch: [AMQPDelivery], store: Store,
                 beforeCommit: (Store) throws(PostgresError) -> Void = { _ in }) throws(PostgresError) -> [Disposition] {
        let started = Monotonic.nanoseconds()
        let examined = batch.map(examine)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let dispositions = try store.transaction { () throws -> [Disposition] in
                    var result: [Disposition] = []
                    for (delivery, verdict) in zip(batch, examined) {
                        result.append(try apply(verdict, delivery: delivery, store: store))
                    }
                    try beforeCommit(store)
                    try store.notifyOutbox()
                    return result
                }
                for index in batch.indices { record(batch[index], examined[index], dispositions[index]) }
                DaemonMetrics.processing(nanoseconds: Monotonic.nanoseconds() - started, messages: batch.count)
                return dispositions
            } catch let error as PostgresError where error.isRetryableConflict && attempt < 5 {
                logger.info("batch conflicted with another instance; retrying", metadata: ["attempt": "\(attempt)"])
                continue
            } catch let error as PostgresError {
                throw error
            } catch {
                preconditionFailure("only PostgresError escapes a batch: \(error)")
            }
        }
    }

    /// Either a decoded, authorised message or the reason it can never be processed.
    enum Verdict {
        case accepted(InboundMessage)
        case rejected(Rejection, source: String?, eventID: String?, type: String?)
    }

    /// Pure checks that need no database: size, JSON, envelope, publisher, schema.
    /// The publisher a message is authorised as: its broker-verified `user_id`, except that a
    /// dead-letter replay (published by the daemon's own user, which only operators holding the
    /// daemon's credentials can do) is authorised as the original publisher it records.
    func publisher(of delivery: AMQPDelivery) -> String? {
        let user = delivery.properties.userID
        if user == configuration.broker.user, case .string(let original)? = delivery.properties.headers["x-original-user-id"] {
            return original
        }
        return user
    }

    func examine(_ delivery: AMQPDelivery) -> Verdict {
        let limits = DecodingLimits(maximumBodyBytes: configuration.maximumBodyBytes, maximumDepth: configuration.maximumJSONDepth)
        let decoded = decoder.decode(body: delivery.body, limits: limits)
        switch decoded {
        case .success(let message):
            let envelope = message.envelope
            guard configuration.publishers.permits(user: publisher(of: delivery), type: envelope.type) else {
                return .rejected(MessagePipeline.forbidden(delivery, type: envelope.type), source: envelope.source, eventID: envelope.id, type: envelope.type)
            }
            return .accepted(message)
        case .failure(let rejection):
            // Identify what we can for the dead-letter record; a type we can read is checked
            // against the publisher first, so an unauthorised sender learns nothing more.
            let hint = EnvelopeHint.read(delivery.body, maximumBytes: configuration.maximumBodyBytes)
            if let type = hint.type, MessagePipeline.inboundTypes.contains(type),
               !configuration.publishers.permits(user: publisher(of: delivery), type: type) {
                return .rejected(MessagePipeline.forbidden(delivery, type: type), source: hint.source, eventID: hint.id, type: type)
            }
            return .rejected(rejection, source: hint.source, eventID: hint.id, type: hint.type)
        }
    }

    static func forbidden(_ delivery: AMQPDelivery, type: String) -> Rejection {
        if let user = delivery.properties.userID {
            return Rejection(code: .forbiddenPublisher, detail: "publisher '\(user)' is not allowed to send \(type)")
        }
        return Rejection(code: .forbiddenPublisher, detail: "the message has no user_id property, so its publisher cannot be verified")
    }

    private func apply(_ verdict: Verdict, delivery: AMQPDelivery, store: Store) throws -> Disposition {
        // Rows kept back for earlier payments are written before anything that may read them.
        let keepsWritesBack = try Self.prepareWriteBehind(verdict, store: store)
        switch verdict {
        case .rejected(let rejection, let source, let eventID, let type):
            try deadLetter(delivery.body, routingKey: delivery.routingKey, properties: delivery.properties,
                           rejection: rejection, source: source, eventID: eventID, type: type, store: store)
            try replyToRejectedRequest(delivery.properties, type: type, source: source, eventID: eventID, rejection: rejection, store: store)
            return .rejected(rejection.code)
        case .accepted(let message):
            let context = HandlerContext(message: message, delivery: Received(delivery), store: store, pipeline: self)
            do {
                // Released unchecked: a database error shows at the next wait and fails the batch,
                // which ConsumerWorker then applies one message at a time (`isolate`).
                store.writingBehind = keepsWritesBack
                defer { store.writingBehind = false }
                return try store.transaction(checkingAtRelease: false) { try CommandHandlers.handle(context) }
            } catch let rejection as Rejection {
                try deadLetter(delivery.body, routingKey: delivery.routingKey, properties: delivery.properties, rejection: rejection,
                               source: message.envelope.source, eventID: message.envelope.id, type: message.envelope.type, store: store)
                try replyToRejectedRequest(delivery.properties, type: message.envelope.type, source: message.envelope.source,
                                           eventID: message.envelope.id, rejection: rejection, store: store)
                // No inbox key is kept for a rejection: the publisher may send a corrected
                // message under the same id, and a replay after a fix must be applied.
                return .rejected(rejection.code)
            }
        }
    }

    /// Whether the message's hot writes are kept back and written in bulk with the batch's other
    /// payments (`WriteBehind`): a `payment.succeeded`, whose intake reads only rows under its
    /// keys (customer, payment id, named invoices). Rows kept back are written first when the
    /// message is anything else, or a payment whose keys meet them.
    static func prepareWriteBehind(_ verdict: Verdict, store: Store) throws(PostgresError) -> Bool {
        guard case .accepted(let message) = verdict, case .paymentSucceeded(let payment) = message.command else {
            try store.flushWriteBehind()
            return false
        }
        if store.writeBehindTouches(customerID: payment.customerID, paymentID: payment.paymentID,
                                    invoiceIDs: payment.allocations.map(\.invoiceID)) {
            try store.flushWriteBehind()
        }
        return true
    }

    /// Records the rejection and queues the unchanged body for the dead-letter exchange.
    func deadLetter(_ body: [UInt8], routingKey: String, properties: AMQPProperties, rejection: Rejection,
                    source: String?, eventID: String?, type: String?, store: Store) throws {
        // The one exception to "body unchanged": a card number is never stored or forwarded.
        let body = rejection.code == .cardDataPresent ? MessagePipeline.withoutCardData(body) : body
        var recorded: [String: String] = [:]
        // A replayed message keeps naming its original publisher, not the daemon that replayed it.
        let replayedFor = properties.userID == configuration.broker.user ? properties.headers["x-original-user-id"]?.stringValue : nil
        let publisher = replayedFor ?? properties.userID
        if let contentType = properties.contentType { recorded["content-type"] = contentType }
        if let user = publisher { recorded["x-original-user-id"] = user }
        if let correlation = properties.correlationID { recorded["x-original-correlation-id"] = correlation }
        if let replyTo = properties.replyTo { recorded["x-original-reply-to"] = replyTo }
        // Nothing doubled: the same message rejected again (redelivered after a crash before its
        // ack) is already recorded and on its way to the dead-letter exchange. A replay of record
        // N rejected again is a new rejection: only records after N count (the operator's replay
        // marks N replayed after publishing, which may be after we get here).
        let replayOf = properties.userID == configuration.broker.user ? properties.headers["x-replayed-dead-letter"]?.stringValue.flatMap { Int64($0) } : nil
        if let source, let eventID,
           let existing = try store.existingDeadLetter(source: source, eventID: eventID, reason: rejection.code.rawValue, body: body,
                                                       after: replayOf ?? 0) {
            logger.info("rejection already dead-lettered", metadata: ["id": "\(eventID)", "dead_letter": "\(existing)"])
            return
        }
        let number = try store.recordDeadLetter(source: source, eventID: eventID, type: type, routingKey: routingKey, userID: publisher,
                                                reason: rejection.code.rawValue, detail: rejection.detail, body: body, properties: recorded)
        var headers = recorded
        if rejection.code == .cardDataPresent { headers["x-body-redacted"] = "card data removed (PCI DSS)" }
        headers["x-rejection-reason"] = rejection.code.rawValue
        headers["x-rejection-detail"] = rejection.detail
        headers["x-original-routing-key"] = routingKey
        // A dead letter has no CloudEvents id of ours: its outbox id names the rejection record.
        try store.enqueue(OutboxMessage(eventID: "dead-letter-\(number)-" + StableID.make([source ?? "", eventID ?? "", String(number)]),
                                        exchange: configuration.topology.deadLetterExchange, routingKey: routingKey.isEmpty ? "unknown" : routingKey,
                                        type: type ?? "unknown", headers: headers, body: body))
    }

    static func withoutCardData(_ body: [UInt8]) -> [UInt8] {
        guard let value = try? JSONParser(maximumDepth: 64).parse(body) else {
            return Array("{\"redacted\":\"unparseable body with card data\"}".utf8)
        }
        return JSONSerializer.serialize(CardDataScan.redacted(value))
    }

    /// Dead-letters messages that waited longer than the hold time (SPEC section 7).
    func expireHeldMessages(store: Store) throws(PostgresError) {
        do {
            try store.transaction {
                for held in try store.expireHeld(olderThanSeconds: configuration.holdSeconds) {
                    // Safety net: if what it waits for exists after all, apply it instead.
                    if try store.exists(kind: held.waitingKind, id: held.waitingID) {
                        logger.warning("held message found its reference at expiry; applying it", metadata: ["type": "\(held.type)", "id": "\(held.eventID)"])
                        try CommandHandlers.applyHeld(held, pipeline: self, store: store)
                        continue
                    }
                    let rejection = Rejection(code: .unknownReference,
                                              detail: "waited \(held.ageSeconds) s for \(held.waitingKind) '\(held.waitingID)', which never arrived")
                    try deadLetter(held.body, routingKey: held.type, properties: AMQPProperties(contentType: "application/cloudevents+json", userID: held.userID),
                                   rejection: rejection, source: held.source, eventID: held.eventID, type: held.type, store: store)
                    try store.setInboxOutcome(source: held.source, eventID: held.eventID, outcome: "rejected")
                    logger.warning("held message expired", metadata: ["type": "\(held.type)", "id": "\(held.eventID)", "reason": "unknown_reference"])
                }
                try store.notifyOutbox()
            }
            DaemonMetrics.held(count: try store.heldCount(), oldestAgeSeconds: try store.oldestHeldAgeSeconds())
        } catch let error as PostgresError {
            throw error
        } catch {
            preconditionFailure("only PostgresError escapes housekeeping: \(error)")
        }
    }

    /// One log line and the metrics of one delivery's outcome.
    private func record(_ delivery: AMQPDelivery, _ verdict: Verdict, _ disposition: Disposition) {
        // The decoded envelope when there is one; only a rejected body is parsed again, leniently.
        let hint: EnvelopeHint
        switch verdict {
        case .accepted(let message):
            hint = EnvelopeHint(source: message.envelope.source, id: message.envelope.id, type: message.envelope.type,
                                subject: message.envelope.subject ?? EnvelopeHint.customer(of: message.command))
            for field in message.command.unknownLabelFields { DaemonMetrics.unknownLabel(field: field) }
        case .rejected:
            hint = EnvelopeHint.read(delivery.body, maximumBytes: configuration.maximumBodyBytes)
        }
        let type = hint.type.flatMap { MessagePipeline.inboundTypes.contains($0) ? $0 : nil } ?? "unknown"
        switch disposition {
        case .applied: DaemonMetrics.message(type: type, outcome: "applied")
        case .duplicate: DaemonMetrics.message(type: type, outcome: "duplicate")
        case .held: DaemonMetrics.message(type: type, outcome: "held")
        case .replied: DaemonMetrics.message(type: type, outcome: "replied")
        case .rejected(let code):
            DaemonMetrics.message(type: type, outcome: "rejected")
            DaemonMetrics.rejection(reason: code.rawValue)
        }
        var metadata: Logger.Metadata = ["type": "\(hint.type ?? delivery.routingKey)", "id": "\(hint.id ?? "-")"]
        if let subject = hint.subject { metadata["customer"] = "\(subject)" }
        switch disposition {
        case .applied: logger.info("message applied", metadata: metadata)
        case .duplicate: logger.info("duplicate message ignored", metadata: metadata)
        case .held(let waiting): metadata["waiting_for"] = "\(waiting)"; logger.info("message held", metadata: metadata)
        case .rejected(let code): metadata["reason"] = "\(code.rawValue)"; logger.warning("message rejected", metadata: metadata)
        case .replied: logger.info("request answered", metadata: metadata)
        }
    }
}

/// The AMQP facts a handler may need, copied from the delivery.
struct Received {
    let userID: String?
    let replyTo: String?
    let correlationID: String?
    let body: [UInt8]
    let routingKey: String

    init(_ delivery: AMQPDelivery) {
        userID = delivery.properties.userID
        replyTo = delivery.properties.replyTo
        correlationID = delivery.properties.correlationID
        body = delivery.body
        routingKey = delivery.routingKey
    }

    init(userID: String?, body: [UInt8], routingKey: String) {
        self.userID = userID
        self.replyTo = nil
        self.correlationID = nil
        self.body = body
        self.routingKey = routingKey
    }
}

/// `source`, `id`, `type` and `subject` read leniently from a body that may be invalid, for
/// dead-letter records and logs only.
struct EnvelopeHint {
    var source: String?
    var id: String?
    var type: String?
    var subject: String?

    /// The customer a command is about, for log lines.
    static func customer(of command: InboundCommand) -> String? {
        switch command {
        case .customerUpserted(let c): return c.customerID
        case .invoiceIssued(let c): return c.customerID
        case .creditNoteIssued(let c): return c.customerID
        case .paymentSucceeded(let c): return c.customerID
        case .paymentPending(let c): return c.customerID
        case .paymentFailed(let c): return c.customerID
        case .accountSummaryRequested(let c): return c.customerID
        case .statementRequested(let c): return c.customerID
        case .paymentHistoryRequested(let c): return c.customerID
        case .invoiceAdjusted, .invoiceVoided, .invoiceWrittenOff, .paymentRefunded, .paymentReversed, .bankCreditReceived,
             .bankStatementReceived, .disputeOpened, .disputeResolved, .promiseToPayRecorded, .reconciliationResolved:
            return nil
        }
    }

    static func read(_ body: [UInt8], maximumBytes: Int) -> EnvelopeHint {
        guard body.count <= maximumBytes, let value = try? JSONParser(maximumDepth: 64).parse(body), let object = value.objectValue else {
            return EnvelopeHint()
        }
        func field(_ name: String) -> String? {
            guard let text = object[name]?.stringValue, !text.isEmpty, text.utf8.count <= 256 else { return nil }
            return text
        }
        // The customer for the log line: the CloudEvents subject, else the data's customer_id.
        let customer = field("subject") ?? object["data"]?["customer_id"]?.stringValue.flatMap { $0.utf8.count <= 256 ? $0 : nil }
        return EnvelopeHint(source: field("source"), id: field("id"), type: field("type"), subject: customer)
    }
}
