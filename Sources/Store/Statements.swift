import ARDomain
import PostgresClient

/// The instant up to which the books are known, and the commit sequence number of the last
/// transaction known then (migration 0006: journal_clock, journal_commits).
public struct BooksHorizon: Hashable, Sendable {
    public let sequence: Int64
    public let instant: Instant
}

/// A page of a customer's payments, newest first.
public struct PaymentHistoryPage: Sendable {
    public struct Allocation: Sendable, Hashable {
        public let invoiceID: String
        public let invoiceNumber: String
        /// Money of the payment applied to the invoice, and how much of it was taken back since.
        public let applied: Money
        public let takenBack: Money
    }

    public struct TakeBack: Sendable, Hashable {
        public let id: String
        public let kind: String
        public let amount: Money
        public let reason: String?
        public let bookedAt: Instant
    }

    public struct Item: Sendable, Hashable {
        public let paymentID: String
        public let amount: Money
        public let method: String
        public let receivedAt: Instant
        public let historySequence: Int64
        public let gatewayReference: String?
        public var allocations: [Allocation]
        public var takeBacks: [TakeBack]
        /// What of the payment is still unapplied credit.
        public var unapplied: Money
    }

    public let items: [Item]
    /// True when more items follow the last one.
    public let hasMore: Bool
}

/// The filters of a payment-history request.
public struct PaymentHistoryFilter: Hashable, Sendable {
    public var from: BusinessDate?
    public var to: BusinessDate?
    public var invoiceID: String?
    public init(from: BusinessDate?, to: BusinessDate?, invoiceID: String?) {
        self.from = from
        self.to = to
        self.invoiceID = invoiceID
    }
    /// What a cursor is bound to besides the customer.
    public var canonical: String { [from?.description ?? "", to?.description ?? "", invoiceID ?? ""].joined(separator: "\u{1F}") }
}

extension Store {
    // MARK: horizon

    /// The books as known now: waits out any commit that is stamping itself (the journal_clock
    /// row FOR SHARE), then reads the clock. Every transaction stamped at or before the returned
    /// instant is visible from here on; every later one is stamped after it. Inside a transaction
    /// (a message batch) the share lock is taken in a savepoint that is rolled back at once, so
    /// the batch holds it for no longer than the read.
    public func booksHorizon() throws(PostgresError) -> BooksHorizon {
        let inTransaction = db.transactionDepth > 0
        try db.simpleQuery(inTransaction ? "SAVEPOINT books_horizon" : "BEGIN")
        let row: PostgresRow?
        do {
            try db.query("SELECT 1 AS locked FROM journal_clock FOR SHARE")
            row = try db.query("""
                SELECT last_seq, (extract(epoch FROM greatest(clock_timestamp(), last_at)) * 1000000)::bigint AS micros FROM journal_clock
                """).first
        } catch {
            _ = try? db.simpleQuery(inTransaction ? "ROLLBACK TO SAVEPOINT books_horizon; RELEASE SAVEPOINT books_horizon" : "ROLLBACK")
            throw error
        }
        // Rolling back releases the share lock (row locks taken after a savepoint go with it).
        try db.simpleQuery(inTransaction ? "ROLLBACK TO SAVEPOINT books_horizon; RELEASE SAVEPOINT books_horizon" : "COMMIT")
        guard let row else { preconditionFailure("journal_clock has no row (migration 0006)") }
        return BooksHorizon(sequence: row.requiredInt64("last_seq"), instant: Instant(microsecondsSinceEpoch: row.requiredInt64("micros")))
    }

    // MARK: statements

