import ARDomain
import PostgresClient

/// One customer's dunning facts as stored, for a pass (docs/dunning.md). The policy is chosen by
/// the caller from `policyName` (policies are configuration, not data).
public struct DunningCustomerRecord: Sendable {
    public let customerID: String
    public let name: String
    public let policyName: String?
    /// `time_zone` as the customer master data sent it (nil when absent).
    public let timeZone: String?
    /// The IANA zone used: the known spelling of `timeZone`, or UTC when absent or unknown.
    public let zone: String
    /// The customer's date at the pass instant in `zone`.
    public let localDate: BusinessDate
    public var invoices: [DunningInvoice] = []
    public var paymentsInFlight: [PaymentInFlight] = []
    public var holds: [CustomerHold] = []
    public var remindedToday: Set<DunningSlot> = []
    public var recordedWaits: Set<RecordedWait> = []

    /// True when the customer named a time zone PostgreSQL does not know (UTC is used instead).
    public var zoneIsFallback: Bool { timeZone != nil && zone == "UTC" && timeZone?.lowercased() != "utc" }
}

/// A `dunning_waits` row (without its `since`), as a pass would write it.
public struct RecordedWait: Hashable, Sendable {
    public let invoiceID: String
    public let reason: String
    public let reference: String
    public let stepOffset: Int
    public let level: Int
    public let detail: String

    public init(invoiceID: String, reason: String, reference: String, stepOffset: Int, level: Int, detail: String) {
        self.invoiceID = invoiceID
        self.reason = reason
        self.reference = reference
        self.stepOffset = stepOffset
        self.level = level
        self.detail = detail
    }
}

/// A due retry claimed by a pass (state `scheduled`, not_before <= now), locked until commit.
public struct DueRetry: Sendable {
    public let paymentID: String
    public let attempt: Int
    public let customerID: String
    public let notBefore: Instant
    /// Statuses of the invoices the failed payment named (those known).
    public let invoiceStatuses: [InvoiceStatus]
}

/// A stored retry, for `dunning explain`.
public struct RetryRecord: Sendable {
    public let paymentID: String
    public let attempt: Int
    public let notBefore: Instant
    public let state: String
    public let stateReason: String?
    public let invoiceIDs: [String]
}

/// A step sent, for `dunning explain` and summaries.
public struct SentStepRecord: Sendable {
    public let invoiceID: String
    public let stepOffset: Int
    public let level: Int
    public let localDate: BusinessDate
    public let reminderID: String
    public let eventType: String
}

extension Store {
    // MARK: time zones

    /// Re-copies PostgreSQL's time zone names (new tz data after an upgrade); idempotent.
    public func refreshTimeZoneNames() throws(PostgresError) {
        try db.query("""
            INSERT INTO time_zone_names (lower_name, name)
            SELECT DISTINCT ON (lower(name)) lower(name), name FROM pg_timezone_names ORDER BY lower(name), name
            ON CONFLICT (lower_name) DO UPDATE SET name = EXCLUDED.name
            """)
    }

    /// The IANA spelling of `name` if PostgreSQL knows it (case-insensitive), else nil.
    public func knownTimeZone(_ name: String) throws(PostgresError) -> String? {
        try db.query(Store.timeZoneByName, [.text(name)]).first?.string("name")
    }

    static let timeZoneByName = "SELECT name FROM time_zone_names WHERE lower_name = lower($1)"

    /// The customer's date now (the database clock, shared by all instances) in its time zone.
    public func customerLocalDate(customerID: String) throws(PostgresError) -> BusinessDate {
        let text = try db.query("""
            SELECT (now() AT TIME ZONE COALESCE(z.name, 'UTC'))::date::text AS today
            FROM (SELECT 1) AS one LEFT JOIN customers c ON c.customer_id = $1
            LEFT JOIN time_zone_names z ON z.lower_name = lower(c.time_zone)
            """, [.text(customerID)]).first?.requiredString("today") ?? ""
        guard let date = BusinessDate(text) else { preconditionFailure("database date \(text) unreadable") }
        return date
    }

    // MARK: loading a pass's facts

