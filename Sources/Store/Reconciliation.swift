import ARDomain
import PostgresClient

/// One row of `bank_entries`: a booking on one of our accounts and where its money went.
public struct BankEntryRecord: Sendable, Equatable {
    public var entryID: String
    public var identity: BankEntryIdentity
    public var isCredit: Bool
    public var amount: Money
    public var bookingDate: String?
    public var valueDate: String?
    public var debtorName: String?
    public var debtorAccount: String?
    public var endToEndID: String?
    public var remittanceInfo: String?
    public var structuredReference: String?
    public var transactionCode: String?
    public var reversal: Bool
    /// camt.053, camt.054, bai2, mt940 or connector (bank.credit.received).
    public var originFormat: String
    public var statementID: String?
    public var source: String
    public var eventID: String
    public var fingerprint: String
    /// `recorded` (debits) or a `BankCreditState`.
    public var state: String
    public var reason: String?
    public var rule: String?
    public var confidence: Int?
    public var customerID: String?
    public var payoutID: String?
    public var appliedMinor: Int64 = 0
    public var creditMinor: Int64 = 0
    public var feesMinor: Int64 = 0
    /// Set when read back.
    public var receivedAt: String?
    public var decidedAt: String?

    public init(entryID: String, identity: BankEntryIdentity, isCredit: Bool, amount: Money, bookingDate: String?, valueDate: String?,
                debtorName: String?, debtorAccount: String?, endToEndID: String?, remittanceInfo: String?, structuredReference: String?,
                transactionCode: String?, reversal: Bool, originFormat: String, statementID: String?, source: String, eventID: String,
                fingerprint: String, state: String) {
        self.entryID = entryID
        self.identity = identity
        self.isCredit = isCredit
        self.amount = amount
        self.bookingDate = bookingDate
        self.valueDate = valueDate
        self.debtorName = debtorName
        self.debtorAccount = debtorAccount
        self.endToEndID = endToEndID
        self.remittanceInfo = remittanceInfo
        self.structuredReference = structuredReference
        self.transactionCode = transactionCode
        self.reversal = reversal
        self.originFormat = originFormat
        self.statementID = statementID
        self.source = source
        self.eventID = eventID
        self.fingerprint = fingerprint
        self.state = state
    }

    /// The bank credit the rules look at.
    public var credit: BankCredit {
        BankCredit(entryID: entryID, amount: amount, debtorAccount: debtorAccount, debtorName: debtorName, remittanceInfo: remittanceInfo,
                   structuredReference: structuredReference, endToEndID: endToEndID)
    }

    /// Writes a decision's outcome into the row.
    public mutating func take(_ decision: ReconciliationDecision) {
        state = decision.state.rawValue
        reason = decision.reason?.rawValue
        rule = decision.rule?.rawValue
        confidence = decision.confidence
        customerID = decision.customerID
        payoutID = decision.payout?.payoutID
        appliedMinor = decision.applied.minorUnits
        creditMinor = decision.toCredit.minorUnits
        feesMinor = decision.fees.minorUnits
    }
}

/// A customer among a decision's candidates (`reconciliation_candidates`).
public struct CandidateRecord: Sendable, Equatable {
    public let customerID: String
    public let rank: Int
    public let score: Int
    public let rule: String
    public let invoiceIDs: [String]

    public init(customerID: String, rank: Int, score: Int, rule: String, invoiceIDs: [String]) {
        self.customerID = customerID
        self.rank = rank
        self.score = score
        self.rule = rule
        self.invoiceIDs = invoiceIDs
    }
}

/// One decision about one credit, with its explanation (JSON text) for `reconcile explain`.
public struct DecisionRecord: Sendable {
    public let entryID: String
    /// automatic | manual
    public let kind: String
    public let state: String
    public let reason: String?
    public let rule: String?
    public let confidence: Int?
    public let explanation: String
    public let source: String
    public let eventID: String
    public let candidates: [CandidateRecord]
    public var decidedAt: String?

    public init(entryID: String, kind: String, state: String, reason: String?, rule: String?, confidence: Int?, explanation: String,
                source: String, eventID: String, candidates: [CandidateRecord]) {
        self.entryID = entryID
        self.kind = kind
        self.state = state
        self.reason = reason
        self.rule = rule
        self.confidence = confidence
        self.explanation = explanation
        self.source = source
        self.eventID = eventID
        self.candidates = candidates
    }
}

/// What the rules need about a set of credits, loaded through indexes only.
public struct ReconciliationFactRows: Sendable {
    public var invoices: [InvoiceFact] = []
    /// The same invoices as the domain's `Invoice` (for booking with CustomerBooks).
    public var invoiceRecords: [String: Invoice] = [:]
    /// Account key → customers that registered it.
    public var accountOwners: [String: [String]] = [:]
    /// Customer → its dunning policy ("" when it has none), for the owners.
    public var dunningPolicies: [String: String] = [:]
    public var payouts: [PayoutFact] = []

