import ARDomain
import PostgresClient

/// A message to publish, written to the outbox in the transaction that caused it.
public struct OutboxMessage: Sendable {
    public let eventID: String
    public let exchange: String
    public let routingKey: String
    public let type: String
    public let correlationID: String?
    public let headers: [String: String]
    public let body: [UInt8]

    public init(eventID: String, exchange: String, routingKey: String, type: String, correlationID: String? = nil,
                headers: [String: String] = [:], body: [UInt8]) {
        self.eventID = eventID
        self.exchange = exchange
        self.routingKey = routingKey
        self.type = type
        self.correlationID = correlationID
        self.headers = headers
        self.body = body
    }
}

/// A stored outbox row claimed for publishing.
public struct PendingOutboxMessage: Sendable {
    public let seq: Int64
    public let message: OutboxMessage
}

/// The customer master data of `customer.upserted`.
public struct CustomerRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var email: String?
    public var locale: String?
    public var timeZone: String?
    public var dunningPolicy: String?
    public var bankAccounts: [String]

    public init(id: String, name: String, email: String?, locale: String?, timeZone: String?, dunningPolicy: String?, bankAccounts: [String]) {
        self.id = id
        self.name = name
        self.email = email
        self.locale = locale
        self.timeZone = timeZone
        self.dunningPolicy = dunningPolicy
        self.bankAccounts = bankAccounts
    }
}

/// Invoice fields that the domain does not need but the books keep.
public struct InvoiceDocument: Sendable, Equatable {
    public var poNumber: String?
    public var documentURL: String?
    /// Canonical text of the issuing message's data, to tell an identical re-send from a conflict.
    public var fingerprint: String

    public init(poNumber: String?, documentURL: String?, fingerprint: String) {
        self.poNumber = poNumber
        self.documentURL = documentURL
        self.fingerprint = fingerprint
    }
}

/// An inbox claim: the message's key, taken once (`Store.claimInbox`).
public struct InboxClaim: Sendable, Equatable {
    public let source: String
    public let eventID: String
    public let type: String
    public let outcome: String

    public init(source: String, eventID: String, type: String, outcome: String) {
        self.source = source
        self.eventID = eventID
        self.type = type
        self.outcome = outcome
    }
}

/// What `Store.invoiceIntake` read.
public struct InvoiceIntake {
    /// False when the inbox already had the message (a re-delivery): nothing else applies.
    public let claimed: Bool
    public let customerExists: Bool
    public let existing: (invoice: Invoice, document: InvoiceDocument)?
    /// Messages are held waiting for this invoice (read under its lock; see `PaymentIntake.awaited`).
    public let awaited: Bool
    public let books: CustomerBooks
}

/// A message waiting for something not yet known (SPEC section 7).
public struct HeldMessage: Sendable {
    public let heldID: Int64
    public let source: String
    public let eventID: String
    public let type: String
    public let waitingKind: String
    public let waitingID: String
    public let userID: String?
    public let body: [UInt8]
    public let heldAt: String
    public let ageSeconds: Int64
}

/// All SQL of receivablesd lives here: rows in, domain values out, and back.
///
/// Not thread-safe: one Store per connection, one owner thread (see PostgresConnection).
public final class Store {
    public let db: PostgresConnection
    /// Rows kept back to be written in bulk (`WriteBehind`), and whether writes are kept back now.
    var writeBehind = WriteBehind()
    var writeBehindActive = false
    /// Counts flushes, so a savepoint can tell whether rows from before it were written inside it.
    var writeBehindFlushes = 0

    public init(_ db: PostgresConnection) { self.db = db }

    /// A transaction, or a savepoint inside one. Rows kept back (`WriteBehind`) follow it: those
    /// added inside a savepoint that rolls back are dropped with it, all are dropped when the
    /// transaction fails, and what is left is written before COMMIT.
    public func transaction<T>(checkingAtRelease: Bool = true, _ body: () throws -> T) throws -> T {
        let outermost = db.transactionDepth == 0
        let mark = writeBehind.mark
        let flushes = writeBehindFlushes
        do {
            return try db.transaction(checkingAtRelease: checkingAtRelease) { () throws -> T in
                let value = try body()
                if outermost { try flushWriteBehind() }
                return value
            }
        } catch {
            if outermost {
                discardWriteBehind()
            } else if writeBehindFlushes != flushes && !mark.isEmpty {
                // Rows of earlier savepoints were written inside this one, and its rollback undid
                // them too: the transaction must not commit without them.
                discardWriteBehind()
                throw PostgresError(sqlState: "XX000", message: "rows kept back for earlier messages were rolled back with a later message's savepoint: transaction not committed (\(error))",
                                    connectionLost: false)
            } else {
                writeBehind.discard(to: mark)
            }
            throw error
        }
    }

    // MARK: inbox

    /// Records (source, id) as seen; false when it was seen before (the message is a duplicate).
    /// A key whose message was rejected (e.g. expired while held) may be claimed again: a
    /// replay after the cause was fixed must apply.
    public func claimInbox(source: String, eventID: String, type: String, outcome: String) throws(PostgresError) -> Bool {
        let statement = Store.inboxClaimStatement(InboxClaim(source: source, eventID: eventID, type: type, outcome: outcome))
        return !(try db.query(statement.sql, statement.parameters)).isEmpty
    }

