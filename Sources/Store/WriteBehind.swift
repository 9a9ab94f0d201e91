import ARDomain
import PostgresClient

/// The hot writes of a batch of payments, kept back and sent as one multi-row statement per
/// table at the next flush (`Store.flushWriteBehind`), instead of one statement per row.
///
/// Why: PostgreSQL spends most of a payment's CPU starting statements (bind, executor start,
/// preparing each CHECK constraint and partial-index predicate once per statement), not on the
/// rows; twenty payments in one INSERT cost little more than one (README, throughput).
///
/// The rule that keeps it correct: nothing ever reads around kept-back rows. The pipeline keeps
/// writes back only while a `payment.succeeded` is applied, flushes before any other message,
/// before a payment whose keys (customer, payment id, named invoices) meet the kept-back rows'
/// keys, before held messages are released, and before COMMIT; a rejected message's rows are
/// dropped with its savepoint (`Store.transaction`). Flushed statements are sent without waiting; an
/// error fails the batch like any other statement's, and the worker then applies the batch one
/// message per transaction (ConsumerWorker.isolate), where the error is the one message's.
struct WriteBehind {
    struct PaymentRow {
        let id, customerID, currency: String
        let amountMinor: Int64
        let method, receivedAt: String
        let gatewayReference, payoutID: String?
        let fingerprint: String
    }

    /// Where a message's rows start: rows after it are dropped if the message is rejected.
    struct Mark {
        fileprivate let payments, invoices, applications, lots, journal, outbox: Int
        var isEmpty: Bool { payments + invoices + applications + lots + journal + outbox == 0 }
    }

    private(set) var payments: [PaymentRow] = []
    /// Absolute new values; an invoice written twice keeps its latest state in its first place.
    private(set) var invoices: [Invoice] = []
    private(set) var applications: [(customerID: String, application: Application)] = []
    private(set) var lots: [(customerID: String, lot: CreditLot)] = []
    private(set) var journal: [(id: String, entry: JournalEntry)] = []
    private(set) var outbox: [OutboxMessage] = []
    /// Keys of the rows kept back: a message reading any of them must see them flushed first.
    private(set) var customers: Set<String> = []
    private(set) var paymentIDs: Set<String> = []
    private(set) var invoiceIDs: Set<String> = []

    var isEmpty: Bool {
        payments.isEmpty && invoices.isEmpty && applications.isEmpty && lots.isEmpty && journal.isEmpty && outbox.isEmpty
    }

    var hasOutbox: Bool { !outbox.isEmpty }

    var mark: Mark {
        Mark(payments: payments.count, invoices: invoices.count, applications: applications.count, lots: lots.count,
             journal: journal.count, outbox: outbox.count)
    }

    /// Whether a message with these keys would read something kept back.
    func touches(customerID: String, paymentID: String, invoiceIDs named: [String]) -> Bool {
        customers.contains(customerID) || paymentIDs.contains(paymentID) || named.contains { invoiceIDs.contains($0) }
    }

    mutating func add(_ payment: PaymentRow) {
        payments.append(payment)
        customers.insert(payment.customerID)
        paymentIDs.insert(payment.id)
    }

    mutating func add(invoice: Invoice) {
        customers.insert(invoice.customerID)
        if invoiceIDs.insert(invoice.id).inserted {
            invoices.append(invoice)
        } else if let index = invoices.firstIndex(where: { $0.id == invoice.id }) {
            invoices[index] = invoice
        }
    }

    mutating func add(application: Application, customerID: String) {
        applications.append((customerID, application))
        customers.insert(customerID)
    }

    mutating func add(lot: CreditLot, customerID: String) {
        lots.append((customerID, lot))
        customers.insert(customerID)
    }

    mutating func add(journal entry: JournalEntry, id: String) {
        journal.append((id, entry))
        customers.insert(entry.customerID)
    }

    mutating func add(outbox messages: [OutboxMessage]) { outbox += messages }

