import AMQPClient
import ARContract
import ARDomain
import Documents
import PostgresClient
import Store

/// A request that can be answered only with an error reply (stable code, SPEC section 2): the
/// portal is never left waiting. Codes: unknown_customer, bad_range, bad_as_known_at,
/// bad_cursor, unknown_invoice.
public struct RequestError: Error, CustomStringConvertible {
    public let code: String
    public let detail: String
    public var description: String { "\(code): \(detail)" }
}

/// The statement reader the reply and the CLI share.
public enum StatementReader {
    public static func read(store: Store, customerID: String, from: BusinessDate, to: BusinessDate, asKnownAt: Instant?) throws -> StatementOfAccount {
        try RequestHandlers.read(StatementRequested(customerID: customerID, from: from, to: to, asKnownAt: asKnownAt, format: nil), store: store)
    }
}

/// The portal's read requests (SPEC sections 2 and 5): statement.requested and
/// payment_history.requested. Each reads the books as known at one horizon (Store.booksHorizon)
/// and replies to `reply_to` with the same correlation id, through the outbox.
enum RequestHandlers {
    /// The queue to answer, or a rejection (dead-lettered: there is no one to answer).
    static func replyQueue(_ context: HandlerContext) throws -> String {
        guard let replyTo = context.received.replyTo, !replyTo.isEmpty else {
            throw Rejection(code: RejectionCode(rawValue: "missing_reply_to"), detail: "a request needs the AMQP reply_to property")
        }
        guard isReplyQueue(replyTo, context.configuration) else {
            throw Rejection(code: RejectionCode(rawValue: "invalid_reply_to"),
                            detail: "reply_to '\(replyTo.prefix(64))' is not a reply queue (allowed prefixes: \(context.configuration.replyQueuePrefixes.joined(separator: ", ")))")
        }
        return replyTo
    }