    public init() {}

    /// Every customer these facts can touch (to lock before deciding).
    public var customers: Set<String> {
        Set(invoices.map(\.customerID)).union(accountOwners.values.joined())
    }
}

/// An open exception naming a customer (issue 10's dunning hold; issue 11's reports).
public struct ExceptionCandidate: Sendable, Equatable {
    public let entryID: String
    public let customerID: String
    public let reason: String
    public let rank: Int
    public let score: Int
    public let rule: String
    public let invoiceIDs: [String]
    public let amount: Money
    public let receivedAt: String
    public let ageSeconds: Int64
}

/// A credit waiting in `exception` (oldest first).
public struct OpenException: Sendable, Equatable {
    public let entryID: String
    public let accountKey: String
    public let amount: Money
    public let bookingDate: String?
    public let reason: String
    public let receivedAt: String
    public let ageSeconds: Int64
    /// The candidate customers, best first.
    public let candidateCustomers: [String]
}

extension Store {
    // MARK: identity and locks

    /// Serialises all work on these bank accounts across threads and instances (taken first,
    /// in sorted order, before any customer lock): two files repeating one booking are never
    /// checked for it at the same time.
    public func lockBankAccounts(_ accountKeys: [String]) throws(PostgresError) {
        for key in Set(accountKeys).sorted() { try lockKey("bank_account", key) }
    }

    /// The stored entries with these identities: entry id and fingerprint.
    public func knownBankEntries(_ identities: [BankEntryIdentity]) throws(PostgresError) -> [BankEntryIdentity: (entryID: String, fingerprint: String)] {
        guard !identities.isEmpty else { return [:] }
        let rows = try db.query("""
            SELECT b.account_key, b.bank_reference, b.entry_id, b.fingerprint
            FROM unnest($1::text[], $2::text[]) AS k(account_key, bank_reference)
            JOIN bank_entries b ON b.account_key = k.account_key AND b.bank_reference = k.bank_reference
            """, [.text(Store.textArray(identities.map(\.account))), .text(Store.textArray(identities.map(\.reference)))])
        var found: [BankEntryIdentity: (entryID: String, fingerprint: String)] = [:]
        for row in rows.all {
            found[BankEntryIdentity(account: row.requiredString("account_key"), reference: row.requiredString("bank_reference"))] =
                (row.requiredString("entry_id"), row.requiredString("fingerprint"))
        }
        return found
    }