    /// Customers a pass must decide about as of `now`: those with an open invoice for which some
    /// step offset of `offsets` (every offset of every policy) is due in the customer's local date
    /// and above every step sent for it, and those with recorded waits (to keep or clear). A
    /// superset of what the machine acts on, so a quiet pass costs one query.
    public func dunningCustomerIDs(now: Instant, offsets: [Int]) throws(PostgresError) -> [String] {
        try db.query("""
            WITH local AS (
                SELECT c.customer_id, ($1::timestamptz AT TIME ZONE COALESCE(z.name, 'UTC'))::date AS today
                FROM customers c LEFT JOIN time_zone_names z ON z.lower_name = lower(c.time_zone))
            SELECT i.customer_id FROM invoices i JOIN local USING (customer_id)
            CROSS JOIN LATERAL (SELECT max(o) AS due FROM unnest($2::int[]) AS o WHERE i.due_date + o <= local.today) AS step
            CROSS JOIN LATERAL (SELECT max(s.step_offset) AS top FROM dunning_steps_sent s WHERE s.invoice_id = i.invoice_id) AS sent
            WHERE i.status IN ('open', 'partially_paid') AND i.balance_minor > 0
              AND step.due IS NOT NULL AND (sent.top IS NULL OR step.due > sent.top)
            UNION SELECT customer_id FROM dunning_waits
            ORDER BY 1
            """, [.text(now.description), .text(Store.intArray(offsets.map(Int64.init)))]).all.map { $0.requiredString("customer_id") }
    }

    /// Everything a pass needs about `customerIDs` as of `now`, in a fixed number of queries.
    public func dunningFacts(customerIDs: [String], now: Instant) throws(PostgresError) -> [DunningCustomerRecord] {
        guard !customerIDs.isEmpty else { return [] }
        let ids = Store.textArray(customerIDs)
        var records: [String: DunningCustomerRecord] = [:]
        var order: [String] = []
        for row in try db.query("""
            SELECT c.customer_id, c.name, c.dunning_policy, c.time_zone, COALESCE(z.name, 'UTC') AS zone,
                   ($2::timestamptz AT TIME ZONE COALESCE(z.name, 'UTC'))::date::text AS local_date
            FROM customers c LEFT JOIN time_zone_names z ON z.lower_name = lower(c.time_zone)
            WHERE c.customer_id = ANY($1::text[]) ORDER BY c.customer_id
            """, [.text(ids), .text(now.description)]).all {
            guard let localDate = BusinessDate(row.requiredString("local_date")) else { preconditionFailure("local date unreadable") }
            let id = row.requiredString("customer_id")
            order.append(id)
            records[id] = DunningCustomerRecord(customerID: id, name: row.requiredString("name"), policyName: row.string("dunning_policy"),
                                                timeZone: row.string("time_zone"), zone: row.requiredString("zone"), localDate: localDate)
        }

        var invoiceIndex: [String: (customer: String, index: Int)] = [:]
        for row in try db.query("""
            \(Store.invoiceColumns) FROM invoices
            WHERE customer_id = ANY($1::text[]) AND status IN ('open', 'partially_paid')
            ORDER BY customer_id, due_date, invoice_id
            """, [.text(ids)]).all {
            let invoice = Store.invoice(from: row)
            guard records[invoice.customerID] != nil else { continue }
            invoiceIndex[invoice.id] = (invoice.customerID, records[invoice.customerID]!.invoices.count)
            records[invoice.customerID]!.invoices.append(DunningInvoice(id: invoice.id, number: invoice.number, balance: invoice.balance,
                                                                       status: invoice.status, dueDate: invoice.dueDate))
        }
        func withInvoice(_ invoiceID: String, _ change: (inout DunningInvoice) -> Void) {
            guard let (customer, index) = invoiceIndex[invoiceID] else { return }
            change(&records[customer]!.invoices[index])
        }
        for row in try db.query("SELECT invoice_id, step_offset FROM dunning_steps_sent WHERE customer_id = ANY($1::text[])", [.text(ids)]).all {
            let offset = Int(row.requiredInt64("step_offset"))
            withInvoice(row.requiredString("invoice_id")) { $0.sentStepOffsets.insert(offset) }
        }
        for row in try db.query("SELECT invoice_id, dispute_id FROM disputes WHERE customer_id = ANY($1::text[]) AND state = 'open'", [.text(ids)]).all {
            let dispute = row.requiredString("dispute_id")
            withInvoice(row.requiredString("invoice_id")) { $0.openDisputeIDs.append(dispute) }
        }
        for row in try db.query("""
            SELECT p.promised_date::text AS promised_date, i.invoice_id
            FROM promises_to_pay p CROSS JOIN LATERAL unnest(p.invoice_ids) AS i(invoice_id)
            WHERE p.customer_id = ANY($1::text[])
            """, [.text(ids)]).all {
            guard let promised = BusinessDate(row.requiredString("promised_date")) else { continue }
            withInvoice(row.requiredString("invoice_id")) { $0.promisedDates.append(promised) }
        }
        for (customerID, payment) in try paymentsInFlight(customerIDs: ids) {
            records[customerID]?.paymentsInFlight.append(payment)
        }
        for (customerID, holds) in try bankExceptionHolds(customerIDs: customerIDs) {
            records[customerID]?.holds += holds
        }
        let dates = order.compactMap { records[$0]?.localDate.description }
        for row in try db.query("""
            SELECT r.customer_id, r.step_offset, r.currency FROM dunning_reminders r
            JOIN unnest($1::text[], $2::date[]) AS today(customer_id, local_date)
              ON r.customer_id = today.customer_id AND r.local_date = today.local_date
            """, [.text(Store.textArray(order)), .text(Store.textArray(dates))]).all {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            records[row.requiredString("customer_id")]?.remindedToday.insert(
                DunningSlot(stepOffsetDays: Int(row.requiredInt64("step_offset")), currency: currency))
        }
        for row in try db.query("""
            SELECT customer_id, invoice_id, reason, reference, step_offset, level, detail FROM dunning_waits
            WHERE customer_id = ANY($1::text[])
            """, [.text(ids)]).all {
            records[row.requiredString("customer_id")]?.recordedWaits.insert(RecordedWait(
                invoiceID: row.requiredString("invoice_id"), reason: row.requiredString("reason"), reference: row.requiredString("reference"),
                stepOffset: Int(row.requiredInt64("step_offset")), level: Int(row.requiredInt64("level")), detail: row.requiredString("detail")))
        }
        return order.compactMap { records[$0] }
    }