    /// Drops the rows added after `mark` (a rejected message). The keys stay: a key kept
    /// needlessly only costs an earlier flush.
    mutating func discard(to mark: Mark) {
        // Nothing after `mark` can be older than a flush since: the savepoint checks that first.
        guard payments.count >= mark.payments, invoices.count >= mark.invoices, applications.count >= mark.applications,
              lots.count >= mark.lots, journal.count >= mark.journal, outbox.count >= mark.outbox else {
            self = WriteBehind()
            return
        }
        payments.removeLast(payments.count - mark.payments)
        invoices.removeLast(invoices.count - mark.invoices)
        applications.removeLast(applications.count - mark.applications)
        lots.removeLast(lots.count - mark.lots)
        journal.removeLast(journal.count - mark.journal)
        outbox.removeLast(outbox.count - mark.outbox)
        invoiceIDs = Set(invoices.map(\.id))
    }

    /// The statements that write everything kept back, in an order the foreign keys accept
    /// (payments and invoices before the applications on them), and empties the buffer.
    mutating func drain() -> [(sql: String, parameters: [PostgresValue])] {
        defer { self = WriteBehind() }
        var statements: [(sql: String, parameters: [PostgresValue])] = []
        if !payments.isEmpty {
            statements.append(("""
                INSERT INTO payments (payment_id, customer_id, currency, amount_minor, method, received_at, gateway_reference, payout_id, fingerprint)
                SELECT p.id, p.customer_id, p.currency, p.amount_minor, p.method, p.received_at, p.gateway_reference, p.payout_id, p.fingerprint
                FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[])
                     WITH ORDINALITY AS p(id, customer_id, currency, amount_minor, method, received_at, gateway_reference, payout_id, fingerprint, position)
                ORDER BY p.position
                """, [.text(Store.textArray(payments.map(\.id))), .text(Store.textArray(payments.map(\.customerID))),
                      .text(Store.textArray(payments.map(\.currency))), .text(Store.intArray(payments.map(\.amountMinor))),
                      .text(Store.textArray(payments.map(\.method))), .text(Store.textArray(payments.map(\.receivedAt))),
                      .text(Store.nullableTextArray(payments.map(\.gatewayReference))), .text(Store.nullableTextArray(payments.map(\.payoutID))),
                      .text(Store.textArray(payments.map(\.fingerprint)))]))
        }
        if !invoices.isEmpty {
            statements.append(("""
                UPDATE invoices AS i SET amount_minor = u.amount_minor, balance_minor = u.balance_minor, written_off_minor = u.written_off_minor,
                                         status = u.status, status_seq = u.status_seq, updated_at = now()
                FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
                     AS u(invoice_id, amount_minor, balance_minor, written_off_minor, status, status_seq)
                WHERE i.invoice_id = u.invoice_id
                """, [.text(Store.textArray(invoices.map(\.id))), .text(Store.intArray(invoices.map(\.amount.minorUnits))),
                      .text(Store.intArray(invoices.map(\.balance.minorUnits))), .text(Store.intArray(invoices.map(\.writtenOffAmount.minorUnits))),
                      .text(Store.textArray(invoices.map(\.status.rawValue))), .text(Store.intArray(invoices.map(\.statusSequence)))]))
        }
        if !applications.isEmpty {
            statements.append(("""
                INSERT INTO applications (invoice_id, customer_id, currency, origin_kind, origin_id, amount_minor, unwound_minor)
                SELECT a.invoice_id, a.customer_id, a.currency, a.origin_kind, a.origin_id, a.amount_minor, a.unwound_minor
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
                     WITH ORDINALITY AS a(invoice_id, customer_id, currency, origin_kind, origin_id, amount_minor, unwound_minor, position)
                ORDER BY a.position
                """, [.text(Store.textArray(applications.map(\.application.invoiceID))), .text(Store.textArray(applications.map(\.customerID))),
                      .text(Store.textArray(applications.map(\.application.amount.currency.code))),
                      .text(Store.textArray(applications.map(\.application.origin.kind.rawValue))),
                      .text(Store.textArray(applications.map(\.application.origin.id))),
                      .text(Store.intArray(applications.map(\.application.amount.minorUnits))),
                      .text(Store.intArray(applications.map(\.application.unwound.minorUnits)))]))
        }
        if !lots.isEmpty {
            statements.append(("""
                INSERT INTO credit_lots (customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice)
                SELECT l.customer_id, l.currency, l.origin_kind, l.origin_id, l.original_minor, l.remaining_minor, l.reserved_for_invoice
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
                     WITH ORDINALITY AS l(customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice, position)
                ORDER BY l.position
                """, [.text(Store.textArray(lots.map(\.customerID))), .text(Store.textArray(lots.map(\.lot.original.currency.code))),
                      .text(Store.textArray(lots.map(\.lot.origin.kind.rawValue))), .text(Store.textArray(lots.map(\.lot.origin.id))),
                      .text(Store.intArray(lots.map(\.lot.original.minorUnits))), .text(Store.intArray(lots.map(\.lot.remaining.minorUnits))),
                      .text(Store.nullableTextArray(lots.map(\.lot.reservedForInvoice)))]))
        }
        if !journal.isEmpty {
            let lines = journal.flatMap { posted in posted.entry.lines.enumerated().map { (posted.id, posted.entry.customerID, $0.offset + 1, $0.element) } }
            // The lines join the entries inserted, so the entries are written first (and a line
            // can only name an entry of this statement).
            statements.append(("""
                WITH entry AS (
                    INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference)
                    SELECT e.entry_id, e.kind, e.customer_id, e.currency, e.reference
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                         WITH ORDINALITY AS e(entry_id, kind, customer_id, currency, reference, position)
                    ORDER BY e.position
                    RETURNING entry_id)
                INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
                SELECT line.entry_id, line.no, line.account, line.customer_id, line.invoice_id, line.debit, line.credit
                FROM unnest($6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[])
                     AS line(entry_id, no, account, customer_id, invoice_id, debit, credit)
                JOIN entry USING (entry_id)
                """, [.text(Store.textArray(journal.map(\.id))), .text(Store.textArray(journal.map(\.entry.kind.rawValue))),
                      .text(Store.textArray(journal.map(\.entry.customerID))), .text(Store.textArray(journal.map(\.entry.currency.code))),
                      .text(Store.textArray(journal.map(\.entry.reference))),
                      .text(Store.textArray(lines.map(\.0))), .text(Store.intArray(lines.map { Int64($0.2) })),
                      .text(Store.textArray(lines.map(\.3.account.rawValue))), .text(Store.textArray(lines.map(\.1))),
                      .text(Store.nullableTextArray(lines.map(\.3.invoiceID))),
                      .text(Store.intArray(lines.map(\.3.debit))), .text(Store.intArray(lines.map(\.3.credit)))]))
        }
        if !outbox.isEmpty { statements.append(Store.enqueueStatement(outbox)) }
        return statements
    }
}

extension Store {
    /// Keeps the hot writes of the message being applied back (see `WriteBehind`) while true.
    /// Set by the pipeline around a `payment.succeeded` only.
    public var writingBehind: Bool {
        get { writeBehindActive }
        set { writeBehindActive = newValue }
    }

    /// Whether a payment with these keys would read a row kept back (flush first if so).
    public func writeBehindTouches(customerID: String, paymentID: String, invoiceIDs: [String]) -> Bool {
        writeBehind.touches(customerID: customerID, paymentID: paymentID, invoiceIDs: invoiceIDs)
    }

    /// Sends everything kept back (without waiting: the next wait or COMMIT checks it).
    public func flushWriteBehind() throws(PostgresError) {
        guard !writeBehind.isEmpty else { return }
        writeBehindFlushes += 1
        for statement in writeBehind.drain() { try db.execute(statement.sql, statement.parameters) }
    }

    /// Drops everything kept back (the transaction failed).
    func discardWriteBehind() {
        writeBehind = WriteBehind()
        writeBehindActive = false
    }
}