    /// The customer's ($1) entries known at $2 (µs), with booking instant, day and order, and its
    /// receivable / unapplied-credit lines summed per (entry, account, invoice). "Known at T":
    /// committed and not stamped after T (an anti-join with the few commits stamped after T, read
    /// from the known_at index), and not this transaction's own unstamped entries; entries from
    /// before migration 0006 are known from their posted_at. Both sides are index-only scans of
    /// the customer's rows, joined by hash.
    static let statementLines = """
        WITH late AS MATERIALIZED (
            SELECT xact_id FROM journal_commits WHERE known_at > to_timestamp($2::bigint / 1000000.0)),
        known AS MATERIALIZED (
            SELECT e.entry_id, e.kind, e.reference, e.currency, e.entry_seq, COALESCE(e.booked_at, e.posted_at) AS booked_at,
                   (COALESCE(e.booked_at, e.posted_at) AT TIME ZONE 'UTC')::date AS booked_on
            FROM journal_entries e
            WHERE e.customer_id = $1
              AND (e.xact_id IS NOT NULL OR e.posted_at <= to_timestamp($2::bigint / 1000000.0))
              AND e.xact_id IS DISTINCT FROM pg_current_xact_id_if_assigned()
              AND NOT EXISTS (SELECT 1 FROM late WHERE late.xact_id = e.xact_id)),
        lines AS MATERIALIZED (
            SELECT entry_id, account, invoice_id, sum(debit_minor - credit_minor) AS net FROM journal_lines
            WHERE customer_id = $1 AND account IN ('receivable', 'unapplied_credit') GROUP BY entry_id, account, invoice_id)
        """

    /// The customer's name, or nil when unknown.
    public func customerName(_ customerID: String) throws(PostgresError) -> String? {
        try db.query("SELECT name FROM customers WHERE customer_id = $1", [.text(customerID)]).first?.string("name")
    }