    /// Pending payments and live retries (scheduled, or requested and unanswered), by customer.
    func paymentsInFlight(customerIDs ids: String) throws(PostgresError) -> [(String, PaymentInFlight)] {
        var result: [(String, PaymentInFlight)] = []
        let pending = try db.query("""
            SELECT p.customer_id, p.payment_id, p.currency, i.invoice_id
            FROM pending_payments p LEFT JOIN LATERAL unnest(p.invoice_ids) AS i(invoice_id) ON true
            WHERE p.customer_id = ANY($1::text[]) AND p.state = 'pending' ORDER BY p.payment_id
            """, [.text(ids)])
        for (row, invoiceIDs) in Store.grouped(pending, by: ["payment_id"]) {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            result.append((row.requiredString("customer_id"), PaymentInFlight(
                paymentID: row.requiredString("payment_id"), kind: .pending, currency: currency, invoiceIDs: invoiceIDs)))
        }
        let retries = try db.query("""
            SELECT r.customer_id, r.payment_id, r.attempt, r.currency, \(Store.instantText("r.not_before")) AS not_before, r.state, i.invoice_id
            FROM payment_retries r LEFT JOIN LATERAL unnest(r.invoice_ids) AS i(invoice_id) ON true
            WHERE r.customer_id = ANY($1::text[]) AND r.state IN ('scheduled', 'requested') ORDER BY r.payment_id, r.attempt
            """, [.text(ids)])
        for (row, invoiceIDs) in Store.grouped(retries, by: ["payment_id", "attempt"]) {
            guard let currency = Currency(code: row.requiredString("currency")),
                  let notBefore = Instant(rfc3339: row.requiredString("not_before")) else { continue }
            result.append((row.requiredString("customer_id"), PaymentInFlight(
                paymentID: row.requiredString("payment_id"),
                kind: .retry(attempt: Int(row.requiredInt64("attempt")), notBefore: notBefore, requested: row.requiredString("state") == "requested"),
                currency: currency, invoiceIDs: invoiceIDs)))
        }
        return result
    }

