import PostgresClient

/// One broken invariant found by `receivablesd verify`.
public struct Violation: Sendable, CustomStringConvertible {
    public let check: String
    public let detail: String
    public var description: String { "\(check): \(detail)" }
}

extension Store {
    /// Recomputes balances and credit from the journal and checks every invariant of SPEC
    /// sections 5 and 7. Read-only; runs in one REPEATABLE READ snapshot so concurrent
    /// processing cannot produce false alarms.
    public func verify(limitPerCheck: Int = 50) throws(PostgresError) -> [Violation] {
        var violations: [Violation] = []
        try db.simpleQuery("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        // Read-only snapshot: ending it cannot lose anything, and a lost connection ends it anyway.
        defer { _ = try? db.simpleQuery("COMMIT") }
        func check(_ name: String, _ sql: String, _ describe: (PostgresRow) -> String) throws(PostgresError) {
            for row in try db.query(sql + " LIMIT \(limitPerCheck)").all { violations.append(Violation(check: name, detail: describe(row))) }
        }
        try check("journal entry balances", """
            SELECT e.entry_id, sum(l.debit_minor) AS debits, sum(l.credit_minor) AS credits
            FROM journal_entries e JOIN journal_lines l USING (entry_id)
            GROUP BY e.entry_id HAVING sum(l.debit_minor) <> sum(l.credit_minor)
            """) { "entry \($0.requiredString("entry_id")) debits \($0.requiredString("debits")) credits \($0.requiredString("credits"))" }
        try check("journal entry has lines", """
            SELECT e.entry_id FROM journal_entries e LEFT JOIN journal_lines l USING (entry_id) WHERE l.entry_id IS NULL
            """) { "entry \($0.requiredString("entry_id")) has no lines" }
        try check("journal entry has its commit stamp", """
            SELECT e.entry_id FROM journal_entries e LEFT JOIN journal_commits c ON c.xact_id = e.xact_id
            WHERE e.xact_id IS NOT NULL AND c.xact_id IS NULL
            """) { "entry \($0.requiredString("entry_id")) is committed but was never stamped (statements cannot place it; migration 0006)" }
        try check("invoice balance equals journal", """
            SELECT i.invoice_id, i.balance_minor, COALESCE(j.net, 0) AS journal
            FROM invoices i LEFT JOIN (
                SELECT invoice_id, sum(debit_minor - credit_minor) AS net FROM journal_lines
                WHERE account = 'receivable' AND invoice_id IS NOT NULL GROUP BY invoice_id) j USING (invoice_id)
            WHERE i.balance_minor <> COALESCE(j.net, 0)
            """) { "invoice \($0.requiredString("invoice_id")) stored balance \($0.requiredString("balance_minor")) journal \($0.requiredString("journal"))" }
        try check("invoice balance within 0...amount", """
            SELECT invoice_id, balance_minor, amount_minor FROM invoices WHERE balance_minor < 0 OR balance_minor > amount_minor
            """) { "invoice \($0.requiredString("invoice_id")) balance \($0.requiredString("balance_minor")) amount \($0.requiredString("amount_minor"))" }
        try check("invoice status follows balance", """
            SELECT invoice_id, status, balance_minor, amount_minor FROM invoices
            WHERE status NOT IN ('voided', 'written_off') AND status <> CASE
                WHEN balance_minor = 0 THEN 'paid' WHEN balance_minor = amount_minor THEN 'open' ELSE 'partially_paid' END
            """) { "invoice \($0.requiredString("invoice_id")) is \($0.requiredString("status")) with balance \($0.requiredString("balance_minor")) of \($0.requiredString("amount_minor"))" }
        try check("final invoice has zero balance", """
            SELECT invoice_id, status, balance_minor FROM invoices WHERE status IN ('voided', 'written_off') AND balance_minor <> 0
            """) { "invoice \($0.requiredString("invoice_id")) is \($0.requiredString("status")) with balance \($0.requiredString("balance_minor"))" }
        try check("invoice applications match its balance", """
            SELECT i.invoice_id, i.amount_minor - i.balance_minor - i.written_off_minor AS applied, COALESCE(a.standing, 0) AS standing
            FROM invoices i LEFT JOIN (
                SELECT invoice_id, sum(amount_minor - unwound_minor) AS standing FROM applications GROUP BY invoice_id) a USING (invoice_id)
            WHERE i.status <> 'voided' AND i.amount_minor - i.balance_minor - i.written_off_minor <> COALESCE(a.standing, 0)
            """) { "invoice \($0.requiredString("invoice_id")) applied \($0.requiredString("applied")) but applications total \($0.requiredString("standing"))" }
        try check("customer credit equals journal", """
            WITH lots AS (SELECT customer_id, currency, sum(remaining_minor) AS credit FROM credit_lots GROUP BY customer_id, currency),
                 journal AS (SELECT l.customer_id, e.currency, sum(l.credit_minor - l.debit_minor) AS credit
                             FROM journal_lines l JOIN journal_entries e USING (entry_id)
                             WHERE l.account = 'unapplied_credit' GROUP BY l.customer_id, e.currency)
            SELECT COALESCE(lots.customer_id, journal.customer_id) AS customer_id, COALESCE(lots.currency, journal.currency) AS currency,
                   COALESCE(lots.credit, 0) AS stored, COALESCE(journal.credit, 0) AS journal
            FROM lots FULL JOIN journal ON lots.customer_id = journal.customer_id AND lots.currency = journal.currency
            WHERE COALESCE(lots.credit, 0) <> COALESCE(journal.credit, 0)
            """) { "customer \($0.requiredString("customer_id")) \($0.requiredString("currency")) credit \($0.requiredString("stored")) journal \($0.requiredString("journal"))" }
        try check("payment fully accounted for", """
            SELECT p.payment_id, p.amount_minor,
                   COALESCE(a.standing, 0) + COALESCE(c.credit, 0) + COALESCE(t.taken, 0) AS accounted
            FROM payments p
            LEFT JOIN (SELECT origin_id, sum(amount_minor - unwound_minor) AS standing FROM applications WHERE origin_kind = 'payment' GROUP BY origin_id) a
                   ON a.origin_id = p.payment_id
            LEFT JOIN (SELECT origin_id, sum(remaining_minor) AS credit FROM credit_lots WHERE origin_kind = 'payment' GROUP BY origin_id) c
                   ON c.origin_id = p.payment_id
            LEFT JOIN (SELECT payment_id, sum(amount_minor) AS taken FROM payment_takebacks GROUP BY payment_id) t ON t.payment_id = p.payment_id
            WHERE p.amount_minor <> COALESCE(a.standing, 0) + COALESCE(c.credit, 0) + COALESCE(t.taken, 0) + COALESCE((
                SELECT sum(i.written_off_minor) FROM invoices i WHERE false), 0)
            """) { "payment \($0.requiredString("payment_id")) of \($0.requiredString("amount_minor")) accounts for \($0.requiredString("accounted"))" }
        try check("allocation within payment", """
            SELECT p.payment_id, p.amount_minor, sum(a.amount_minor) AS applied
            FROM payments p JOIN applications a ON a.origin_kind = 'payment' AND a.origin_id = p.payment_id
            GROUP BY p.payment_id, p.amount_minor HAVING sum(a.amount_minor - a.unwound_minor) > p.amount_minor
            """) { "payment \($0.requiredString("payment_id")) of \($0.requiredString("amount_minor")) has \($0.requiredString("applied")) applied" }
        try check("refunds within payment", """
            SELECT p.payment_id, p.amount_minor, sum(t.amount_minor) AS taken FROM payments p JOIN payment_takebacks t USING (payment_id)
            GROUP BY p.payment_id, p.amount_minor HAVING sum(t.amount_minor) > p.amount_minor
            """) { "payment \($0.requiredString("payment_id")) of \($0.requiredString("amount_minor")) has \($0.requiredString("taken")) refunded or reversed" }
        try check("no negative credit", """
            SELECT lot_id, remaining_minor FROM credit_lots WHERE remaining_minor < 0 OR remaining_minor > original_minor
            """) { "credit lot \($0.requiredString("lot_id")) remaining \($0.requiredString("remaining_minor"))" }
        try check("held message was recorded in the inbox", """
            SELECT h.source, h.event_id FROM held_messages h LEFT JOIN inbox i ON i.source = h.source AND i.event_id = h.event_id
            WHERE i.event_id IS NULL OR i.outcome <> 'held'
            """) { "held message \($0.requiredString("source"))/\($0.requiredString("event_id")) has no matching inbox record" }
        try check("outbox event ids unique per fact", """
            SELECT event_id, count(*) AS n FROM outbox GROUP BY event_id HAVING count(*) > 1
            """) { "event \($0.requiredString("event_id")) written \($0.requiredString("n")) times" }
        try check("inbox says held only while the message is held", """
            SELECT i.source, i.event_id FROM inbox i
            LEFT JOIN held_messages h ON h.source = i.source AND h.event_id = i.event_id
            WHERE i.outcome = 'held' AND h.held_id IS NULL
            """) { "inbox \($0.requiredString("source"))/\($0.requiredString("event_id")) is marked held but nothing is held" }
        try check("every journal entry was published", """
            SELECT e.entry_id FROM journal_entries e
            LEFT JOIN (SELECT CASE WHEN o.type = 'ledger.entry_posted' AND NOT (o.headers ? 'x-rejection-reason')
                                   THEN convert_from(o.body, 'UTF8')::jsonb -> 'data' ->> 'entry_id' END AS entry_id
                       FROM outbox o) posted USING (entry_id)
            WHERE posted.entry_id IS NULL
            """) { "journal entry \($0.requiredString("entry_id")) has no ledger.entry_posted event in the outbox" }
        violations += try reconciliationViolations(limitPerCheck: limitPerCheck)
        return violations
    }
}
