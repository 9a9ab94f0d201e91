import ARDomain
import PostgresClient

/// A stored payment: enough to take money back from it and to answer history requests.
public struct PaymentRecord: Sendable, Equatable {
    public let paymentID: String
    public let customerID: String
    public let amount: Money
    public let method: String
    public let fingerprint: String
}

/// What `Store.paymentIntake` read.
public struct PaymentIntake {
    /// False when the inbox already had the message (a re-delivery): nothing else applies.
    public let claimed: Bool
    public let customerExists: Bool
    /// A payment already stored under the id.
    public let existing: PaymentRecord?
    /// Messages are held waiting for this payment (read under its lock, which every message
    /// holding for a payment takes first, so none can be added before the commit).
    public let awaited: Bool
    /// Each named invoice (nil when unknown), in the order named, whoever's it is.
    public let namedInvoices: [(invoice: Invoice, document: InvoiceDocument)?]
    /// The named invoices that are the customer's, every open invoice in the payment's currency,
    /// the credit lots and the standing applications on those invoices.
    public let books: CustomerBooks
}

extension Store {
    public func payment(_ paymentID: String) throws(PostgresError) -> PaymentRecord? {
        try db.query(Store.paymentByID, [.text(paymentID)]).first.map(Store.paymentRecord(from:))
    }

    static let paymentByID = "SELECT payment_id, customer_id, currency, amount_minor, method, fingerprint FROM payments WHERE payment_id = $1"

    /// One row: the payment stored under the id (all NULL if none) and whether messages wait for it.
    static let paymentByIDAndAwaited = """
        SELECT p.payment_id, p.customer_id, p.currency, p.amount_minor, p.method, p.fingerprint,
               EXISTS (SELECT 1 FROM held_messages WHERE waiting_kind = 'payment' AND waiting_id = $1) AS awaited
        FROM (VALUES (1)) AS one LEFT JOIN payments p ON p.payment_id = $1
        """

    static func paymentRecord(from row: PostgresRow) -> PaymentRecord {
        guard let currency = Currency(code: row.requiredString("currency")) else { preconditionFailure("payment currency unreadable") }
        return PaymentRecord(paymentID: row.requiredString("payment_id"), customerID: row.requiredString("customer_id"),
                             amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                             method: row.requiredString("method"), fingerprint: row.requiredString("fingerprint"))
    }

    /// What `payment.succeeded` reads before it decides, in one round trip: the inbox claim (when
    /// asked), the customer's lock and row, the payment's lock and any payment already stored
    /// under its id, the named invoices' locks (in key order) and rows, and the customer's books
    /// (the named invoices that are the customer's and every open invoice in `currency`).
    ///
    /// The statements run one after the other in the order the handler took them one by one
    /// before (claim, customer, payment, invoices, books), so every read happens under the locks
    /// taken before it. When the claim is refused or the customer is missing, the later reads
    /// were wasted but changed nothing: they are reads and transaction-scoped locks.
    public func paymentIntake(claim: InboxClaim?, customerID: String, paymentID: String, namedInvoiceIDs: [String],
                              openInvoicesIn currency: Currency) throws(PostgresError) -> PaymentIntake {
        var batch = StatementBatch()
        let claimAt = claim.map { batch.add(Store.inboxClaimStatement($0)) }
        batch.add(Store.lockKeyStatement("customer", customerID))
        let customerAt = batch.add((Store.customerForUpdate, [.text(customerID)]))
        let unique = Array(Set(namedInvoiceIDs)).sorted()
        // The payment's lock, then the named invoices' in key order, in one statement; then the
        // stored payment and whether anything waits for it, in one.
        batch.add(Store.lockKeysStatement([("payment", paymentID)] + unique.map { ("invoice", $0) }))
        let existingAt = batch.add((Store.paymentByIDAndAwaited, [.text(paymentID)]))
        // Whoever's they are (another customer's is refused): one statement for all of them.
        let namedAt = unique.isEmpty ? nil : batch.add((Store.invoicesByID, [.text(Store.textArray(unique))]))
        // The books: the customer's open invoices in the currency, plus the named ones read above
        // that are the customer's. No standing applications: a payment only adds applications,
        // it never unwinds one.
        let reads = BooksReads(customerID: customerID, invoiceIDs: [], openInvoicesIn: currency, applications: [], standingApplications: false)
        let booksAt = batch.add(reads.statements)
        let results = try db.queries(batch.statements)
        var named: [String: (invoice: Invoice, document: InvoiceDocument)] = [:]
        for row in namedAt.map({ results[$0].all }) ?? [] {
            let found = Store.invoiceWithDocument(from: row)
            named[found.invoice.id] = found
        }
        return PaymentIntake(claimed: Store.claimed(results, at: claimAt),
                             customerExists: !results[customerAt].isEmpty,
                             existing: results[existingAt].first.flatMap { $0.string("payment_id") == nil ? nil : Store.paymentRecord(from: $0) },
                             awaited: Store.awaited(results[existingAt]),
                             namedInvoices: namedInvoiceIDs.map { named[$0] },
                             books: reads.books(results[booksAt], alsoInvoices: named.values.map(\.invoice)))
    }