    /// Which of these entry ids are already used.
    public func takenEntryIDs(_ ids: [String]) throws(PostgresError) -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return Set(try db.query("SELECT entry_id FROM bank_entries WHERE entry_id = ANY($1::text[])", [.text(Store.textArray(ids))])
            .all.map { $0.requiredString("entry_id") })
    }

    /// Locks the rows of these customers in id order (bank credits touch several customers; a
    /// fixed order keeps two instances from deadlocking). Returns those that exist.
    @discardableResult
    public func lockCustomerRows(_ customerIDs: some Collection<String>) throws(PostgresError) -> Set<String> {
        guard !customerIDs.isEmpty else { return [] }
        let rows = try db.query("SELECT customer_id FROM customers WHERE customer_id = ANY($1::text[]) ORDER BY customer_id FOR UPDATE",
                                [.text(Store.textArray(Array(Set(customerIDs)).sorted()))])
        return Set(rows.all.map { $0.requiredString("customer_id") })
    }

    // MARK: facts

    /// Invoices whose number or payment reference has one of the keys, the registered owners of
    /// the accounts with their policies and open invoices, and the payouts named by a word or
    /// pending in an amount range: every look-up on an index (migration 0004). With `lockPayouts`
    /// the payouts are locked, in key order, for the rest of the transaction.
    public func reconciliationFacts(strictKeys: [String], looseKeys: [String], accountKeys: [String], payoutWords: [String],
                                    payoutRanges: [(currency: String, low: Int64, high: Int64)], lockPayouts: Bool) throws(PostgresError) -> ReconciliationFactRows {
        var facts = ReconciliationFactRows()
        var invoices: [String: InvoiceFact] = [:]
        if !strictKeys.isEmpty || !looseKeys.isEmpty {
            let rows = try db.query("""
                \(Store.invoiceColumns) FROM invoices
                WHERE number_key = ANY($1::text[]) OR number_loose_key = ANY($2::text[]) OR reference_key = ANY($1::text[])
                """, [.text(Store.textArray(strictKeys)), .text(Store.textArray(looseKeys))])
            for row in rows.all {
                let invoice = Store.invoice(from: row)
                invoices[invoice.id] = InvoiceFact(invoice)
                facts.invoiceRecords[invoice.id] = invoice
            }
        }
        if !accountKeys.isEmpty {
            let rows = try db.query("""
                SELECT a.account_key, a.customer_id, COALESCE(c.dunning_policy, '') AS dunning_policy
                FROM customer_bank_accounts a JOIN customers c USING (customer_id)
                WHERE a.account_key = ANY($1::text[]) ORDER BY a.account_key, a.customer_id
                """, [.text(Store.textArray(accountKeys))])
            for row in rows.all {
                facts.accountOwners[row.requiredString("account_key"), default: []].append(row.requiredString("customer_id"))
                facts.dunningPolicies[row.requiredString("customer_id")] = row.requiredString("dunning_policy")
            }
            let owners = Array(facts.dunningPolicies.keys)
            if !owners.isEmpty {
                let open = try db.query("""
                    \(Store.invoiceColumns) FROM invoices WHERE customer_id = ANY($1::text[]) AND status IN ('open', 'partially_paid')
                    """, [.text(Store.textArray(owners))])
                for row in open.all {
                    let invoice = Store.invoice(from: row)
                    invoices[invoice.id] = InvoiceFact(invoice)
                    facts.invoiceRecords[invoice.id] = invoice
                }
            }
        }
        facts.invoices = invoices.values.sorted { $0.id < $1.id }
        let lock = lockPayouts ? " FOR UPDATE OF p" : ""
        var payouts: [String: PayoutFact] = [:]
        if !payoutWords.isEmpty {
            let rows = try db.query("""
                SELECT p.payout_id, p.currency, p.gross_minor, p.payment_count, p.settled_by_entry FROM payouts p
                WHERE translate(p.payout_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = ANY($1::text[])
                ORDER BY p.payout_id, p.currency\(lock)
                """, [.text(Store.textArray(payoutWords))])
            for payout in rows.all.map(Store.payout(from:)) { payouts[payout.payoutID + "\u{1F}" + payout.gross.currency.code] = payout }
        }
        if !payoutRanges.isEmpty {
            let rows = try db.query("""
                SELECT p.payout_id, p.currency, p.gross_minor, p.payment_count, p.settled_by_entry
                FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS r(currency, low, high)
                JOIN payouts p ON p.currency = r.currency AND p.gross_minor BETWEEN r.low AND r.high AND p.settled_by_entry IS NULL
                ORDER BY p.payout_id, p.currency\(lock)
                """, [.text(Store.textArray(payoutRanges.map(\.currency))), .text(Store.intArray(payoutRanges.map(\.low))),
                 .text(Store.intArray(payoutRanges.map(\.high)))])
            for payout in rows.all.map(Store.payout(from:)) { payouts[payout.payoutID + "\u{1F}" + payout.gross.currency.code] = payout }
        }
        facts.payouts = payouts.keys.sorted().map { payouts[$0]! }
        return facts
    }

    static func payout(from row: PostgresRow) -> PayoutFact {
        guard let currency = Currency(code: row.requiredString("currency")) else { preconditionFailure("payout currency unreadable") }
        return PayoutFact(payoutID: row.requiredString("payout_id"), gross: Money(minorUnits: row.requiredInt64("gross_minor"), currency: currency),
                          paymentCount: Int(row.requiredInt64("payment_count")), settledByEntry: row.string("settled_by_entry"))
    }

    // MARK: bulk booking of a statement

    /// Per customer and currency: the balance of open invoices and the unapplied credit, for
    /// the `payment.confirmed` and `credit_balance.changed` of many credits at once.
    public func customerPositions(_ customerIDs: some Collection<String>) throws(PostgresError)
        -> (balances: [String: [Currency: Money]], credit: [String: [Currency: Money]]) {
        var balances: [String: [Currency: Money]] = [:]
        var credit: [String: [Currency: Money]] = [:]
        guard !customerIDs.isEmpty else { return (balances, credit) }
        let ids = PostgresValue.text(Store.textArray(Array(Set(customerIDs)).sorted()))
        for row in try db.query("""
            SELECT customer_id, currency, sum(balance_minor)::bigint AS total FROM invoices
            WHERE customer_id = ANY($1::text[]) AND status IN ('open', 'partially_paid') GROUP BY customer_id, currency
            """, [ids]).all {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            balances[row.requiredString("customer_id"), default: [:]][currency] = Money(minorUnits: row.requiredInt64("total"), currency: currency)
        }
        for row in try db.query("""
            SELECT customer_id, currency, sum(remaining_minor)::bigint AS total FROM credit_lots
            WHERE customer_id = ANY($1::text[]) AND remaining_minor > 0 GROUP BY customer_id, currency
            """, [ids]).all {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            credit[row.requiredString("customer_id"), default: [:]][currency] = Money(minorUnits: row.requiredInt64("total"), currency: currency)
        }
        return (balances, credit)
    }

    /// Writes what many bank credits did to the books in a few statements: the invoices'
    /// new balances, the new applications and credit lots, the journal entries with their lines
    /// (ids given, stable for the causing message).
    public func saveBankBookings(invoices: [Invoice], applications: [(customerID: String, application: Application)],
                                 lots: [(customerID: String, lot: CreditLot)], journal: [(id: String, entry: JournalEntry)]) throws(PostgresError) {
        if !invoices.isEmpty {
            try db.query("""
                UPDATE invoices i SET balance_minor = u.balance, written_off_minor = u.written_off, status = u.status, status_seq = u.status_seq,
                                      updated_at = now()
                FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) AS u(invoice_id, balance, written_off, status, status_seq)
                WHERE i.invoice_id = u.invoice_id
                """, [.text(Store.textArray(invoices.map(\.id))), .text(Store.intArray(invoices.map(\.balance.minorUnits))),
                      .text(Store.intArray(invoices.map(\.writtenOffAmount.minorUnits))), .text(Store.textArray(invoices.map(\.status.rawValue))),
                      .text(Store.intArray(invoices.map(\.statusSequence)))])
        }
        if !applications.isEmpty {
            try db.query("""
                INSERT INTO applications (invoice_id, customer_id, currency, origin_kind, origin_id, amount_minor, unwound_minor)
                SELECT a.invoice_id, a.customer_id, a.currency, a.origin_kind, a.origin_id, a.amount, 0
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY
                     AS a(invoice_id, customer_id, currency, origin_kind, origin_id, amount, position)
                ORDER BY a.position
                """, [.text(Store.textArray(applications.map(\.application.invoiceID))), .text(Store.textArray(applications.map(\.customerID))),
                      .text(Store.textArray(applications.map(\.application.amount.currency.code))),
                      .text(Store.textArray(applications.map(\.application.origin.kind.rawValue))),
                      .text(Store.textArray(applications.map(\.application.origin.id))), .text(Store.intArray(applications.map(\.application.amount.minorUnits)))])
        }
        if !lots.isEmpty {
            try db.query("""
                INSERT INTO credit_lots (customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor)
                SELECT l.customer_id, l.currency, l.origin_kind, l.origin_id, l.original, l.remaining
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) WITH ORDINALITY
                     AS l(customer_id, currency, origin_kind, origin_id, original, remaining, position)
                ORDER BY l.position
                """, [.text(Store.textArray(lots.map(\.customerID))), .text(Store.textArray(lots.map(\.lot.original.currency.code))),
                      .text(Store.textArray(lots.map(\.lot.origin.kind.rawValue))), .text(Store.textArray(lots.map(\.lot.origin.id))),
                      .text(Store.intArray(lots.map(\.lot.original.minorUnits))), .text(Store.intArray(lots.map(\.lot.remaining.minorUnits)))])
        }
        guard !journal.isEmpty else { return }
        try db.query("""
            INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
            """, [.text(Store.textArray(journal.map(\.id))), .text(Store.textArray(journal.map(\.entry.kind.rawValue))),
                  .text(Store.textArray(journal.map(\.entry.customerID))), .text(Store.textArray(journal.map(\.entry.currency.code))),
                  .text(Store.textArray(journal.map(\.entry.reference)))])
        let lines = journal.flatMap { posted in posted.entry.lines.enumerated().map { (posted.id, posted.entry.customerID, $0.offset + 1, $0.element) } }
        try db.query("""
            INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
            SELECT l.entry_id, l.no, l.account, l.customer_id, NULLIF(l.invoice, ''), l.debit, l.credit
            FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
                 AS l(entry_id, no, account, customer_id, invoice, debit, credit)
            """, [.text(Store.textArray(lines.map(\.0))), .text(Store.intArray(lines.map { Int64($0.2) })), .text(Store.textArray(lines.map(\.3.account.rawValue))),
                  .text(Store.textArray(lines.map(\.1))), .text(Store.textArray(lines.map { $0.3.invoiceID ?? "" })),
                  .text(Store.intArray(lines.map(\.3.debit))), .text(Store.intArray(lines.map(\.3.credit)))])
    }

    // MARK: payouts

    /// The payments of a payout with the clearing account each was booked to when it succeeded.
    public func payoutPayments(payoutID: String, currency: Currency) throws(PostgresError) -> [PayoutPayment] {
        let rows = try db.query("""
            SELECT p.payment_id, p.customer_id, p.amount_minor,
                   COALESCE((SELECT l.account FROM journal_entries e JOIN journal_lines l USING (entry_id)
                             WHERE e.reference = p.payment_id AND e.kind = 'payment_received' AND l.debit_minor > 0
                             ORDER BY l.line_no LIMIT 1), 'cash:' || p.method) AS clearing
            FROM payments p WHERE p.payout_id = $1 AND p.currency = $2 ORDER BY p.payment_id
            """, [.text(payoutID), .text(currency.code)])
        return rows.all.map { row in
            PayoutPayment(paymentID: row.requiredString("payment_id"), customerID: row.requiredString("customer_id"),
                          amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                          clearingAccount: LedgerAccount(rawValue: row.requiredString("clearing")))
        }
    }

    /// Marks a pending payout settled by `entryID`; false if it was not pending.
    public func settlePayout(payoutID: String, currency: Currency, entryID: String) throws(PostgresError) -> Bool {
        !(try db.query("""
            UPDATE payouts SET settled_by_entry = $3, settled_at = now()
            WHERE payout_id = $1 AND currency = $2 AND settled_by_entry IS NULL RETURNING 1 AS settled
            """, [.text(payoutID), .text(currency.code), .text(entryID)])).isEmpty
    }

    // MARK: entries and decisions

    /// Inserts bank entries (one statement, whatever their number).
    public func insertBankEntries(_ entries: [BankEntryRecord]) throws(PostgresError) {
        guard !entries.isEmpty else { return }
        func column(_ value: (BankEntryRecord) -> String?) -> PostgresValue { .text(Store.textArray(entries.map { value($0) ?? "" })) }
        try db.query("""
            INSERT INTO bank_entries (entry_id, account_key, bank_reference, direction, currency, amount_minor, booking_date, value_date,
                debtor_name, debtor_account, end_to_end_id, remittance_info, structured_reference, bank_transaction_code, reversal,
                origin_format, statement_id, source, event_id, fingerprint, state, reason, rule, confidence, customer_id, payout_id,
                applied_minor, credit_minor, fees_minor, decided_at)
            SELECT e.entry_id, e.account_key, e.bank_reference, e.direction, e.currency, e.amount_minor, NULLIF(e.booking_date, '')::date,
                   NULLIF(e.value_date, '')::date, NULLIF(e.debtor_name, ''), NULLIF(e.debtor_account, ''), NULLIF(e.end_to_end_id, ''),
                   NULLIF(e.remittance_info, ''), NULLIF(e.structured_reference, ''), NULLIF(e.bank_transaction_code, ''), e.reversal,
                   e.origin_format, NULLIF(e.statement_id, ''), e.source, e.event_id, e.fingerprint, e.state, NULLIF(e.reason, ''),
                   NULLIF(e.rule, ''), NULLIF(e.confidence, '')::int, NULLIF(e.customer_id, ''), NULLIF(e.payout_id, ''),
                   e.applied_minor, e.credit_minor, e.fees_minor, CASE WHEN e.state = 'recorded' THEN NULL ELSE now() END
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[],
                        $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::boolean[], $16::text[], $17::text[], $18::text[],
                        $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[],
                        $27::bigint[], $28::bigint[], $29::bigint[])
                 AS e(entry_id, account_key, bank_reference, direction, currency, amount_minor, booking_date, value_date, debtor_name,
                      debtor_account, end_to_end_id, remittance_info, structured_reference, bank_transaction_code, reversal, origin_format,
                      statement_id, source, event_id, fingerprint, state, reason, rule, confidence, customer_id, payout_id,
                      applied_minor, credit_minor, fees_minor)
            """, [
                column(\.entryID), column(\.identity.account), column(\.identity.reference), column { $0.isCredit ? "credit" : "debit" },
                column(\.amount.currency.code), .text(Store.intArray(entries.map(\.amount.minorUnits))), column(\.bookingDate), column(\.valueDate),
                column { Store.printable($0.debtorName) }, column(\.debtorAccount), column(\.endToEndID), column { Store.printable($0.remittanceInfo) },
                column(\.structuredReference), column(\.transactionCode), .text("{" + entries.map { $0.reversal ? "t" : "f" }.joined(separator: ",") + "}"),
                column(\.originFormat), column(\.statementID), column(\.source), column(\.eventID), column(\.fingerprint), column(\.state),
                column(\.reason), column(\.rule), column { $0.confidence.map(String.init) }, column(\.customerID), column(\.payoutID),
                .text(Store.intArray(entries.map(\.appliedMinor))), .text(Store.intArray(entries.map(\.creditMinor))),
                .text(Store.intArray(entries.map(\.feesMinor))),
            ])
    }

    /// Text as PostgreSQL can hold it: no NUL (replaced, never truncated).
    static func printable(_ text: String?) -> String? {
        text.map { String(String.UnicodeScalarView($0.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 })) }
    }

    /// Writes the outcome of a later (manual) decision into an entry's row.
    public func updateBankEntry(_ entry: BankEntryRecord) throws(PostgresError) {
        try db.query("""
            UPDATE bank_entries SET state = $2, reason = $3, rule = $4, confidence = $5::int, customer_id = $6, payout_id = $7,
                   applied_minor = $8, credit_minor = $9, fees_minor = $10, decided_at = now()
            WHERE entry_id = $1
            """, [.text(entry.entryID), .text(entry.state), .optional(entry.reason), .optional(entry.rule), .optional(entry.confidence.map(String.init)),
                  .optional(entry.customerID), .optional(entry.payoutID), .int(entry.appliedMinor), .int(entry.creditMinor), .int(entry.feesMinor)])
    }

    /// Stores decisions with their explanations and candidate customers; the candidate rows of
    /// each entry take the entry's new state (an exception resolved no longer holds dunning).
    public func recordDecisions(_ decisions: [DecisionRecord]) throws(PostgresError) {
        guard !decisions.isEmpty else { return }
        func column(_ value: (DecisionRecord) -> String?) -> PostgresValue { .text(Store.textArray(decisions.map { value($0) ?? "" })) }
        try db.query("""
            INSERT INTO reconciliation_decisions (entry_id, kind, state, reason, rule, confidence, explanation, source, event_id)
            SELECT d.entry_id, d.kind, d.state, NULLIF(d.reason, ''), NULLIF(d.rule, ''), NULLIF(d.confidence, '')::int, d.explanation::jsonb,
                   d.source, d.event_id
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
                 WITH ORDINALITY AS d(entry_id, kind, state, reason, rule, confidence, explanation, source, event_id, position)
            ORDER BY d.position
            """, [column(\.entryID), column(\.kind), column(\.state), column(\.reason), column(\.rule), column { $0.confidence.map(String.init) },
                  column(\.explanation), column(\.source), column(\.eventID)])
        try db.query("""
            UPDATE reconciliation_candidates c SET state = d.state, reason = NULLIF(d.reason, '')
            FROM unnest($1::text[], $2::text[], $3::text[]) AS d(entry_id, state, reason) WHERE c.entry_id = d.entry_id
            """, [column(\.entryID), column(\.state), column(\.reason)])
        let rows = decisions.flatMap { decision in decision.candidates.map { (decision, $0) } }
        guard !rows.isEmpty else { return }
        try db.query("""
            INSERT INTO reconciliation_candidates (entry_id, customer_id, state, reason, rank, score, rule, invoice_ids)
            SELECT c.entry_id, c.customer_id, c.state, NULLIF(c.reason, ''), c.rank, c.score, c.rule, string_to_array(c.invoice_ids, chr(31))
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[], $8::text[])
                 AS c(entry_id, customer_id, state, reason, rank, score, rule, invoice_ids)
            ON CONFLICT (entry_id, customer_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, rank = EXCLUDED.rank,
                score = EXCLUDED.score, rule = EXCLUDED.rule, invoice_ids = EXCLUDED.invoice_ids
            """, [.text(Store.textArray(rows.map(\.0.entryID))), .text(Store.textArray(rows.map(\.1.customerID))),
                  .text(Store.textArray(rows.map(\.0.state))), .text(Store.textArray(rows.map { $0.0.reason ?? "" })),
                  .text(Store.intArray(rows.map { Int64($0.1.rank) })), .text(Store.intArray(rows.map { Int64($0.1.score) })),
                  .text(Store.textArray(rows.map(\.1.rule))), .text(Store.textArray(rows.map { $0.1.invoiceIDs.joined(separator: "\u{1F}") }))])
    }

    static let bankEntryColumns = """
        SELECT entry_id, account_key, bank_reference, direction, currency, amount_minor, booking_date::text AS booking_date,
               value_date::text AS value_date, debtor_name, debtor_account, end_to_end_id, remittance_info, structured_reference,
               bank_transaction_code, reversal, origin_format, statement_id, source, event_id, fingerprint, state, reason, rule, confidence,
               customer_id, payout_id, applied_minor, credit_minor, fees_minor,
               to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS received_at,
               to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS decided_at
        FROM bank_entries
        """

    /// The entry with this id; `forUpdate` locks its row for the rest of the transaction.
    public func bankEntry(_ entryID: String, forUpdate: Bool = false) throws(PostgresError) -> BankEntryRecord? {
        let rows = try db.query(Store.bankEntryColumns + " WHERE entry_id = $1" + (forUpdate ? " FOR UPDATE" : ""), [.text(entryID)])
        return rows.first.map(Store.bankEntry(from:))
    }

    static func bankEntry(from row: PostgresRow) -> BankEntryRecord {
        guard let currency = Currency(code: row.requiredString("currency")) else { preconditionFailure("bank entry currency unreadable") }
        var entry = BankEntryRecord(
            entryID: row.requiredString("entry_id"),
            identity: BankEntryIdentity(account: row.requiredString("account_key"), reference: row.requiredString("bank_reference")),
            isCredit: row.requiredString("direction") == "credit", amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
            bookingDate: row.string("booking_date"), valueDate: row.string("value_date"), debtorName: row.string("debtor_name"),
            debtorAccount: row.string("debtor_account"), endToEndID: row.string("end_to_end_id"), remittanceInfo: row.string("remittance_info"),
            structuredReference: row.string("structured_reference"), transactionCode: row.string("bank_transaction_code"),
            reversal: row.bool("reversal") ?? false, originFormat: row.requiredString("origin_format"), statementID: row.string("statement_id"),
            source: row.requiredString("source"), eventID: row.requiredString("event_id"), fingerprint: row.requiredString("fingerprint"),
            state: row.requiredString("state"))
        entry.reason = row.string("reason")
        entry.rule = row.string("rule")
        entry.confidence = row.int64("confidence").map(Int.init)
        entry.customerID = row.string("customer_id")
        entry.payoutID = row.string("payout_id")
        entry.appliedMinor = row.requiredInt64("applied_minor")
        entry.creditMinor = row.requiredInt64("credit_minor")
        entry.feesMinor = row.requiredInt64("fees_minor")
        entry.receivedAt = row.string("received_at")
        entry.decidedAt = row.string("decided_at")
        return entry
    }

    /// The decisions about an entry, oldest first (`reconcile explain`).
    public func decisions(entryID: String) throws(PostgresError) -> [DecisionRecord] {
        let rows = try db.query("""
            SELECT entry_id, kind, state, reason, rule, confidence, explanation::text AS explanation, source, event_id,
                   to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS decided_at
            FROM reconciliation_decisions WHERE entry_id = $1 ORDER BY decision_id
            """, [.text(entryID)])
        return rows.all.map { row in
            var record = DecisionRecord(entryID: row.requiredString("entry_id"), kind: row.requiredString("kind"), state: row.requiredString("state"),
                                        reason: row.string("reason"), rule: row.string("rule"), confidence: row.int64("confidence").map(Int.init),
                                        explanation: row.requiredString("explanation"), source: row.requiredString("source"),
                                        eventID: row.requiredString("event_id"), candidates: [])
            record.decidedAt = row.string("decided_at")
            return record
        }
    }

    // MARK: hooks for dunning (issue 10) and reports (issue 11)

    /// Open exceptions (credits in `exception`) that list any of these customers among their
    /// candidates: dunning holds those customers' reminders (SPEC section 4). Indexed on
    /// `reconciliation_candidates (customer_id, entry_id) WHERE state = 'exception'`.
    public func openExceptionCandidates(customerIDs: [String]) throws(PostgresError) -> [ExceptionCandidate] {
        guard !customerIDs.isEmpty else { return [] }
        let rows = try db.query("""
            SELECT c.entry_id, c.customer_id, COALESCE(c.reason, b.reason) AS reason, c.rank, c.score, c.rule,
                   array_to_string(c.invoice_ids, chr(31)) AS invoice_ids, b.currency, b.amount_minor,
                   to_char(b.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS received_at,
                   EXTRACT(EPOCH FROM now() - b.received_at)::bigint AS age
            FROM reconciliation_candidates c JOIN bank_entries b USING (entry_id)
            WHERE c.customer_id = ANY($1::text[]) AND c.state = 'exception'
            ORDER BY c.customer_id, b.received_at, c.entry_id
            """, [.text(Store.textArray(customerIDs))])
        return rows.all.map { row in
            let currency = Currency(code: row.requiredString("currency"))!
            let ids = row.requiredString("invoice_ids")
            return ExceptionCandidate(entryID: row.requiredString("entry_id"), customerID: row.requiredString("customer_id"),
                                      reason: row.requiredString("reason"), rank: Int(row.requiredInt64("rank")), score: Int(row.requiredInt64("score")),
                                      rule: row.requiredString("rule"), invoiceIDs: ids.isEmpty ? [] : ids.split(separator: "\u{1F}").map(String.init),
                                      amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency),
                                      receivedAt: row.requiredString("received_at"), ageSeconds: row.requiredInt64("age"))
        }
    }

    /// Every credit in `exception`, oldest first, with its reason and candidate customers
    /// (`report exceptions`). Indexed on `bank_entries (received_at, entry_id) WHERE state = 'exception'`.
    public func openExceptions(limit: Int = 1000) throws(PostgresError) -> [OpenException] {
        let rows = try db.query("""
            SELECT b.entry_id, b.account_key, b.currency, b.amount_minor, b.booking_date::text AS booking_date, b.reason,
                   to_char(b.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS received_at,
                   EXTRACT(EPOCH FROM now() - b.received_at)::bigint AS age,
                   COALESCE((SELECT string_agg(c.customer_id, chr(31) ORDER BY c.rank, c.customer_id) FROM reconciliation_candidates c
                             WHERE c.entry_id = b.entry_id), '') AS customers
            FROM bank_entries b WHERE b.state = 'exception' ORDER BY b.received_at, b.entry_id LIMIT $1
            """, [.int(limit)])
        return rows.all.map { row in
            let currency = Currency(code: row.requiredString("currency"))!
            let customers = row.requiredString("customers")
            return OpenException(entryID: row.requiredString("entry_id"), accountKey: row.requiredString("account_key"),
                                 amount: Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency), bookingDate: row.string("booking_date"),
                                 reason: row.requiredString("reason"), receivedAt: row.requiredString("received_at"), ageSeconds: row.requiredInt64("age"),
                                 candidateCustomers: customers.isEmpty ? [] : customers.split(separator: "\u{1F}").map(String.init))
        }
    }

    // MARK: verify

    /// The reconciliation invariants for `receivablesd verify` (run inside its snapshot).
    func reconciliationViolations(limitPerCheck: Int) throws(PostgresError) -> [Violation] {
        var violations: [Violation] = []
        func check(_ name: String, _ sql: String, _ describe: (PostgresRow) -> String) throws(PostgresError) {
            for row in try db.query(sql + " LIMIT \(limitPerCheck)").all { violations.append(Violation(check: name, detail: describe(row))) }
        }
        try check("bank credit booked once, in full", """
            SELECT b.entry_id, b.state, b.amount_minor, COALESCE(j.bank, 0) AS bank
            FROM bank_entries b LEFT JOIN (
                SELECT e.reference, sum(l.debit_minor - l.credit_minor) AS bank FROM journal_entries e JOIN journal_lines l USING (entry_id)
                WHERE e.kind IN ('bank_credit_received', 'payout_settled') AND l.account = 'cash:bank' GROUP BY e.reference) j ON j.reference = b.entry_id
            WHERE COALESCE(j.bank, 0) <> CASE WHEN b.state IN ('matched', 'partially_matched') THEN b.amount_minor ELSE 0 END
            """) { "bank entry \($0.requiredString("entry_id")) is \($0.requiredString("state")) for \($0.requiredString("amount_minor")) but the journal booked \($0.requiredString("bank")) to the bank" }
        try check("bank credit fully accounted for", """
            SELECT b.entry_id, b.applied_minor + b.credit_minor + b.fees_minor AS booked, COALESCE(a.standing, 0) + COALESCE(c.credit, 0) AS accounted
            FROM bank_entries b
            LEFT JOIN (SELECT origin_id, sum(amount_minor - unwound_minor) AS standing FROM applications WHERE origin_kind = 'bank_credit' GROUP BY origin_id) a
                   ON a.origin_id = b.entry_id
            LEFT JOIN (SELECT origin_id, sum(remaining_minor) AS credit FROM credit_lots WHERE origin_kind = 'bank_credit' GROUP BY origin_id) c
                   ON c.origin_id = b.entry_id
            WHERE b.state IN ('matched', 'partially_matched') AND b.payout_id IS NULL
              AND b.applied_minor + b.credit_minor + b.fees_minor <> COALESCE(a.standing, 0) + COALESCE(c.credit, 0)
            """) { "bank entry \($0.requiredString("entry_id")) booked \($0.requiredString("booked")) but applications and credit hold \($0.requiredString("accounted"))" }
        try check("bank credit amounts add up", """
            SELECT entry_id, amount_minor, applied_minor, credit_minor FROM bank_entries
            WHERE state IN ('matched', 'partially_matched') AND payout_id IS NULL AND applied_minor + credit_minor <> amount_minor
            """) { "bank entry \($0.requiredString("entry_id")) of \($0.requiredString("amount_minor")) applied \($0.requiredString("applied_minor")) + credit \($0.requiredString("credit_minor"))" }
        try check("payout settled by exactly one matched entry", """
            SELECT p.payout_id, p.settled_by_entry FROM payouts p
            WHERE p.settled_by_entry IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM bank_entries b WHERE b.entry_id = p.settled_by_entry AND b.payout_id = p.payout_id AND b.state = 'matched')
            """) { "payout \($0.requiredString("payout_id")) says it was settled by \($0.requiredString("settled_by_entry")), which did not settle it" }
        try check("candidates share their entry's state", """
            SELECT c.entry_id, c.customer_id, c.state, b.state AS entry_state FROM reconciliation_candidates c JOIN bank_entries b USING (entry_id)
            WHERE c.state <> b.state
            """) { "candidate \($0.requiredString("customer_id")) of \($0.requiredString("entry_id")) is \($0.requiredString("state")), the entry \($0.requiredString("entry_state"))" }
        try check("every decided credit has its decision", """
            SELECT b.entry_id FROM bank_entries b WHERE b.direction = 'credit'
              AND NOT EXISTS (SELECT 1 FROM reconciliation_decisions d WHERE d.entry_id = b.entry_id AND d.state = b.state)
            """) { "bank entry \($0.requiredString("entry_id")) has no decision for its state" }
        return violations
    }
}

extension Store {
    /// A `text[]` parameter (every element quoted and escaped), for callers outside the Store
    /// that bulk-load rows through `unnest` (the reconciliation benchmark).
    public static func textArrayParameter(_ values: [String]) -> PostgresValue { .text(textArray(values)) }
}