    /// What a statement for [from, to] as known at `knownAt` needs, per currency (see
    /// `StatementInputs.aggregate`, the reference these sums are tested against). Call with an
    /// instant at or before a `booksHorizon()`, so everything known then is visible.
    public func statementInputs(customerID: String, from: BusinessDate, to: BusinessDate, knownAt: Instant) throws(PostgresError) -> [StatementInputs] {
        // One round trip: the customer's known entries and their summed lines are read once (two
        // index scans of the customer's rows, joined by hash: MATERIALIZED keeps the planner from
        // a nested loop over every entry), then cut three ways.
        let rows = try db.query("""
            \(Store.statementLines),
            docs AS MATERIALIZED (SELECT invoice_id, number, issue_date, due_date FROM invoices WHERE customer_id = $1),
            paid AS MATERIALIZED (SELECT payment_id, received_at FROM payments WHERE customer_id = $1)
            SELECT 'opening' AS part, k.currency, NULL::text AS entry_id, NULL::text AS kind, NULL::text AS reference, NULL::text AS account,
                   NULL::text AS invoice_id, NULL::bigint AS booked_micros, NULL::bigint AS net, NULL::text AS invoice_number,
                   NULL::text AS document_date, NULL::text AS due_date,
                   COALESCE(sum(l.net) FILTER (WHERE l.account = 'receivable'), 0)::bigint AS receivable,
                   COALESCE(-sum(l.net) FILTER (WHERE l.account = 'unapplied_credit'), 0)::bigint AS credit,
                   NULL::bigint AS entry_seq, NULL::timestamptz AS booked_at
            FROM known k JOIN lines l USING (entry_id) WHERE k.booked_on < $3::date GROUP BY k.currency
            UNION ALL
            SELECT 'movement', k.currency, k.entry_id, k.kind, k.reference, l.account, l.invoice_id,
                   (extract(epoch FROM k.booked_at) * 1000000)::bigint, l.net::bigint, d.number,
                   CASE WHEN k.kind = 'invoice_issued' THEN d.issue_date::text ELSE (p.received_at AT TIME ZONE 'UTC')::date::text END,
                   NULL, NULL, NULL, k.entry_seq, k.booked_at
            FROM known k JOIN lines l USING (entry_id)
            LEFT JOIN docs d ON d.invoice_id = k.reference
                  AND k.kind IN ('invoice_issued', 'invoice_adjusted', 'invoice_voided', 'invoice_written_off')
            LEFT JOIN paid p ON p.payment_id = k.reference AND k.kind = 'payment_received'
            WHERE k.booked_on BETWEEN $3::date AND $4::date
            UNION ALL
            SELECT 'balance', k.currency, NULL, NULL, NULL, NULL, l.invoice_id, NULL, sum(l.net)::bigint, NULL, NULL, d.due_date::text,
                   NULL, NULL, NULL, NULL
            FROM known k JOIN lines l USING (entry_id) JOIN docs d ON d.invoice_id = l.invoice_id
            WHERE l.account = 'receivable' AND k.booked_on <= $4::date
            GROUP BY k.currency, l.invoice_id, d.due_date HAVING sum(l.net) <> 0
            ORDER BY part, entry_seq NULLS FIRST, booked_at, entry_id, account, invoice_id
            """, [.text(customerID), .int(knownAt.microsecondsSinceEpoch), .text(from.description), .text(to.description)])
        let all = rows.all
        let openingRows = all.filter { $0.string("part") == "opening" }
        let movementRows = all.filter { $0.string("part") == "movement" }
        let balanceRows = all.filter { $0.string("part") == "balance" }

        var opening: [Currency: (Int64, Int64)] = [:]
        for row in openingRows {
            opening[Store.currency(row)] = (row.requiredInt64("receivable"), row.requiredInt64("credit"))
        }
        var postings: [Currency: [StatementPosting]] = [:]
        var current: (id: String, currency: Currency, kind: String, reference: String, booked: Int64, receivable: [String: Int64], credit: Int64,
                      date: BusinessDate?, number: String?)?
        func flush() {
            guard let entry = current else { return }
            let order = Int64(postings.values.reduce(0) { $0 + $1.count })
            postings[entry.currency, default: []].append(StatementPosting(
                entryID: entry.id, kind: MovementKind(journalKind: entry.kind), reference: entry.reference, currency: entry.currency,
                bookedAt: Instant(microsecondsSinceEpoch: entry.booked), order: order, receivableByInvoice: entry.receivable,
                creditChange: entry.credit, documentDate: entry.date, documentNumber: entry.number))
            current = nil
        }
        for row in movementRows {
            let id = row.requiredString("entry_id")
            if current?.id != id {
                flush()
                let kind = row.requiredString("kind")
                let date = row.string("document_date").flatMap(BusinessDate.init)
                current = (id, Store.currency(row), kind, row.requiredString("reference"), row.requiredInt64("booked_micros"), [:], 0,
                           date, row.string("invoice_number"))
            }
            let net = row.requiredInt64("net")
            if row.requiredString("account") == "receivable" {
                // A receivable line always names its invoice; an unnamed one is kept under "".
                current?.receivable[row.string("invoice_id") ?? "", default: 0] += net
            } else {
                current?.credit -= net
            }
        }
        flush()
        var balances: [Currency: [InvoiceBalance]] = [:]
        for row in balanceRows {
            guard let due = BusinessDate(row.requiredString("due_date")) else { preconditionFailure("invoice due date unreadable") }
            balances[Store.currency(row), default: []].append(
                InvoiceBalance(invoiceID: row.requiredString("invoice_id"), dueDate: due, balance: row.requiredInt64("net")))
        }
        let currencies = Set(opening.keys).union(postings.keys).union(balances.keys).sorted()
        return currencies.map { currency in
            StatementInputs(currency: currency, openingReceivable: opening[currency]?.0 ?? 0, openingCredit: opening[currency]?.1 ?? 0,
                            postings: postings[currency] ?? [], invoiceBalances: balances[currency] ?? [])
        }
    }