    /// Rows of `parent LEFT JOIN LATERAL unnest(invoice_ids) AS i(invoice_id)`, ordered by `keys`,
    /// folded back to one row per parent with its invoice ids (none when the array was empty).
    static func grouped(_ rows: PostgresRows, by keys: [String]) -> [(PostgresRow, [String])] {
        var result: [(PostgresRow, [String])] = []
        var lastKey: [String?] = []
        for row in rows.all {
            let key = keys.map { row.string($0) }
            if key != lastKey || result.isEmpty {
                result.append((row, []))
                lastKey = key
            }
            if let invoice = row.string("invoice_id") { result[result.count - 1].1.append(invoice) }
        }
        return result
    }

    // MARK: writing a pass's actions (inside the transaction that holds the customer lock)

    /// Claims a reminder and the steps of its invoices, false when the reminder exists already
    /// (another instance sent it). The caller writes its outbox row in the same transaction.
    public func claimReminder(_ reminder: DunningReminder, reminderID: String, eventType: String, policy: String,
                              passAt: Instant) throws(PostgresError) -> Bool {
        let inserted = try db.query("""
            INSERT INTO dunning_reminders (reminder_id, customer_id, step_offset, local_date, currency, part, event_type, level, channel,
                                           template, policy, total_minor, invoice_count, pass_at)
            VALUES ($1, $2, $3, $4::date, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::timestamptz)
            ON CONFLICT DO NOTHING RETURNING 1 AS inserted
            """, [.text(reminderID), .text(reminder.customerID), .int(reminder.step.offsetDays), .text(reminder.localDate.description),
                  .text(reminder.currency.code), .int(reminder.part), .text(eventType), .int(reminder.level), .text(reminder.step.channel),
                  .text(reminder.step.template), .text(policy), .int(reminder.total.minorUnits), .int(reminder.invoices.count),
                  .text(passAt.description)])
        guard !inserted.isEmpty else { return false }
        // No ON CONFLICT: a step sent twice for an invoice is a broken invariant and must fail
        // the transaction (nothing is published) rather than go out again.
        try db.query("""
            INSERT INTO dunning_steps_sent (invoice_id, step_offset, customer_id, level, reminder_id, balance_minor, local_date)
            SELECT line.invoice_id, $2, $3, $4, $5, line.balance, $6::date
            FROM unnest($1::text[], $7::bigint[]) AS line(invoice_id, balance)
            """, [.text(Store.textArray(reminder.invoices.map(\.invoiceID))), .int(reminder.step.offsetDays), .text(reminder.customerID),
                  .int(reminder.level), .text(reminderID), .text(reminder.localDate.description),
                  .text(Store.intArray(reminder.invoices.map(\.balance.minorUnits)))])
        return true
    }

    /// Makes the customer's `dunning_waits` rows equal `waits`; a row already there keeps its `since`.
    public func replaceWaits(customerID: String, _ waits: Set<RecordedWait>, now: Instant) throws(PostgresError) {
        let list = waits.sorted { ($0.invoiceID, $0.reason, $0.reference) < ($1.invoiceID, $1.reason, $1.reference) }
        let keys = Store.textArray(list.map { $0.invoiceID + "\u{1F}" + $0.reason + "\u{1F}" + $0.reference })
        try db.query("""
            DELETE FROM dunning_waits WHERE customer_id = $1
              AND NOT (invoice_id || chr(31) || reason || chr(31) || reference = ANY($2::text[]))
            """, [.text(customerID), .text(keys)])
        guard !list.isEmpty else { return }
        try db.query("""
            INSERT INTO dunning_waits (invoice_id, customer_id, reason, reference, step_offset, level, detail, since)
            SELECT w.invoice_id, $1, w.reason, w.reference, w.step_offset, w.level, w.detail, $8::timestamptz
            FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[])
                 AS w(invoice_id, reason, reference, step_offset, level, detail)
            ON CONFLICT (invoice_id, reason, reference) DO UPDATE
                SET step_offset = EXCLUDED.step_offset, level = EXCLUDED.level, detail = EXCLUDED.detail
            """, [.text(customerID), .text(Store.textArray(list.map(\.invoiceID))), .text(Store.textArray(list.map(\.reason))),
                  .text(Store.textArray(list.map(\.reference))), .text(Store.intArray(list.map { Int64($0.stepOffset) })),
                  .text(Store.intArray(list.map { Int64($0.level) })), .text(Store.textArray(list.map(\.detail))), .text(now.description)])
    }