    public func insertPayment(id: String, customerID: String, amount: Money, method: String, receivedAt: Instant,
                              gatewayReference: String?, payoutID: String?, fingerprint: String) throws(PostgresError) {
        if writeBehindActive {
            writeBehind.add(WriteBehind.PaymentRow(id: id, customerID: customerID, currency: amount.currency.code, amountMinor: amount.minorUnits,
                                                   method: method, receivedAt: receivedAt.description, gatewayReference: gatewayReference,
                                                   payoutID: payoutID, fingerprint: fingerprint))
            return
        }
        try db.execute("""
            INSERT INTO payments (payment_id, customer_id, currency, amount_minor, method, received_at, gateway_reference, payout_id, fingerprint)
            VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7, $8, $9)
            """, [.text(id), .text(customerID), .text(amount.currency.code), .int(amount.minorUnits), .text(method),
                  .text(receivedAt.description), .optional(gatewayReference), .optional(payoutID), .text(fingerprint)])
    }

    public func takebackFingerprint(_ takebackID: String) throws(PostgresError) -> String? {
        try db.query("SELECT fingerprint FROM payment_takebacks WHERE takeback_id = $1", [.text(takebackID)]).first?.string("fingerprint")
    }

    public func insertTakeback(id: String, paymentID: String, kind: String, amount: Money, reason: String?, fingerprint: String) throws(PostgresError) {
        try db.execute("""
            INSERT INTO payment_takebacks (takeback_id, payment_id, kind, amount_minor, reason, fingerprint)
            VALUES ($1, $2, $3, $4, $5, $6)
            """, [.text(id), .text(paymentID), .text(kind), .int(amount.minorUnits), .optional(reason), .text(fingerprint)])
    }

    /// Minor units already refunded or reversed of a payment.
    public func takenBack(paymentID: String) throws(PostgresError) -> Int64 {
        try db.query("SELECT COALESCE(sum(amount_minor), 0)::bigint AS total FROM payment_takebacks WHERE payment_id = $1",
                     [.text(paymentID)]).first?.int64("total") ?? 0
    }

    // MARK: pending and failed payments

    public func recordPending(paymentID: String, customerID: String, amount: Money, method: String, invoiceIDs: [String],
                              initiatedAt: Instant, expectedSettlement: BusinessDate?) throws(PostgresError) -> Bool {
        let rows = try db.query("""
            INSERT INTO pending_payments (payment_id, customer_id, currency, amount_minor, method, invoice_ids, initiated_at,
                                          expected_settlement_date, state)
            VALUES ($1, $2, $3, $4, $5, $6::text[], $7::timestamptz, $8::date, 'pending')
            ON CONFLICT (payment_id) DO NOTHING RETURNING 1 AS inserted
            """, [.text(paymentID), .text(customerID), .text(amount.currency.code), .int(amount.minorUnits), .text(method),
                  .text(Store.textArray(invoiceIDs)), .text(initiatedAt.description), .optional(expectedSettlement?.description)])
        return !rows.isEmpty
    }

    /// Settles or fails a pending payment, if one is pending (sent without waiting in a transaction).
    public func closePending(paymentID: String, state: String) throws(PostgresError) {
        try db.execute("""
            UPDATE pending_payments SET state = $2, updated_at = now() WHERE payment_id = $1 AND state = 'pending'
            """, [.text(paymentID), .text(state)])
    }

    /// Records one failed attempt; false when that attempt of that payment was already recorded
    /// (the same failure re-sent under a new event id: one fact, told to the customer once).
    @discardableResult
    public func recordFailure(paymentID: String, attempt: Int, customerID: String, amount: Money, method: String,
                              failureCode: String, retryable: Bool, invoiceIDs: [String]) throws(PostgresError) -> Bool {
        !(try db.query("""
            INSERT INTO payment_failures (payment_id, attempt, customer_id, currency, amount_minor, method, failure_code, retryable, invoice_ids)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[]) ON CONFLICT (payment_id, attempt) DO NOTHING
            RETURNING 1 AS inserted
            """, [.text(paymentID), .int(attempt), .text(customerID), .text(amount.currency.code), .int(amount.minorUnits), .text(method),
                  .text(failureCode), .bool(retryable), .text(Store.textArray(invoiceIDs))])).isEmpty
    }
}