    static func isReplyQueue(_ replyTo: String, _ configuration: DaemonConfiguration) -> Bool {
        replyTo.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) && configuration.replyQueuePrefixes.contains(where: { replyTo.hasPrefix($0) })
    }

    /// Answers with `data`, or with `{customer_id, error}` when the request failed with a RequestError.
    static func answer(_ type: String, customerID: String, _ context: HandlerContext, _ body: () throws -> [(String, JSONValue)]) throws -> Disposition {
        let replyTo = try replyQueue(context)
        let data: [(String, JSONValue)]
        do {
            data = try body()
        } catch let error as RequestError {
            data = errorData(customerID: customerID, code: error.code, detail: error.detail)
        }
        context.events.reply(type, to: replyTo, correlationID: context.received.correlationID, subject: customerID, data)
        try context.store.enqueue(context.events.drain())
        return .replied
    }

    static func errorData(customerID: String?, code: String, detail: String) -> [(String, JSONValue)] {
        var data: [(String, JSONValue)] = []
        if let customerID { data.append(("customer_id", .string(customerID))) }
        data.append(("error", .object(JSONObject([("code", .string(code)), ("detail", .string(String(detail.prefix(2000))))]))))
        return data
    }

    static func customerName(_ customerID: String, _ store: Store) throws -> String {
        guard let name = try store.customerName(customerID) else {
            throw RequestError(code: "unknown_customer", detail: "no customer \(customerID) is known")
        }
        return name
    }

    // MARK: statement.requested

    static func statement(_ request: StatementRequested, _ context: HandlerContext) throws -> Disposition {
        try answer("statement.reply", customerID: request.customerID, context) {
            let statement = try read(request, store: context.store)
            var data: [(String, JSONValue)] = [
                ("customer_id", .string(statement.customerID)), ("name", .string(statement.customerName)),
                ("from", .string(statement.from.description)), ("to", .string(statement.to.description)),
                ("as_known_at", .string(statement.asKnownAt.description)), ("statements", StatementDocument.json(statement)),
            ]
            if let text = request.format, let format = DocumentFormat(rawValue: text), format != .json {
                data.append(("document", .object(JSONObject([
                    ("format", .string(format.rawValue)), ("media_type", .string(format.mediaType)),
                    ("content", .string(StatementDocument.render(statement, as: format))),
                ]))))
            }
            return data
        }
    }

    /// The statement as known at `asKnownAt` (default: now), checked: a range of at most
    /// `StatementRangeCheck.maximumDays`, an instant not after the books horizon. Shared by the
    /// reply and the CLI.
    static func read(_ request: StatementRequested, store: Store) throws -> StatementOfAccount {
        if let problem = StatementRangeCheck.problem(from: request.from, to: request.to) {
            throw RequestError(code: "bad_range", detail: problem)
        }
        let name = try customerName(request.customerID, store)
        let horizon = try store.booksHorizon()
        let knownAt = request.asKnownAt ?? horizon.instant
        guard knownAt <= horizon.instant else {
            throw RequestError(code: "bad_as_known_at", detail: "as_known_at \(knownAt) is after the books horizon \(horizon.instant): it is not known yet")
        }
        let inputs = try store.statementInputs(customerID: request.customerID, from: request.from, to: request.to, knownAt: knownAt)
        let currencies = inputs.map { CurrencyStatement.assemble($0, to: request.to) }.filter { !$0.isEmpty }
        return StatementOfAccount(customerID: request.customerID, customerName: name, from: request.from, to: request.to,
                                  asKnownAt: knownAt, currencies: currencies)
    }

    // MARK: payment_history.requested

    static let defaultPageSize = 50

    static func paymentHistory(_ request: PaymentHistoryRequested, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        return try answer("payment_history.reply", customerID: request.customerID, context) {
            if let from = request.from, let to = request.to, to < from {
                throw RequestError(code: "bad_range", detail: "to (\(to)) is before from (\(from))")
            }
            _ = try customerName(request.customerID, store)
            if let invoiceID = request.invoiceID, try store.invoiceCustomer(invoiceID) != request.customerID {
                // The same answer for an unknown invoice and another customer's: nothing to learn by probing.
                throw RequestError(code: "unknown_invoice", detail: "customer \(request.customerID) has no invoice \(invoiceID)")
            }
            let filter = PaymentHistoryFilter(from: request.from, to: request.to, invoiceID: request.invoiceID)
            let binding = PaymentHistoryCursor.Binding(customerID: request.customerID, filter: filter.canonical)
            let secret = try cursorSecret(context)
            let horizonSequence: Int64
            let horizon: Instant
            var after: (receivedAt: Instant, historySequence: Int64)?
            if let text = request.cursor {
                guard let cursor = PaymentHistoryCursor.decode(text, secret: secret, binding: binding) else {
                    throw RequestError(code: "bad_cursor",
                                       detail: "the cursor is not one this service issued for customer \(request.customerID) with these filters")
                }
                (horizonSequence, horizon) = (cursor.horizonSequence, cursor.horizon)
                after = (cursor.lastReceivedAt, cursor.lastHistorySequence)
            } else {
                let now = try store.booksHorizon()
                (horizonSequence, horizon) = (now.sequence, now.instant)
            }
            let limit = min(max(request.limit ?? defaultPageSize, 1), 500)
            let page = try store.paymentHistory(customerID: request.customerID, filter: filter, horizonSequence: horizonSequence,
                                                after: after, limit: limit)
            var next: JSONValue = .null
            if page.hasMore, let last = page.items.last {
                next = .string(PaymentHistoryCursor(horizonSequence: horizonSequence, horizon: horizon, lastReceivedAt: last.receivedAt,
                                                    lastHistorySequence: last.historySequence).encode(secret: secret, binding: binding))
            }
            return [("customer_id", .string(request.customerID)), ("as_known_at", .string(horizon.description)),
                    ("payments", .array(page.items.map(render))), ("next_cursor", next)]
        }
    }

    static func cursorSecret(_ context: HandlerContext) throws -> [UInt8] {
        if let configured = context.configuration.cursorSecret { return Array(configured.utf8) }
        return Array(try context.store.storedCursorSecret().utf8)
    }

    static func render(_ item: PaymentHistoryPage.Item) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("payment_id", .string(item.paymentID)), ("currency", .string(item.amount.currency.code)), ("amount", .money(item.amount)),
            ("method", .string(item.method)), ("received_at", .string(item.receivedAt.description)),
        ]
        if let reference = item.gatewayReference { members.append(("gateway_reference", .string(reference))) }
        members.append(("allocations", .array(item.allocations.map { allocation in
            .object(JSONObject([("invoice_id", .string(allocation.invoiceID)), ("invoice_number", .string(allocation.invoiceNumber)),
                                ("amount", .money(allocation.applied)), ("taken_back", .money(allocation.takenBack))]))
        })))
        members.append(("refunds", .array(item.takeBacks.map { takeBack in
            var fields: [(String, JSONValue)] = [("refund_id", .string(takeBack.id)), ("kind", .string(takeBack.kind)),
                                                 ("amount", .money(takeBack.amount)), ("booked_at", .string(takeBack.bookedAt.description))]
            if let reason = takeBack.reason { fields.append(("reason", .string(reason))) }
            return .object(JSONObject(fields))
        })))
        let refunded = item.takeBacks.reduce(Money.zero(item.amount.currency)) { $0 + $1.amount }
        members += [("refunded", .money(refunded)), ("unapplied_credit", .money(item.unapplied))]
        return .object(JSONObject(members))
    }
}

extension MessagePipeline {
    /// The reply types of the request types: a rejected request is also answered with an error.
    static let replyTypes = [
        "account.summary.requested": "account.summary.reply", "statement.requested": "statement.reply",
        "payment_history.requested": "payment_history.reply",
    ]

    /// A request dead-lettered as invalid (schema violation, forbidden publisher, ...) still gets
    /// an error reply with the rejection code when it names a reply queue: the portal is never
    /// left waiting. Nothing of the books is read.
    func replyToRejectedRequest(_ properties: AMQPProperties, type: String?, source: String?, eventID: String?, rejection: Rejection, store: Store) throws {
        guard let type, let replyType = MessagePipeline.replyTypes[type], let replyTo = properties.replyTo,
              RequestHandlers.isReplyQueue(replyTo, configuration) else { return }
        let events = EventFactory(source: configuration.eventSource, exchange: configuration.topology.eventsExchange,
                                  cause: [source ?? "", eventID ?? "", "rejected", properties.correlationID ?? ""], time: WallClock.now())
        events.reply(replyType, to: replyTo, correlationID: properties.correlationID, subject: nil,
                     RequestHandlers.errorData(customerID: nil, code: rejection.code.rawValue, detail: rejection.detail))
        try store.enqueue(events.drain())
    }
}