    // MARK: retries

    /// Whether any scheduled retry is due at `now` (a cheap look before claiming).
    public func anyRetryDue(now: Instant) throws(PostgresError) -> Bool {
        !(try db.query("SELECT 1 AS due FROM payment_retries WHERE state = 'scheduled' AND not_before <= $1::timestamptz LIMIT 1",
                       [.text(now.description)])).isEmpty
    }

    /// Locks up to `limit` scheduled retries due at `now`; other instances skip them until this
    /// transaction ends. Mark each requested or cancelled before committing.
    public func claimDueRetries(now: Instant, limit: Int) throws(PostgresError) -> [DueRetry] {
        try db.query("""
            SELECT r.payment_id, r.attempt, r.customer_id, \(Store.instantText("r.not_before")) AS not_before,
                   COALESCE((SELECT string_agg(i.status, ',' ORDER BY i.invoice_id) FROM invoices i WHERE i.invoice_id = ANY(r.invoice_ids)), '') AS statuses
            FROM payment_retries r
            WHERE r.state = 'scheduled' AND r.not_before <= $1::timestamptz
            ORDER BY r.not_before, r.payment_id, r.attempt
            LIMIT $2 FOR UPDATE OF r SKIP LOCKED
            """, [.text(now.description), .int(limit)]).all.map { row in
            guard let notBefore = Instant(rfc3339: row.requiredString("not_before")) else { preconditionFailure("retry instant unreadable") }
            let statuses = row.requiredString("statuses").split(separator: ",").compactMap { InvoiceStatus(rawValue: String($0)) }
            return DueRetry(paymentID: row.requiredString("payment_id"), attempt: Int(row.requiredInt64("attempt")),
                            customerID: row.requiredString("customer_id"), notBefore: notBefore, invoiceStatuses: statuses)
        }
    }

    public func markRetryRequested(paymentID: String, attempt: Int, eventID: String, at now: Instant) throws(PostgresError) {
        try db.query("""
            UPDATE payment_retries SET state = 'requested', event_id = $3, requested_at = $4::timestamptz
            WHERE payment_id = $1 AND attempt = $2 AND state = 'scheduled'
            """, [.text(paymentID), .int(attempt), .text(eventID), .text(now.description)])
    }

    /// Schedules attempt `attempt`; an existing row for it is left alone (a re-sent failure).
    public func scheduleRetry(paymentID: String, attempt: Int, customerID: String, amount: Money, invoiceIDs: [String],
                              notBefore: Instant) throws(PostgresError) {
        try db.query("""
            INSERT INTO payment_retries (payment_id, attempt, customer_id, currency, amount_minor, invoice_ids, not_before, state)
            VALUES ($1, $2, $3, $4, $5, $6::text[], $7::timestamptz, 'scheduled') ON CONFLICT DO NOTHING
            """, [.text(paymentID), .int(attempt), .text(customerID), .text(amount.currency.code), .int(amount.minorUnits),
                  .text(Store.textArray(invoiceIDs)), .text(notBefore.description)])
    }