    /// The claim as a statement, for a handler that sends it with its first reads (one row when claimed).
    static func inboxClaimStatement(_ claim: InboxClaim) -> (sql: String, parameters: [PostgresValue]) {
        ("""
            INSERT INTO inbox (source, event_id, type, outcome) VALUES ($1, $2, $3, $4)
            ON CONFLICT (source, event_id) DO UPDATE SET outcome = EXCLUDED.outcome, received_at = now()
                WHERE inbox.outcome = 'rejected'
            RETURNING 1 AS inserted
            """, [.text(claim.source), .text(claim.eventID), .text(claim.type), .text(claim.outcome)])
    }

    public func setInboxOutcome(source: String, eventID: String, outcome: String) throws(PostgresError) {
        try db.execute("UPDATE inbox SET outcome = $3 WHERE source = $1 AND event_id = $2", [.text(source), .text(eventID), .text(outcome)])
    }

    // MARK: outbox

    public func enqueue(_ message: OutboxMessage) throws(PostgresError) {
        try enqueue([message])
    }

    /// Writes several messages in one statement, in order (sent without waiting in a transaction).
    public func enqueue(_ messages: [OutboxMessage]) throws(PostgresError) {
        guard !messages.isEmpty else { return }
        // Behind kept-back events, events queue up too: they are published in the order caused.
        if writeBehindActive || writeBehind.hasOutbox {
            writeBehind.add(outbox: messages)
            return
        }
        if messages.count == 1, let message = messages.first {
            try db.execute("""
                INSERT INTO outbox (event_id, exchange, routing_key, type, correlation_id, headers, body)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (event_id) DO NOTHING
                """, [.text(message.eventID), .text(message.exchange), .text(message.routingKey), .text(message.type),
                      .optional(message.correlationID), .text(Store.jsonObject(message.headers)), .bytes(message.body)])
            return
        }
        let statement = Store.enqueueStatement(messages)
        try db.execute(statement.sql, statement.parameters)
    }

