import ARContract
import ARDomain
import Store

/// Turns domain outcomes into CloudEvents in the outbox.
///
/// Events that report a fact (a status transition, a credit move, a journal entry, a payment
/// applied, a failure notice) take their id from the fact (`EventIdentity`): one fact, one id,
/// whichever message caused it and however often it is re-applied (SPEC section 2: "stable for the
/// same fact"). Only replies and events without a fact of their own use `emit(_:subject:_:)`, whose
/// id derives from the causing message (source, id) and the event's place among its effects.
final class EventFactory {
    let source: String
    let exchange: String
    let cause: [String]
    let time: Instant
    private var sequence = 0
    private(set) var messages: [OutboxMessage] = []

    init(source: String, exchange: String, cause: [String], time: Instant) {
        self.source = source
        self.exchange = exchange
        self.cause = cause
        self.time = time
    }

    /// Returns the events collected so far and forgets them (they are being written now).
    func drain() -> [OutboxMessage] {
        defer { messages.removeAll() }
        return messages
    }

    /// An event whose id derives from the causing message and its place among the message's events.
    func emit(_ type: String, subject: String?, _ data: [(String, JSONValue)]) {
        sequence += 1
        emit(type, id: StableID.make(cause + ["event", type, String(sequence)]), subject: subject, data)
    }

    /// An event reporting a fact, under the fact's own id (`EventIdentity`).
    func emit(_ type: String, id: String, subject: String?, _ data: [(String, JSONValue)]) {
        let body = EventFactory.encode(id: id, source: source, type: type, time: time, subject: subject, data: .object(JSONObject(data)))
        messages.append(OutboxMessage(eventID: id, exchange: exchange, routingKey: type, type: type, body: body))
    }

    /// A reply to a request: default exchange, routing key = reply_to, same correlation id.
    func reply(_ type: String, to replyTo: String, correlationID: String?, subject: String?, _ data: [(String, JSONValue)]) {
        sequence += 1
        let id = StableID.make(cause + ["reply", type, String(sequence)])
        let body = EventFactory.encode(id: id, source: source, type: type, time: time, subject: subject, data: .object(JSONObject(data)))
        messages.append(OutboxMessage(eventID: id, exchange: "", routingKey: replyTo, type: type, correlationID: correlationID, body: body))
    }

    static func encode(id: String, source: String, type: String, time: Instant, subject: String?, data: JSONValue) -> [UInt8] {
        encodeEvent(id: id, source: source, type: type, time: time, subject: subject, data: data)
    }

    // MARK: domain → events

    func invoiceStatusChanged(_ change: InvoiceStatusChange) {
        let invoice = change.invoice
        emit("invoice.status_changed", id: EventIdentity.invoiceStatusChanged(invoiceID: invoice.id, sequence: change.sequence),
             subject: invoice.customerID, [
            ("invoice_id", .string(invoice.id)), ("customer_id", .string(invoice.customerID)),
            ("from", change.from.map { .string($0.rawValue) } ?? .null), ("to", .string(change.to.rawValue)),
            ("balance", .money(invoice.balance)), ("currency", .string(invoice.currency.code)), ("amount", .money(invoice.amount)),
        ])
    }

    func creditBalanceChanged(customerID: String, _ balance: Money, journalEntryID: String) {
        emit("credit_balance.changed",
             id: EventIdentity.creditBalanceChanged(customerID: customerID, currency: balance.currency, journalEntryID: journalEntryID),
             subject: customerID, [
            ("customer_id", .string(customerID)), ("currency", .string(balance.currency.code)), ("balance", .money(balance)),
        ])
    }

    func ledgerEntryPosted(id: String, _ entry: JournalEntry) {
        let lines: [JSONValue] = entry.lines.map { line in
            var members: [(String, JSONValue)] = [
                ("account", .string(line.account.rawValue)),
                ("debit", .string(Money.format(minorUnits: line.debit, digits: entry.currency.minorUnitDigits))),
                ("credit", .string(Money.format(minorUnits: line.credit, digits: entry.currency.minorUnitDigits))),
            ]
            if let invoice = line.invoiceID { members.append(("invoice_id", .string(invoice))) }
            return .object(JSONObject(members))
        }
        emit("ledger.entry_posted", id: EventIdentity.ledgerEntryPosted(journalEntryID: id), subject: entry.customerID, [
            ("entry_id", .string(id)), ("kind", .string(entry.kind.rawValue)), ("customer_id", .string(entry.customerID)),
            ("currency", .string(entry.currency.code)), ("lines", .array(lines)), ("posted_at", .string(time.description)),
            ("reference", .string(entry.reference)),
        ])
    }

    /// The events every change of books produces: ledger entries, status changes, credit moves.
    /// `posted` is what `Store.saveBooks` wrote for exactly these books.
    func booksChanged(_ books: CustomerBooks, posted: [(id: String, entry: JournalEntry)]) {
        for (id, entry) in posted { ledgerEntryPosted(id: id, entry) }
        for change in books.statusChanges { invoiceStatusChanged(change) }
        for balance in books.creditChanges {
            guard let entryID = CustomerBooks.creditMoveEntryID(in: balance.currency, among: posted) else {
                preconditionFailure("credit of \(books.customerID) in \(balance.currency) moved without a journal entry")
            }
            creditBalanceChanged(customerID: books.customerID, balance, journalEntryID: entryID)
        }
    }
}

extension JSONValue {
    /// SPEC money: a decimal string with exactly the currency's minor digits.
    static func money(_ money: Money) -> JSONValue { .string(money.decimalString) }
    static func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }
}