    /// Ends the payment's live retries (`superseded` by a new failure, `cancelled` by success or
    /// because nothing is left to collect). Sent without waiting in a transaction.
    public func endRetries(paymentID: String, state: String, reason: String, attempt: Int? = nil) throws(PostgresError) {
        try db.execute("""
            UPDATE payment_retries SET state = $2, state_reason = $3
            WHERE payment_id = $1 AND state IN ('scheduled', 'requested') AND ($4::int IS NULL OR attempt = $4::int)
            """, [.text(paymentID), .text(state), .text(reason), attempt.map { .int($0) } ?? .null])
    }

    /// The attempt of the payment's retry that was requested and is still waiting for its
    /// outcome, if any: the attempt a `payment.failed` without `attempt` reports on.
    public func requestedRetryAttempt(paymentID: String) throws(PostgresError) -> Int? {
        try db.query("SELECT max(attempt)::bigint AS attempt FROM payment_retries WHERE payment_id = $1 AND state = 'requested'",
                     [.text(paymentID)]).first?.int64("attempt").map { Int($0) }
    }

    /// The customer and attempts of the failures recorded for a payment, nil when none.
    public func recordedFailures(paymentID: String) throws(PostgresError) -> (customerID: String, attempts: Set<Int>)? {
        let rows = try db.query("SELECT customer_id, attempt FROM payment_failures WHERE payment_id = $1", [.text(paymentID)]).all
        guard let first = rows.first else { return nil }
        return (first.requiredString("customer_id"), Set(rows.map { Int($0.requiredInt64("attempt")) }))
    }

    public func retries(customerID: String) throws(PostgresError) -> [RetryRecord] {
        let rows = try db.query("""
            SELECT r.payment_id, r.attempt, \(Store.instantText("r.not_before")) AS not_before, r.state, r.state_reason, i.invoice_id
            FROM payment_retries r LEFT JOIN LATERAL unnest(r.invoice_ids) AS i(invoice_id) ON true
            WHERE r.customer_id = $1 ORDER BY r.payment_id, r.attempt
            """, [.text(customerID)])
        return Store.grouped(rows, by: ["payment_id", "attempt"]).map { row, invoiceIDs in
            RetryRecord(paymentID: row.requiredString("payment_id"), attempt: Int(row.requiredInt64("attempt")),
                        notBefore: Instant(rfc3339: row.requiredString("not_before")) ?? Instant(microsecondsSinceEpoch: 0),
                        state: row.requiredString("state"), stateReason: row.string("state_reason"), invoiceIDs: invoiceIDs)
        }
    }

    // MARK: disputes and promises

    /// The dispute's invoice and state, if recorded.
    public func dispute(_ disputeID: String) throws(PostgresError) -> (invoiceID: String, state: String, reason: String?)? {
        try db.query("SELECT invoice_id, state, reason FROM disputes WHERE dispute_id = $1", [.text(disputeID)]).first.map {
            ($0.requiredString("invoice_id"), $0.requiredString("state"), $0.string("reason"))
        }
    }

    public func openDispute(disputeID: String, invoiceID: String, customerID: String, reason: String, at time: Instant) throws(PostgresError) {
        try db.query("""
            INSERT INTO disputes (dispute_id, invoice_id, customer_id, state, reason, opened_at) VALUES ($1, $2, $3, 'open', $4, $5::timestamptz)
            """, [.text(disputeID), .text(invoiceID), .text(customerID), .text(reason), .text(time.description)])
    }

    /// Resolves a dispute, recording it resolved when its opening was never seen.
    public func resolveDispute(disputeID: String, invoiceID: String, customerID: String, outcome: String, at time: Instant) throws(PostgresError) {
        try db.query("""
            INSERT INTO disputes (dispute_id, invoice_id, customer_id, state, outcome, resolved_at) VALUES ($1, $2, $3, 'resolved', $4, $5::timestamptz)
            ON CONFLICT (dispute_id) DO UPDATE SET state = 'resolved', outcome = EXCLUDED.outcome, resolved_at = EXCLUDED.resolved_at
            """, [.text(disputeID), .text(invoiceID), .text(customerID), .text(outcome), .text(time.description)])
    }