    /// One INSERT of several outbox rows; WITH ORDINALITY keeps the rows in the order given, so
    /// seq follows emission order.
    static func enqueueStatement(_ messages: [OutboxMessage]) -> (sql: String, parameters: [PostgresValue]) {
        ("""
            INSERT INTO outbox (event_id, exchange, routing_key, type, correlation_id, headers, body)
            SELECT m.event_id, m.exchange, m.routing_key, m.type, NULLIF(m.correlation_id, ''), m.headers::jsonb, decode(m.body, 'hex')
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                 WITH ORDINALITY AS m(event_id, exchange, routing_key, type, correlation_id, headers, body, position)
            ORDER BY m.position
            ON CONFLICT (event_id) DO NOTHING
            """, [.text(Store.textArray(messages.map(\.eventID))), .text(Store.textArray(messages.map(\.exchange))),
                  .text(Store.textArray(messages.map(\.routingKey))), .text(Store.textArray(messages.map(\.type))),
                  .text(Store.textArray(messages.map { $0.correlationID ?? "" })),
                  .text(Store.textArray(messages.map { Store.jsonObject($0.headers) })),
                  .text(Store.textArray(messages.map { Store.hex($0.body) }))])
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func intArray(_ values: [Int64]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }

    /// Wakes publishers (delivered at commit, so they never see uncommitted rows).
    public func notifyOutbox() throws(PostgresError) {
        try db.execute("SELECT pg_notify('receivablesd_outbox', '')")
    }

    public func listenForOutbox() throws(PostgresError) {
        try db.simpleQuery("LISTEN receivablesd_outbox")
    }

    /// Makes this session's prepared statements reuse one generic plan. For a statement over
    /// `unnest($1)` or with `LIMIT $1` PostgreSQL's default keeps choosing a custom plan, so it
    /// plans on every call: the router's key look-up and the outbox claim spent 0.33 and 0.13 ms
    /// planning for 0.05 ms executing (pg_stat_statements.track_planning, bench e2e at 100/s).
    /// Their generic plans are the same index scans (nested loops over the array; the partial
    /// index of unpublished rows), and ANALYZE still replans them.
    public func useGenericPlans() throws(PostgresError) {
        try db.simpleQuery("SET plan_cache_mode = force_generic_plan")
    }

    /// Claims up to `limit` unpublished rows in order; other instances skip rows claimed here
    /// until this transaction ends. Call inside a transaction.
    public func claimOutbox(limit: Int) throws(PostgresError) -> [PendingOutboxMessage] {
        let rows = try db.query("""
            SELECT seq, event_id, exchange, routing_key, type, correlation_id, headers::text AS headers, body
            FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
            """, [.int(limit)])
        return rows.all.map { row in
            PendingOutboxMessage(seq: row.requiredInt64("seq"), message: OutboxMessage(
                eventID: row.requiredString("event_id"), exchange: row.requiredString("exchange"),
                routingKey: row.requiredString("routing_key"), type: row.requiredString("type"),
                correlationID: row.string("correlation_id"), headers: Store.parseFlatJSONObject(row.requiredString("headers")),
                body: row.bytes("body") ?? []))
        }
    }

    /// Sent without waiting in a transaction: the COMMIT right after it carries and checks it.
    public func markPublished(_ seqs: [Int64]) throws(PostgresError) {
        guard !seqs.isEmpty else { return }
        try db.execute("UPDATE outbox SET published_at = clock_timestamp() WHERE seq = ANY($1::bigint[])",
                     [.text("{" + seqs.map(String.init).joined(separator: ",") + "}")])
    }

    /// Unpublished rows and the age in seconds of the oldest (metrics, readiness, drain).
    public func outboxBacklog() throws(PostgresError) -> (count: Int64, oldestAgeSeconds: Double) {
        let row = try db.query("""
            SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::text AS age
            FROM outbox WHERE published_at IS NULL
            """).first
        let ageText = row?.string("age") ?? "0"
        // seconds as an integer part only: no floating point for anything but a metric
        let seconds = Double(ageText.split(separator: ".").first.map(String.init) ?? "0") ?? 0
        return (row?.int64("n") ?? 0, seconds)
    }

    // MARK: customers

    /// Creates or updates a customer (sent without waiting in a transaction).
    /// Lock the customer first (`customerIntake` or `lockKey("customer", …)`).
    public func upsertCustomer(_ customer: CustomerRecord) throws(PostgresError) {
        try db.execute("""
            INSERT INTO customers (customer_id, name, email, locale, time_zone, dunning_policy, bank_accounts)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
            ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, locale = EXCLUDED.locale,
                time_zone = EXCLUDED.time_zone, dunning_policy = EXCLUDED.dunning_policy,
                bank_accounts = EXCLUDED.bank_accounts, updated_at = now()
            """, [.text(customer.id), .text(customer.name), .optional(customer.email), .optional(customer.locale),
                  .optional(customer.timeZone), .optional(customer.dunningPolicy), .text(Store.jsonArray(customer.bankAccounts))])
    }

    /// Locks the customer row for the rest of the transaction: every change to one customer's
    /// books is serialised by this lock, across threads and daemon instances. False if unknown.
    /// What `customer.upserted` reads before it writes, in one round trip: the inbox claim (when
    /// asked), the customer's lock, whether messages wait for the customer (under that lock, which
    /// every holder takes first) and the canonical name of `timeZone` (nil when unknown or not given).
    public func customerIntake(claim: InboxClaim?, customerID: String, timeZone: String?) throws(PostgresError)
        -> (claimed: Bool, awaited: Bool, knownTimeZone: String?) {
        var batch = StatementBatch()
        let claimAt = claim.map { batch.add(Store.inboxClaimStatement($0)) }
        batch.add(Store.lockKeyStatement("customer", customerID))
        let awaitedAt = batch.add(Store.awaitedStatement("customer", customerID))
        let zoneAt = timeZone.map { batch.add((Store.timeZoneByName, [.text($0)])) }
        let results = try db.queries(batch.statements)
        return (Store.claimed(results, at: claimAt), Store.awaited(results[awaitedAt]), zoneAt.flatMap { results[$0].first?.string("name") })
    }

    public func lockCustomer(_ customerID: String) throws(PostgresError) -> Bool {
        // The advisory lock covers a customer that does not exist yet: "hold, waiting for this
        // customer" and "customer created, release what waits" never interleave (see lockKey).
        try lockKey("customer", customerID)
        return !(try db.query(Store.customerForUpdate, [.text(customerID)])).isEmpty
    }

    static let customerForUpdate = "SELECT 1 AS found FROM customers WHERE customer_id = $1 FOR UPDATE"

    /// A transaction-scoped lock on a business key (`customer`/`invoice`/`payment` + id), taken
    /// before checking whether the thing exists. A message found missing is held while the key
    /// is locked, and the message creating it releases the held ones while holding the same
    /// lock, so a message can never be held just after its release ran (lost until expiry).
    /// Sent without waiting in a transaction: it is granted before any later statement runs.
    public func lockKey(_ kind: String, _ id: String) throws(PostgresError) {
        let statement = Store.lockKeyStatement(kind, id)
        try db.execute(statement.sql, statement.parameters)
    }

    static func lockKeyStatement(_ kind: String, _ id: String) -> (sql: String, parameters: [PostgresValue]) {
        ("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [.text(kind + ":" + id)])
    }

    /// Several keys' locks in one statement, taken in the order given (unnest yields the array
    /// in order, and each row's lock is taken as the row is produced).
    static func lockKeysStatement(_ keys: [(kind: String, id: String)]) -> (sql: String, parameters: [PostgresValue]) {
        precondition(!keys.isEmpty, "no keys to lock")
        guard keys.count > 1 else { return lockKeyStatement(keys[0].kind, keys[0].id) }
        return ("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key",
                [.text(Store.textArray(keys.map { $0.kind + ":" + $0.id }))])
    }

    public func customerExists(_ customerID: String) throws(PostgresError) -> Bool {
        !(try db.query("SELECT 1 AS found FROM customers WHERE customer_id = $1", [.text(customerID)])).isEmpty
    }

    // MARK: invoices

    /// The invoice with its document fields, or nil.
    public func invoice(_ invoiceID: String) throws(PostgresError) -> (invoice: Invoice, document: InvoiceDocument)? {
        try db.query(Store.invoiceByID, [.text(invoiceID)]).first.map(Store.invoiceWithDocument(from:))
    }

    static let invoiceByID = "\(Store.invoiceColumns) FROM invoices WHERE invoice_id = $1"
    static let invoicesByID = "\(Store.invoiceColumns) FROM invoices WHERE invoice_id = ANY($1::text[])"

    static func invoiceWithDocument(from row: PostgresRow) -> (invoice: Invoice, document: InvoiceDocument) {
        (Store.invoice(from: row), InvoiceDocument(poNumber: row.string("po_number"), documentURL: row.string("document_url"),
                                                   fingerprint: row.requiredString("issued_fingerprint")))
    }

    static let invoiceColumns = """
        SELECT invoice_id, customer_id, number, currency, amount_minor, balance_minor, written_off_minor, status,
               issue_date::text AS issue_date, due_date::text AS due_date, payment_reference, po_number, document_url, issued_fingerprint,
               status_seq
        """

    static func invoice(from row: PostgresRow) -> Invoice {
        guard let currency = Currency(code: row.requiredString("currency")),
              let status = InvoiceStatus(rawValue: row.requiredString("status")),
              let issueDate = BusinessDate(row.requiredString("issue_date")),
              let dueDate = BusinessDate(row.requiredString("due_date")) else {
            preconditionFailure("invoice row \(row.values) does not map to the domain")
        }
        return Invoice(id: row.requiredString("invoice_id"), customerID: row.requiredString("customer_id"), number: row.requiredString("number"),
                       amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                       balance: Money(minorUnits: row.requiredInt64("balance_minor"), currency: currency),
                       status: status, issueDate: issueDate, dueDate: dueDate, paymentReference: row.string("payment_reference"),
                       writtenOffAmount: Money(minorUnits: row.requiredInt64("written_off_minor"), currency: currency),
                       statusSequence: row.requiredInt64("status_seq"))
    }

    // MARK: credit notes

    public func creditNoteFingerprint(_ creditNoteID: String) throws(PostgresError) -> String? {
        try db.query("SELECT fingerprint FROM credit_notes WHERE credit_note_id = $1", [.text(creditNoteID)]).first?.string("fingerprint")
    }

    public func insertCreditNote(id: String, customerID: String, amount: Money, invoiceID: String?, invoiceKnown: Bool, fingerprint: String) throws(PostgresError) {
        try db.execute("""
            INSERT INTO credit_notes (credit_note_id, customer_id, currency, amount_minor, invoice_id, fingerprint)
            VALUES ($1, $2, $3, $4, $5, $6)
            """, [.text(id), .text(customerID), .text(amount.currency.code), .int(amount.minorUnits),
                  invoiceKnown ? .optional(invoiceID) : .null, .text(fingerprint)])
    }

    // MARK: books

    /// Loads the slice of a customer's books a decision needs: the named invoices, the
    /// customer's credit lots with money left (all currencies: credit totals must be whole),
    /// and the standing applications on the named invoices. Lock the customer first.
    public func loadBooks(customerID: String, invoiceIDs: [String] = [], openInvoicesIn currency: Currency? = nil,
                          applicationsOf origin: MoneyOrigin? = nil) throws(PostgresError) -> CustomerBooks {
        var applications: [Application] = []
        var wanted = invoiceIDs
        if let origin {
            let rows = try db.query("""
                SELECT application_id, invoice_id, currency, origin_kind, origin_id, amount_minor, unwound_minor
                FROM applications WHERE origin_kind = $1 AND origin_id = $2 AND customer_id = $3 AND unwound_minor < amount_minor
                ORDER BY application_id
                """, [.text(origin.kind.rawValue), .text(origin.id), .text(customerID)])
            applications = rows.all.map(Store.application(from:))
            wanted += applications.map(\.invoiceID)
        }
        let reads = BooksReads(customerID: customerID, invoiceIDs: wanted, openInvoicesIn: currency, applications: applications)
        return reads.books(try db.queries(reads.statements)[...])
    }

    /// What `invoice.issued` reads before it decides, in one round trip: the inbox claim (when
    /// asked), the customer's lock and row, the invoice's lock, any invoice stored under its id,
    /// and the customer's books as `loadBooks(customerID:)` reads them (used only when the
    /// invoice is new). In the order the handler took them one by one before, so each read is
    /// under the locks before it; when the claim is refused or the customer is missing, the
    /// later statements were reads and transaction-scoped locks, nothing else.
    public func invoiceIntake(claim: InboxClaim?, invoiceID: String, customerID: String) throws(PostgresError) -> InvoiceIntake {
        var batch = StatementBatch()
        let claimAt = claim.map { batch.add(Store.inboxClaimStatement($0)) }
        batch.add(Store.lockKeyStatement("customer", customerID))
        let customerAt = batch.add((Store.customerForUpdate, [.text(customerID)]))
        batch.add(Store.lockKeyStatement("invoice", invoiceID))
        let existingAt = batch.add((Store.invoiceByID, [.text(invoiceID)]))
        let awaitedAt = batch.add(Store.awaitedStatement("invoice", invoiceID))
        let reads = BooksReads(customerID: customerID, invoiceIDs: [], openInvoicesIn: nil, applications: [])
        let booksAt = batch.add(reads.statements)
        let results = try db.queries(batch.statements)
        return InvoiceIntake(claimed: Store.claimed(results, at: claimAt), customerExists: !results[customerAt].isEmpty,
                             existing: results[existingAt].first.map(Store.invoiceWithDocument(from:)),
                             awaited: Store.awaited(results[awaitedAt]), books: reads.books(results[booksAt]))
    }

    /// Whether messages are held waiting for this key; meaningful under the key's lock (`lockKey`),
    /// which every message that holds for it takes before holding.
    static func awaitedStatement(_ kind: String, _ id: String) -> (sql: String, parameters: [PostgresValue]) {
        ("SELECT EXISTS (SELECT 1 FROM held_messages WHERE waiting_kind = $1 AND waiting_id = $2) AS awaited", [.text(kind), .text(id)])
    }

    static func awaited(_ rows: PostgresRows) -> Bool { rows.first?.bool("awaited") == true }

    /// Whether the inbox claim at `index` (nil: none was asked, the message is released from hold) took the key.
    static func claimed(_ results: [PostgresRows], at index: Int?) -> Bool { index.map { !results[$0].isEmpty } ?? true }

    /// Statements sent together (`PostgresConnection.queries`), each addition answering where its
    /// result will be, so a reader never counts positions.
    struct StatementBatch {
        private(set) var statements: [(sql: String, parameters: [PostgresValue])] = []

        @discardableResult
        mutating func add(_ statement: (sql: String, parameters: [PostgresValue])) -> Int {
            statements.append(statement)
            return statements.count - 1
        }

        /// Several statements; their results are the returned range.
        mutating func add(_ more: [(sql: String, parameters: [PostgresValue])]) -> Range<Int> {
            let start = statements.count
            statements += more
            return start..<statements.count
        }
    }

    /// The statements that read a slice of a customer's books, and the books made of their rows.
    /// The invoices, the credit lots and the standing applications on those invoices (void and
    /// adjust unwind them) are read in one round trip: the applications' invoices are named by
    /// the same conditions as the invoices read (by id, or open in `currency`).
    struct BooksReads {
        let customerID: String
        let statements: [(sql: String, parameters: [PostgresValue])]
        /// How many of `statements` read invoices (they come first).
        let invoiceStatements: Int
        /// Applications read before (those of a payment being taken back).
        let applications: [Application]

        /// Whether the standing applications on the invoices are read (a decision that unwinds
        /// applications needs them; one that only adds applications, like a payment, does not).
        let standingApplications: Bool

        init(customerID: String, invoiceIDs wanted: [String], openInvoicesIn currency: Currency?, applications: [Application],
             standingApplications: Bool = true) {
            self.customerID = customerID
            self.applications = applications
            self.standingApplications = standingApplications
            var statements: [(sql: String, parameters: [PostgresValue])] = []
            if !wanted.isEmpty {
                statements.append(("\(Store.invoiceColumns) FROM invoices WHERE invoice_id = ANY($1::text[]) AND customer_id = $2",
                                   [.text(Store.textArray(wanted)), .text(customerID)]))
            }
            if let currency {
                statements.append(("""
                    \(Store.invoiceColumns) FROM invoices
                    WHERE customer_id = $1 AND currency = $2 AND status IN ('open', 'partially_paid')
                    """, [.text(customerID), .text(currency.code)]))
            }
            invoiceStatements = statements.count
            statements.append(("""
                SELECT lot_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice
                FROM credit_lots WHERE customer_id = $1 AND remaining_minor > 0 ORDER BY lot_id
                """, [.text(customerID)]))
            if invoiceStatements > 0 && standingApplications {
                statements.append(("""
                    SELECT application_id, invoice_id, currency, origin_kind, origin_id, amount_minor, unwound_minor
                    FROM applications WHERE customer_id = $2 AND unwound_minor < amount_minor AND invoice_id IN (
                        SELECT invoice_id FROM invoices WHERE customer_id = $2 AND (invoice_id = ANY($1::text[])
                            OR ($3::text IS NOT NULL AND currency = $3::text AND status IN ('open', 'partially_paid'))))
                    ORDER BY application_id
                    """, [.text(Store.textArray(wanted)), .text(customerID), .optional(currency?.code)]))
            }
            self.statements = statements
        }

        /// `alsoInvoices`: the customer's invoices read by another statement of the same round trip.
        func books(_ results: ArraySlice<PostgresRows>, alsoInvoices: [Invoice] = []) -> CustomerBooks {
            precondition(results.count == statements.count, "books read \(results.count) results for \(statements.count) statements")
            let first = results.startIndex
            var invoices: [String: Invoice] = [:]
            for invoice in alsoInvoices where invoice.customerID == customerID { invoices[invoice.id] = invoice }
            for rows in results[first..<first + invoiceStatements] {
                for invoice in rows.all.map(Store.invoice(from:)) { invoices[invoice.id] = invoice }
            }
            let lots = results[first + invoiceStatements].all.map { row -> CreditLot in
                guard let currency = Currency(code: row.requiredString("currency")), let kind = OriginKind(rawValue: row.requiredString("origin_kind")) else {
                    preconditionFailure("credit lot row \(row.values) does not map to the domain")
                }
                return CreditLot(id: row.requiredInt64("lot_id"), origin: MoneyOrigin(kind, row.requiredString("origin_id")),
                                 original: Money(minorUnits: row.requiredInt64("original_minor"), currency: currency),
                                 remaining: Money(minorUnits: row.requiredInt64("remaining_minor"), currency: currency),
                                 reservedForInvoice: row.string("reserved_for_invoice"))
            }
            var applications = self.applications
            if invoiceStatements > 0 && standingApplications {
                // Exactly the applications on the invoices loaded (the filter only matters if another
                // transaction changed an invoice between the two statements, which the customer lock prevents).
                let standing = results[first + invoiceStatements + 1].all.map(Store.application(from:)).filter { invoices[$0.invoiceID] != nil }
                let known = Set(applications.compactMap(\.id))
                applications += standing.filter { !known.contains($0.id ?? -1) }
                applications.sort { ($0.id ?? 0) < ($1.id ?? 0) }
            }
            return CustomerBooks(customerID: customerID, invoices: Array(invoices.values), lots: lots, applications: applications)
        }
    }

    static func application(from row: PostgresRow) -> Application {
        guard let currency = Currency(code: row.requiredString("currency")), let kind = OriginKind(rawValue: row.requiredString("origin_kind")) else {
            preconditionFailure("application row \(row.values) does not map to the domain")
        }
        return Application(id: row.requiredInt64("application_id"), invoiceID: row.requiredString("invoice_id"),
                           origin: MoneyOrigin(kind, row.requiredString("origin_id")),
                           amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                           unwound: Money(minorUnits: row.requiredInt64("unwound_minor"), currency: currency))
    }

    /// Writes back what a decision changed and appends its journal entries. `cause` names the
    /// message that caused it, so journal entry ids are stable if the message is re-applied.
    /// Returns the journal entries with their ids, in posting order.
    @discardableResult
    public func saveBooks(_ books: CustomerBooks, newInvoiceDocuments: [String: InvoiceDocument] = [:], cause: [String]) throws(PostgresError) -> [(id: String, entry: JournalEntry)] {
        for invoice in books.changedInvoices {
            if let document = newInvoiceDocuments[invoice.id] {
                try db.execute("""
                    INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor, balance_minor, written_off_minor, status,
                                          issue_date, due_date, payment_reference, po_number, document_url, issued_fingerprint, status_seq)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::date, $10::date, $11, $12, $13, $14, $15)
                    """, [.text(invoice.id), .text(invoice.customerID), .text(invoice.number), .text(invoice.currency.code),
                          .int(invoice.amount.minorUnits), .int(invoice.balance.minorUnits), .int(invoice.writtenOffAmount.minorUnits),
                          .text(invoice.status.rawValue), .text(invoice.issueDate.description), .text(invoice.dueDate.description),
                          .optional(invoice.paymentReference), .optional(document.poNumber), .optional(document.documentURL), .text(document.fingerprint),
                          .int(invoice.statusSequence)])
            } else if writeBehindActive {
                writeBehind.add(invoice: invoice)
            } else {
                try db.execute("""
                    UPDATE invoices SET amount_minor = $2, balance_minor = $3, written_off_minor = $4, status = $5, status_seq = $6,
                                        updated_at = now()
                    WHERE invoice_id = $1
                    """, [.text(invoice.id), .int(invoice.amount.minorUnits), .int(invoice.balance.minorUnits),
                          .int(invoice.writtenOffAmount.minorUnits), .text(invoice.status.rawValue), .int(invoice.statusSequence)])
            }
        }
        for lot in books.changedLots {
            guard let id = lot.id else { continue }
            try db.execute("UPDATE credit_lots SET remaining_minor = $2, reserved_for_invoice = $3 WHERE lot_id = $1",
                         [.int(id), .int(lot.remaining.minorUnits), .optional(lot.reservedForInvoice)])
        }
        for lot in books.newLots {
            if writeBehindActive {
                writeBehind.add(lot: lot, customerID: books.customerID)
                continue
            }
            try db.execute("""
                INSERT INTO credit_lots (customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """, [.text(books.customerID), .text(lot.original.currency.code), .text(lot.origin.kind.rawValue), .text(lot.origin.id),
                      .int(lot.original.minorUnits), .int(lot.remaining.minorUnits), .optional(lot.reservedForInvoice)])
        }
        for application in books.changedApplications {
            guard let id = application.id else { continue }
            try db.execute("UPDATE applications SET unwound_minor = $2 WHERE application_id = $1", [.int(id), .int(application.unwound.minorUnits)])
        }
        for application in books.newApplications {
            if writeBehindActive {
                writeBehind.add(application: application, customerID: books.customerID)
                continue
            }
            try db.execute("""
                INSERT INTO applications (invoice_id, customer_id, currency, origin_kind, origin_id, amount_minor, unwound_minor)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """, [.text(application.invoiceID), .text(books.customerID), .text(application.amount.currency.code),
                      .text(application.origin.kind.rawValue), .text(application.origin.id), .int(application.amount.minorUnits),
                      .int(application.unwound.minorUnits)])
        }
        return try postJournal(books.journal, cause: cause)
    }

    /// Appends journal entries (each with its lines, one statement per entry). Ids are
    /// `cause` + the entry's position, so re-applying the same message gives the same ids.
    @discardableResult
    public func postJournal(_ entries: [JournalEntry], cause: [String]) throws(PostgresError) -> [(id: String, entry: JournalEntry)] {
        var posted: [(id: String, entry: JournalEntry)] = []
        for (index, entry) in entries.enumerated() {
            let id = StableID.make(cause + ["journal", String(index)])
            posted.append((id, entry))
            if writeBehindActive {
                writeBehind.add(journal: entry, id: id)
                continue
            }
            // The entry and all its lines in one statement (one round trip per entry).
            try db.execute("""
                WITH entry AS (
                    INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference) VALUES ($1, $2, $3, $4, $5)
                    RETURNING entry_id)
                INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
                SELECT entry.entry_id, line.no, line.account, $3, NULLIF(line.invoice, ''), line.debit, line.credit
                FROM entry, unnest($6::int[], $7::text[], $8::text[], $9::bigint[], $10::bigint[]) AS line(no, account, invoice, debit, credit)
                """, [.text(id), .text(entry.kind.rawValue), .text(entry.customerID), .text(entry.currency.code), .text(entry.reference),
                      .text(Store.intArray(entry.lines.indices.map { Int64($0 + 1) })),
                      .text(Store.textArray(entry.lines.map(\.account.rawValue))),
                      .text(Store.textArray(entry.lines.map { $0.invoiceID ?? "" })),  // identifiers are never empty
                      .text(Store.intArray(entry.lines.map(\.debit))), .text(Store.intArray(entry.lines.map(\.credit)))])
        }
        return posted
    }

    // MARK: held messages

    public func hold(source: String, eventID: String, type: String, waitingKind: String, waitingID: String, userID: String?, body: [UInt8]) throws(PostgresError) {
        try db.execute("""
            INSERT INTO held_messages (source, event_id, type, waiting_kind, waiting_id, user_id, body)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source, event_id) DO NOTHING
            """, [.text(source), .text(eventID), .text(type), .text(waitingKind), .text(waitingID), .optional(userID), .bytes(body)])
    }

    /// Removes and returns, oldest first, the messages waiting for `kind` `id`.
    public func releaseHeld(waitingKind: String, waitingID: String) throws(PostgresError) -> [HeldMessage] {
        let rows = try db.query("""
            DELETE FROM held_messages WHERE held_id IN (
                SELECT held_id FROM held_messages WHERE waiting_kind = $1 AND waiting_id = $2 ORDER BY held_id FOR UPDATE)
            RETURNING \(Store.heldColumns)
            """, [.text(waitingKind), .text(waitingID)])
        return rows.all.map(Store.held(from:)).sorted { $0.heldID < $1.heldID }
    }

    /// Removes and returns messages held longer than `seconds` (to be dead-lettered).
    public func expireHeld(olderThanSeconds seconds: Int64, limit: Int = 500) throws(PostgresError) -> [HeldMessage] {
        let rows = try db.query("""
            DELETE FROM held_messages WHERE held_id IN (
                SELECT held_id FROM held_messages WHERE held_at < now() - make_interval(secs => $1::double precision)
                ORDER BY held_id LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING \(Store.heldColumns)
            """, [.int(seconds), .int(limit)])
        return rows.all.map(Store.held(from:)).sorted { $0.heldID < $1.heldID }
    }

    public func listHeld(limit: Int = 1000) throws(PostgresError) -> [HeldMessage] {
        try db.query("SELECT \(Store.heldColumns) FROM held_messages ORDER BY held_id LIMIT $1", [.int(limit)]).all.map(Store.held(from:))
    }

    public func oldestHeldAgeSeconds() throws(PostgresError) -> Int64 {
        try db.query("SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(held_at))::bigint, 0) AS age FROM held_messages").first?.int64("age") ?? 0
    }

    static let heldColumns = """
        held_id, source, event_id, type, waiting_kind, waiting_id, user_id, body,
        to_char(held_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS held_at,
        EXTRACT(EPOCH FROM now() - held_at)::bigint AS age
        """

    static func held(from row: PostgresRow) -> HeldMessage {
        HeldMessage(heldID: row.requiredInt64("held_id"), source: row.requiredString("source"), eventID: row.requiredString("event_id"),
                    type: row.requiredString("type"), waitingKind: row.requiredString("waiting_kind"), waitingID: row.requiredString("waiting_id"),
                    userID: row.string("user_id"), body: row.bytes("body") ?? [], heldAt: row.requiredString("held_at"),
                    ageSeconds: row.requiredInt64("age"))
    }

    // MARK: dead letters

    public func recordDeadLetter(source: String?, eventID: String?, type: String?, routingKey: String, userID: String?,
                                 reason: String, detail: String, body: [UInt8], properties: [String: String]) throws(PostgresError) -> Int64 {
        let rows = try db.query("""
            INSERT INTO dead_letters (source, event_id, type, routing_key, user_id, reason, detail, body, properties)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING dead_letter_id
            """, [.optional(source), .optional(eventID), .optional(type), .text(routingKey), .optional(userID), .text(reason),
                  .text(detail), .bytes(body), .text(Store.jsonObject(properties))])
        return rows.first?.requiredInt64("dead_letter_id") ?? 0
    }

    // MARK: JSON text for jsonb parameters (flat string maps and arrays only)

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{0}":
                // jsonb cannot hold U+0000; it can arrive in AMQP properties a publisher sets.
                out += "\\ufffd"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func jsonObject(_ values: [String: String]) -> String {
        "{" + values.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }.joined(separator: ",") + "}"
    }

    static func jsonArray(_ values: [String]) -> String { "[" + values.map(jsonString).joined(separator: ",") + "]" }

    /// A PostgreSQL text[] literal with every element quoted and escaped.
    static func textArray(_ values: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// A PostgreSQL text[] literal in which nil is NULL (unquoted), every other element quoted.
    static func nullableTextArray(_ values: [String?]) -> String {
        guard values.contains(where: { $0 == nil }) else { return textArray(values.map { $0 ?? "" }) }
        let quoted = values.map { value in value.map { textArray([$0]).dropFirst().dropLast() }.map(String.init) ?? "NULL" }
        return "{" + quoted.joined(separator: ",") + "}"
    }

    /// Reads back the flat `{"k":"v"}` objects written by `jsonObject` (PostgreSQL's jsonb text form).
    static func parseFlatJSONObject(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var scalars = Array(text.unicodeScalars)[...]
        func skipSpace() { while let c = scalars.first, c == " " || c == "\n" || c == "\t" { scalars.removeFirst() } }
        func readString() -> String? {
            skipSpace()
            guard scalars.first == "\"" else { return nil }
            scalars.removeFirst()
            var out = String.UnicodeScalarView()
            while let c = scalars.first {
                scalars.removeFirst()
                if c == "\"" { return String(out) }
                if c == "\\", let escaped = scalars.first {
                    scalars.removeFirst()
                    switch escaped {
                    case "n": out.append("\n")
                    case "r": out.append("\r")
                    case "t": out.append("\t")
                    case "u":
                        let hex = String(String.UnicodeScalarView(scalars.prefix(4)))
                        scalars.removeFirst(min(4, scalars.count))
                        if let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) { out.append(scalar) }
                    default: out.append(escaped)
                    }
                } else {
                    out.append(c)
                }
            }
            return nil
        }
        skipSpace()
        guard scalars.first == "{" else { return result }
        scalars.removeFirst()
        while true {
            skipSpace()
            if scalars.first == "}" { break }
            guard let key = readString() else { break }
            skipSpace()
            guard scalars.first == ":" else { break }
            scalars.removeFirst()
            guard let value = readString() else { break }
            result[key] = value
            skipSpace()
            if scalars.first == "," { scalars.removeFirst() }
        }
        return result
    }
}

extension String {
    func replacingOccurrencesOf(_ target: String, _ replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

extension Store {
    /// An invoice was issued to `customerID`: allocations held for that invoice id by other
    /// customers' payments become their plain credit (SPEC "Money rules").
    public func releaseForeignReservations(invoiceID: String, customerID: String) throws(PostgresError) {
        try db.execute("UPDATE credit_lots SET reserved_for_invoice = NULL WHERE reserved_for_invoice = $1 AND customer_id <> $2",
                     [.text(invoiceID), .text(customerID)])
    }

    /// The customer's balance in one currency: the sum of open invoices' balances.
    public func customerBalance(customerID: String, currency: String) throws(PostgresError) -> Int64 {
        try db.query("""
            SELECT COALESCE(sum(balance_minor), 0)::bigint AS balance FROM invoices
            WHERE customer_id = $1 AND currency = $2 AND status IN ('open', 'partially_paid')
            """, [.text(customerID), .text(currency)]).first?.int64("balance") ?? 0
    }
}

extension Store {
    public func heldCount() throws(PostgresError) -> Int64 {
        try db.query("SELECT count(*) AS n FROM held_messages").first?.int64("n") ?? 0
    }
}

extension Store {
    /// Whether a customer, invoice or payment exists (what a held message waits for).
    public func exists(kind: String, id: String) throws(PostgresError) -> Bool {
        let sql: String
        switch kind {
        case "customer": sql = "SELECT 1 AS found FROM customers WHERE customer_id = $1"
        case "invoice": sql = "SELECT 1 AS found FROM invoices WHERE invoice_id = $1"
        case "payment": sql = "SELECT 1 AS found FROM payments WHERE payment_id = $1"
        default: return false
        }
        return !(try db.query(sql, [.text(id)])).isEmpty
    }
}