    /// Every posting of a customer known at `knownAt`, in commit order, with the due dates of its
    /// invoices: the raw journal, for checking `statementInputs` against `StatementInputs.aggregate`.
    public func statementJournal(customerID: String, knownAt: Instant) throws(PostgresError) -> (postings: [StatementPosting], dueDates: [String: BusinessDate]) {
        let rows = try db.query("""
            \(Store.statementLines)
            SELECT k.entry_id, k.kind, k.reference, k.currency, l.account, l.invoice_id,
                   (extract(epoch FROM k.booked_at) * 1000000)::bigint AS booked_micros,
                   (l.debit_minor - l.credit_minor)::bigint AS net
            FROM known k JOIN journal_lines l ON l.entry_id = k.entry_id AND l.account IN ('receivable', 'unapplied_credit')
            ORDER BY k.entry_seq NULLS FIRST, k.booked_at, k.entry_id, l.line_no
            """, [.text(customerID), .int(knownAt.microsecondsSinceEpoch)])
        var postings: [StatementPosting] = []
        var index = 0
        let all = rows.all
        while index < all.count {
            let id = all[index].requiredString("entry_id")
            var receivable: [String: Int64] = [:]
            var credit: Int64 = 0
            let first = all[index]
            while index < all.count && all[index].requiredString("entry_id") == id {
                let net = all[index].requiredInt64("net")
                if all[index].requiredString("account") == "receivable" {
                    receivable[all[index].string("invoice_id") ?? "", default: 0] += net
                } else {
                    credit -= net
                }
                index += 1
            }
            postings.append(StatementPosting(entryID: id, kind: MovementKind(journalKind: first.requiredString("kind")),
                                             reference: first.requiredString("reference"), currency: Store.currency(first),
                                             bookedAt: Instant(microsecondsSinceEpoch: first.requiredInt64("booked_micros")),
                                             order: Int64(postings.count), receivableByInvoice: receivable, creditChange: credit))
        }
        var dueDates: [String: BusinessDate] = [:]
        for row in try db.query("SELECT invoice_id, due_date::text AS due_date FROM invoices WHERE customer_id = $1", [.text(customerID)]).all {
            dueDates[row.requiredString("invoice_id")] = BusinessDate(row.requiredString("due_date"))
        }
        return (postings, dueDates)
    }

    static func currency(_ row: PostgresRow) -> Currency {
        guard let currency = Currency(code: row.requiredString("currency")) else { preconditionFailure("currency \(row.values) unreadable") }
        return currency
    }

    // MARK: payment history

    /// The customer an invoice belongs to, or nil when it is unknown.
    public func invoiceCustomer(_ invoiceID: String) throws(PostgresError) -> String? {
        try db.query("SELECT customer_id FROM invoices WHERE invoice_id = $1", [.text(invoiceID)]).first?.string("customer_id")
    }