    public func recordPromise(promiseID: String, customerID: String, invoiceIDs: [String], promisedDate: BusinessDate, amount: Money?,
                              at time: Instant) throws(PostgresError) {
        try db.query("""
            INSERT INTO promises_to_pay (promise_id, customer_id, invoice_ids, promised_date, currency, amount_minor, recorded_at)
            VALUES ($1, $2, $3::text[], $4::date, $5, $6, $7::timestamptz) ON CONFLICT DO NOTHING
            """, [.text(promiseID), .text(customerID), .text(Store.textArray(invoiceIDs)), .text(promisedDate.description),
                  .optional(amount?.currency.code), amount.map { .int($0.minorUnits) } ?? .null, .text(time.description)])
    }

    // MARK: reading for summaries and `dunning explain`

    /// Per invoice: the level of the highest step sent (0 when none), open disputes, latest promised date.
    public func dunningStatus(invoiceIDs: [String]) throws(PostgresError) -> [String: (level: Int, disputed: Bool, promisedDate: BusinessDate?)] {
        guard !invoiceIDs.isEmpty else { return [:] }
        var result: [String: (level: Int, disputed: Bool, promisedDate: BusinessDate?)] = [:]
        for row in try db.query("""
            SELECT i.invoice_id,
                   COALESCE((SELECT s.level FROM dunning_steps_sent s WHERE s.invoice_id = i.invoice_id ORDER BY s.step_offset DESC LIMIT 1), 0) AS level,
                   EXISTS (SELECT 1 FROM disputes d WHERE d.invoice_id = i.invoice_id AND d.state = 'open') AS disputed,
                   (SELECT max(p.promised_date)::text FROM promises_to_pay p
                     WHERE p.customer_id = i.customer_id AND i.invoice_id = ANY(p.invoice_ids)) AS promised_date
            FROM invoices i WHERE i.invoice_id = ANY($1::text[])
            """, [.text(Store.textArray(invoiceIDs))]).all {
            result[row.requiredString("invoice_id")] = (Int(row.requiredInt64("level")), row.bool("disputed") ?? false,
                                                        row.string("promised_date").flatMap(BusinessDate.init))
        }
        return result
    }

    public func sentSteps(customerID: String) throws(PostgresError) -> [SentStepRecord] {
        try db.query("""
            SELECT s.invoice_id, s.step_offset, s.level, s.local_date::text AS local_date, s.reminder_id, r.event_type
            FROM dunning_steps_sent s JOIN dunning_reminders r USING (reminder_id)
            WHERE s.customer_id = $1 ORDER BY s.invoice_id, s.step_offset
            """, [.text(customerID)]).all.map { row in
            SentStepRecord(invoiceID: row.requiredString("invoice_id"), stepOffset: Int(row.requiredInt64("step_offset")),
                           level: Int(row.requiredInt64("level")), localDate: BusinessDate(row.requiredString("local_date")) ?? BusinessDate(daysSinceEpoch: 0),
                           reminderID: row.requiredString("reminder_id"), eventType: row.requiredString("event_type"))
        }
    }

    /// The customer's recorded waits with the instant each was first seen.
    public func recordedWaits(customerID: String) throws(PostgresError) -> [(wait: RecordedWait, since: String)] {
        try db.query("""
            SELECT invoice_id, reason, reference, step_offset, level, detail, \(Store.instantText("since")) AS since
            FROM dunning_waits WHERE customer_id = $1 ORDER BY invoice_id, reason, reference
            """, [.text(customerID)]).all.map { row in
            (RecordedWait(invoiceID: row.requiredString("invoice_id"), reason: row.requiredString("reason"), reference: row.requiredString("reference"),
                          stepOffset: Int(row.requiredInt64("step_offset")), level: Int(row.requiredInt64("level")), detail: row.requiredString("detail")),
             row.requiredString("since"))
        }
    }

    public func customerPolicyName(_ customerID: String) throws(PostgresError) -> String? {
        try db.query("SELECT dunning_policy FROM customers WHERE customer_id = $1", [.text(customerID)]).first?.string("dunning_policy")
    }

    // MARK: helpers

    /// SQL rendering a timestamptz column as RFC 3339 UTC with microseconds (Instant's format).
    static func instantText(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    }
}