    /// Up to `limit` payments of the customer booked at or before `horizonSequence`, newest first
    /// by (received_at, insertion number), strictly after the position `after` when given.
    public func paymentHistory(customerID: String, filter: PaymentHistoryFilter, horizonSequence: Int64,
                               after: (receivedAt: Instant, historySequence: Int64)?, limit: Int) throws(PostgresError) -> PaymentHistoryPage {
        let rows = try db.query("""
            SELECT p.payment_id, p.currency, p.amount_minor, p.method, p.gateway_reference, p.history_seq,
                   (extract(epoch FROM p.received_at) * 1000000)::bigint AS received_micros
            FROM payments p LEFT JOIN journal_commits c ON c.xact_id = p.xact_id
            WHERE p.customer_id = $1 AND (p.xact_id IS NULL OR c.seq IS NOT NULL) AND COALESCE(c.seq, 0) <= $2::bigint
              AND ($3::bigint IS NULL OR (p.received_at, p.history_seq) < (to_timestamp($3::bigint / 1000000.0), $4::bigint))
              AND ($5::date IS NULL OR p.received_at >= ($5::date::timestamp AT TIME ZONE 'UTC'))
              AND ($6::date IS NULL OR p.received_at < (($6::date + 1)::timestamp AT TIME ZONE 'UTC'))
              AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM applications a WHERE a.origin_kind = 'payment' AND a.origin_id = p.payment_id
                                                                                AND a.invoice_id = $7::text))
            ORDER BY p.received_at DESC, p.history_seq DESC
            LIMIT $8::bigint
            """, [.text(customerID), .int(horizonSequence), after.map { .int($0.receivedAt.microsecondsSinceEpoch) } ?? .null,
                  after.map { .int($0.historySequence) } ?? .null, .optional(filter.from?.description), .optional(filter.to?.description),
                  .optional(filter.invoiceID), .int(limit + 1)])
        var items: [PaymentHistoryPage.Item] = rows.all.prefix(limit).map { row in
            let currency = Store.currency(row)
            return PaymentHistoryPage.Item(
                paymentID: row.requiredString("payment_id"), amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                method: row.requiredString("method"), receivedAt: Instant(microsecondsSinceEpoch: row.requiredInt64("received_micros")),
                historySequence: row.requiredInt64("history_seq"), gatewayReference: row.string("gateway_reference"),
                allocations: [], takeBacks: [], unapplied: .zero(currency))
        }
        guard !items.isEmpty else { return PaymentHistoryPage(items: [], hasMore: false) }
        let ids = Store.textArray(items.map(\.paymentID))
        var position: [String: Int] = [:]
        for (index, item) in items.enumerated() { position[item.paymentID] = index }
        let allocationRows = try db.query("""
            SELECT a.origin_id, a.invoice_id, i.number, sum(a.amount_minor)::bigint AS applied, sum(a.unwound_minor)::bigint AS taken_back
            FROM applications a JOIN invoices i ON i.invoice_id = a.invoice_id
            WHERE a.origin_kind = 'payment' AND a.origin_id = ANY($1::text[]) AND a.customer_id = $2
            GROUP BY a.origin_id, a.invoice_id, i.number ORDER BY a.origin_id, min(a.application_id)
            """, [.text(ids), .text(customerID)])
        for row in allocationRows.all {
            guard let index = position[row.requiredString("origin_id")] else { continue }
            let currency = items[index].amount.currency
            items[index].allocations.append(.init(invoiceID: row.requiredString("invoice_id"), invoiceNumber: row.requiredString("number"),
                                                  applied: Money(minorUnits: row.requiredInt64("applied"), currency: currency),
                                                  takenBack: Money(minorUnits: row.requiredInt64("taken_back"), currency: currency)))
        }
        let takeBackRows = try db.query("""
            SELECT t.takeback_id, t.payment_id, t.kind, t.amount_minor, t.reason,
                   (extract(epoch FROM COALESCE(c.known_at, t.created_at)) * 1000000)::bigint AS booked_micros
            FROM payment_takebacks t LEFT JOIN journal_commits c ON c.xact_id = t.xact_id
            WHERE t.payment_id = ANY($1::text[]) AND (t.xact_id IS NULL OR c.seq IS NOT NULL) AND COALESCE(c.seq, 0) <= $2::bigint
            ORDER BY COALESCE(c.seq, 0), t.created_at, t.takeback_id
            """, [.text(ids), .int(horizonSequence)])
        for row in takeBackRows.all {
            guard let index = position[row.requiredString("payment_id")] else { continue }
            items[index].takeBacks.append(.init(id: row.requiredString("takeback_id"), kind: row.requiredString("kind"),
                                                amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: items[index].amount.currency),
                                                reason: row.string("reason"), bookedAt: Instant(microsecondsSinceEpoch: row.requiredInt64("booked_micros"))))
        }
        let creditRows = try db.query("""
            SELECT origin_id, sum(remaining_minor)::bigint AS remaining FROM credit_lots
            WHERE origin_kind = 'payment' AND origin_id = ANY($1::text[]) AND customer_id = $2 GROUP BY origin_id
            """, [.text(ids), .text(customerID)])
        for row in creditRows.all {
            guard let index = position[row.requiredString("origin_id")] else { continue }
            items[index].unapplied = Money(minorUnits: row.requiredInt64("remaining"), currency: items[index].amount.currency)
        }
        return PaymentHistoryPage(items: items, hasMore: rows.count > limit)
    }

    /// The secret that signs history cursors when the configuration gives none (migration 0006).
    public func storedCursorSecret() throws(PostgresError) -> String {
        try db.query("SELECT secret FROM cursor_secret").first?.requiredString("secret") ?? ""
    }
}
