import ARContract
import ARDomain
import BankFormats
import PostgresClient
import Store

extension RejectionCode {
    /// A statement file that does not parse (the detail names where, as the parser says).
    static let bankFileInvalid = RejectionCode(rawValue: "bank_file_invalid")
    /// `reconciliation.resolved` for a credit that is not (or no longer) an exception.
    static let entryAlreadySettled = RejectionCode(rawValue: "entry_already_settled")
}

/// bank.credit.received, bank.statement.received and reconciliation.resolved (SPEC section 3).
///
/// One message, one transaction: the bank accounts are locked first (a booking seen in two
/// files is checked by one instance at a time), bookings already known are recognised by
/// identity and skipped, the facts are loaded through indexes, the customers they can touch are
/// locked in id order, and then each credit is decided (pure `ReconciliationRun`) and booked
/// with CustomerBooks, in file order; entry rows, decisions, journal and outbox commit together
/// with the inbox key.
enum ReconciliationHandlers {
    static func creditReceived(_ command: BankCreditReceived, _ context: HandlerContext) throws -> Disposition {
        let record = BankEntryIntake.record(command, source: context.envelope.source, eventID: context.envelope.id)
        return try reconcile([record], refuseConflicts: true, context)
    }

    static func statementReceived(_ command: BankStatementReceived, _ context: HandlerContext) throws -> Disposition {
        let statements: [BankStatement]
        do {
            // The library default is strict: balances must add up, control totals must agree.
            statements = try BankFormats.parse(command.file, format: BankFormat(rawValue: command.format.rawValue))
        } catch {
            throw Rejection(code: .bankFileInvalid, detail: "\(error)")
        }
        let records = BankEntryIntake.records(statements, source: context.envelope.source, eventID: context.envelope.id)
        guard !records.isEmpty else { return .duplicate }  // nothing booked in it (pending advices only)
        return try reconcile(records, refuseConflicts: false, context)
    }

    // MARK: the shared path

    static func reconcile(_ incoming: [BankEntryRecord], refuseConflicts: Bool, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        let settings = context.pipeline.reconciliation.settings
        try store.lockBankAccounts(incoming.map(\.identity.account))
        var fresh = try newBookings(incoming, refuseConflicts: refuseConflicts, store: store)
        guard !fresh.isEmpty else { return .duplicate }
        try assignEntryIDs(&fresh, store: store)
        let credits = fresh.filter { $0.isCredit && $0.state != ReconciliationHandlers.conflictState }
        let rows = try lockAndLoadFacts(credits.map(\.credit), policy: settings.policy, store: store)
        var run = ReconciliationRun(invoices: rows.invoices, payouts: rows.payouts, accountOwners: rows.accountOwners,
                                    oldestFirstCustomers: Set(rows.dunningPolicies.filter { settings.allowsOldestFirst(dunningPolicy: $0.value) }.keys),
                                    policy: settings.policy)
        let positions = try store.customerPositions(rows.customers)
        let bookings = BankBookings(invoices: rows.invoiceRecords, balances: positions.balances, credit: positions.credit)
        var decisions: [DecisionRecord] = []
        for index in fresh.indices where fresh[index].isCredit {
            let record = fresh[index]
            var decision: ReconciliationDecision
            if record.state == conflictState {
                decision = conflictException(record)
            } else {
                guard let decided = run.reconcile(record.credit, identity: record.identity) else { continue }
                decision = decided
            }
            decision = try book(decision, record, context, bookings: bookings)
            DaemonMetrics.reconciliation(outcome: decision.state.rawValue)  // counted when decided (a retried batch may count twice)
            fresh[index].take(decision)
            decisions.append(decisionRecord(decision, kind: "automatic", context))
            // Long statements: write events as we go rather than one giant insert at the end.
            if decisions.count % 500 == 0 { try store.enqueue(context.events.drain()) }
        }
        try bookings.save(store)
        try store.insertBankEntries(fresh)
        try store.recordDecisions(decisions)
        return .applied
    }

    /// A row with this state is a booking whose bank reference was already used for a booking
    /// with different content; it becomes an exception, never a second application.
    static let conflictState = "conflict"

    /// The incoming bookings not seen before (stored or earlier in this message). The same
    /// identity with the same content is the same booking (skipped); with different content,
    /// a connector's message is refused and a statement's booking is kept as an exception.
    static func newBookings(_ incoming: [BankEntryRecord], refuseConflicts: Bool, store: Store) throws -> [BankEntryRecord] {
        let known = try store.knownBankEntries(incoming.map(\.identity))
        var seen: [BankEntryIdentity: (entryID: String, fingerprint: String)] = known
        var fresh: [BankEntryRecord] = []
        for var record in incoming {
            if let existing = seen[record.identity] {
                if existing.fingerprint == record.fingerprint { continue }
                if refuseConflicts {
                    throw Rejection(code: .conflictingDuplicate,
                                    detail: "bank reference \(record.identity.reference) on account \(Masked.account(record.identity.account)) was already booked with different content (entry \(existing.entryID))")
                }
                let conflicted = BankEntryIdentity(account: record.identity.account,
                                                   reference: record.identity.reference + "~" + String(SHA256Digest.hex(Array(record.fingerprint.utf8)).prefix(12)))
                if try seen[conflicted] != nil || !store.knownBankEntries([conflicted]).isEmpty { continue }
                record.remittanceInfo = [record.remittanceInfo, "[bank reference \(record.identity.reference) was already booked as entry \(existing.entryID) with different content]"]
                    .compactMap { $0 }.joined(separator: " ")
                record.identity = conflicted
                record.entryID += "~" + String(conflicted.reference.suffix(12))
                if record.isCredit { record.state = conflictState }
            }
            seen[record.identity] = (record.entryID, record.fingerprint)
            fresh.append(record)
        }
        return fresh
    }

    /// Entry ids are the bank's references where they are unique; one already used by another
    /// booking (another account's reference) is qualified with the account.
    static func assignEntryIDs(_ records: inout [BankEntryRecord], store: Store) throws {
        let taken = try store.takenEntryIDs(records.map(\.entryID))
        var used = taken
        for index in records.indices {
            var id = records[index].entryID
            if used.contains(id) { id = records[index].identity.account + "/" + records[index].identity.reference }
            var suffix = 2
            let base = id
            while used.contains(id) { id = base + "#\(suffix)"; suffix += 1 }
            records[index].entryID = String(id.prefix(128))
            used.insert(records[index].entryID)
        }
    }

    /// Loads the facts, locks the customers they can touch (sorted), and loads them again under
    /// the locks (balances as they are now); payouts are locked by the second load. Repeats if
    /// the second load names customers the first did not (an invoice issued meanwhile).
    static func lockAndLoadFacts(_ credits: [BankCredit], policy: ReconciliationPolicy, store: Store) throws -> ReconciliationFactRows {
        guard !credits.isEmpty else { return ReconciliationFactRows() }
        var strict: Set<String> = []
        var loose: Set<String> = []
        var words: Set<String> = []
        var accounts: Set<String> = []
        var ranges: [(currency: String, low: Int64, high: Int64)] = []
        for credit in credits {
            let scan = credit.scan
            strict.formUnion(scan.strictKeys)
            loose.formUnion(scan.looseKeys)
            words.formUnion(scan.words)
            if let account = credit.debtorAccount { accounts.insert(account) }
            let limit = policy.tolerance(credit.currency).payoutFeeLimit
            ranges.append((credit.currency.code, credit.amount.minorUnits, (credit.amount + limit).minorUnits))
        }
        func load(lock: Bool) throws -> ReconciliationFactRows {
            try store.reconciliationFacts(strictKeys: strict.sorted(), looseKeys: loose.sorted(), accountKeys: accounts.sorted(),
                                          payoutWords: words.sorted(), payoutRanges: ranges, lockPayouts: lock)
        }
        var locked: Set<String> = []
        var rows = try load(lock: false)
        var rounds = 0
        repeat {
            rounds += 1
            try store.lockCustomerRows(rows.customers.subtracting(locked))
            locked.formUnion(rows.customers)
            rows = try load(lock: true)  // balances as they are under the locks; payouts locked
        } while !rows.customers.isSubset(of: locked) && rounds < 4
        // Still new customers after four rounds (invoices issued all the time): lock them too; the
        // facts are complete for everyone locked, and a deadlock is retried by the pipeline.
        try store.lockCustomerRows(rows.customers.subtracting(locked))
        return rows
    }

    /// A booking whose bank reference was used before for other content.
    static func conflictException(_ record: BankEntryRecord) -> ReconciliationDecision {
        ReconciliationDecision(entryID: record.entryID, amount: record.amount, state: .exception, reason: .duplicate, rule: nil, confidence: 0,
                               customerID: nil, allocations: [], toCredit: .zero(record.amount.currency), payout: nil, candidates: [],
                               notes: ["bank reference \(record.identity.reference.split(separator: "~").first.map(String.init) ?? "") on account \(Masked.account(record.identity.account)) was already booked with a different amount or direction: not applied until someone looks"])
    }

    // MARK: booking one decision

    /// Books a decision: the customer's books (applications, credit, journal, events) or the
    /// payout's journal, then the reconciliation event. Returns the decision as booked (a payout
    /// found settled after all becomes a `duplicate` exception).
    /// With `bookings` (a statement's many credits), the books are kept in memory and written
    /// by `BankBookings.save` in a few statements; without (one manual resolution), through
    /// loadBooks / saveBooks.
    static func book(_ decision: ReconciliationDecision, _ record: BankEntryRecord, _ context: HandlerContext,
                     bookings: BankBookings? = nil) throws -> ReconciliationDecision {
        let store = context.store
        let cause = context.cause + ["bank", record.entryID]
        switch decision.state {
        case .matched, .partiallyMatched:
            if let settlement = decision.payout {
                let currency = record.amount.currency
                guard try store.settlePayout(payoutID: settlement.payoutID, currency: currency, entryID: record.entryID) else {
                    let settled = ReconciliationDecision(entryID: decision.entryID, amount: decision.amount, state: .exception, reason: .duplicate,
                                                         rule: nil, confidence: decision.confidence, customerID: nil, allocations: [],
                                                         toCredit: .zero(currency), payout: nil, candidates: decision.candidates,
                                                         notes: decision.notes + ["payout \(settlement.payoutID) was settled by another entry meanwhile"])
                    exceptionEvent(settled, context)
                    return settled
                }
                let payments = try store.payoutPayments(payoutID: settlement.payoutID, currency: currency)
                let entries = PayoutPosting.entries(entryID: record.entryID, received: record.amount, payments: payments)
                let posted = try bookings.map { $0.post(entries, cause: cause) } ?? store.postJournal(entries, cause: cause)
                for (id, entry) in posted { context.events.ledgerEntryPosted(id: id, entry) }
            } else if let customer = decision.customerID, let bookings {
                try bookings.apply(decision, customer: customer, record: record, cause: cause, context)
            } else if let customer = decision.customerID {
                var books = try store.loadBooks(customerID: customer, invoiceIDs: decision.allocations.map(\.invoiceID))
                let result = try books.applyBankCredit(entryID: record.entryID, received: record.amount, allocations: decision.allocations)
                let posted = try store.saveBooks(books, cause: cause)
                context.events.booksChanged(books, posted: posted)
                let balance = try store.customerBalance(customerID: customer, currency: record.amount.currency.code)
                confirmed(record, customer: customer, result: result, balance: Money(minorUnits: balance, currency: record.amount.currency),
                          credit: books.credit(in: record.amount.currency), context)
            }
            matchedEvent(decision, context)
        case .exception:
            exceptionEvent(decision, context)
        case .ignored:
            break
        }
        return decision
    }

    // MARK: manual resolution

    static func resolved(_ command: ReconciliationResolved, _ context: HandlerContext) throws -> Disposition {
        let store = context.store
        guard let peek = try store.bankEntry(command.entryID) else {
            throw Rejection(code: .unknownReference, detail: "no bank entry \(command.entryID) is known")
        }
        try store.lockBankAccounts([peek.identity.account])
        guard var entry = try store.bankEntry(command.entryID, forUpdate: true) else {
            preconditionFailure("bank entry \(command.entryID) vanished under its account lock")
        }
        guard entry.isCredit else {
            throw Rejection(code: .invalidState, detail: "bank entry \(entry.entryID) is a debit; only credits are reconciled")
        }
        guard entry.state == BankCreditState.exception.rawValue else {
            throw Rejection(code: .entryAlreadySettled,
                            detail: "bank entry \(entry.entryID) is already \(entry.state)\(entry.customerID.map { " (customer \($0))" } ?? ""); a resolution applies only to an exception")
        }
        let amount = entry.amount
        let currency = amount.currency
        let note = command.note.map { "note: \($0)" }
        var notes = ["resolved manually by \(context.envelope.source) (\(context.envelope.id))"] + (note.map { [$0] } ?? [])
        let decision: ReconciliationDecision
        func manual(_ state: BankCreditState, customer: String?, allocations: [PlannedAllocation], rest: Money) -> ReconciliationDecision {
            let candidates = customer.map { [ReconciliationCandidate(subject: .customer($0), customerID: $0, invoiceIDs: allocations.map(\.invoiceID),
                                                                    rule: .manual, score: 100, won: true, why: "named by the resolution")] } ?? []
            return ReconciliationDecision(entryID: entry.entryID, amount: amount, state: state, reason: nil, rule: .manual, confidence: 100,
                                          customerID: customer, allocations: allocations, toCredit: rest, payout: nil, candidates: candidates, notes: notes)
        }
        switch command.resolution {
        case .ignore:
            notes.append("ignored: not customer money; nothing booked")
            decision = manual(.ignored, customer: nil, allocations: [], rest: .zero(currency))
        case .creditCustomer(let customerID):
            guard try store.lockCustomerRows([customerID]).contains(customerID) else {
                throw Rejection(code: .unknownReference, detail: "customer \(customerID) is not known")
            }
            notes.append("all \(amount.decimalString) \(currency) to the credit of \(customerID)")
            decision = manual(.partiallyMatched, customer: customerID, allocations: [], rest: amount)
        case .allocate(let requested):
            var owner: String?
            for allocation in requested.sorted(by: { $0.invoiceID < $1.invoiceID }) {
                guard allocation.amount.currency == currency else {
                    throw Rejection(code: .currencyMismatch, detail: "the resolution is in \(allocation.amount.currency), bank entry \(entry.entryID) in \(currency)")
                }
                guard let invoice = try store.invoice(allocation.invoiceID)?.invoice else {
                    throw Rejection(code: .unknownReference, detail: "invoice \(allocation.invoiceID) is not known")
                }
                guard invoice.currency == currency else {
                    throw Rejection(code: .currencyMismatch, detail: "invoice \(invoice.id) is in \(invoice.currency), bank entry \(entry.entryID) in \(currency)")
                }
                if let owner, owner != invoice.customerID {
                    throw Rejection(code: .foreignReference, detail: "the resolution names invoices of different customers (\(owner), \(invoice.customerID)); one bank entry pays one customer")
                }
                owner = invoice.customerID
            }
            guard let customer = owner else { throw Rejection(code: .schemaViolation, detail: "allocations is empty") }
            try store.lockCustomerRows([customer])
            let total = requested.reduce(Money.zero(currency)) { $0 + $1.amount }
            guard total <= amount else {
                throw Rejection(code: RejectionCode(rawValue: "allocations_exceed_payment"),
                                detail: "allocations total \(total.decimalString) but bank entry \(entry.entryID) is \(amount.decimalString) \(currency)")
            }
            notes.append("allocated: " + requested.map { "\($0.invoiceID) \($0.amount.decimalString)" }.joined(separator: ", ")
                         + ((amount - total).isPositive ? "; \((amount - total).decimalString) to the credit of \(customer)" : ""))
            let allocations = requested.map { PlannedAllocation(invoiceID: $0.invoiceID, paid: $0.amount, writtenOff: .zero(currency)) }
            decision = manual((amount - total).isPositive ? .partiallyMatched : .matched, customer: customer, allocations: allocations, rest: amount - total)
        }
        let booked = try book(decision, entry, context)
        DaemonMetrics.reconciliation(outcome: booked.state.rawValue)
        entry.take(booked)
        try store.updateBankEntry(entry)
        try store.recordDecisions([decisionRecord(booked, kind: "manual", context)])
        return .applied
    }

    // MARK: records and events

    static func decisionRecord(_ decision: ReconciliationDecision, kind: String, _ context: HandlerContext) -> DecisionRecord {
        var best: [String: (rank: Int, candidate: ReconciliationCandidate)] = [:]
        for (rank, candidate) in decision.candidates.enumerated() {
            guard let customer = candidate.customerID, best[customer] == nil else { continue }
            best[customer] = (rank + 1, candidate)
        }
        let candidates = best.keys.sorted().map { customer -> CandidateRecord in
            let (rank, candidate) = best[customer]!
            let invoices = decision.candidates.filter { $0.customerID == customer }.flatMap(\.invoiceIDs)
            return CandidateRecord(customerID: customer, rank: rank, score: candidate.score, rule: candidate.rule.rawValue,
                                   invoiceIDs: Array(Set(invoices)).sorted())
        }
        return DecisionRecord(entryID: decision.entryID, kind: kind, state: decision.state.rawValue, reason: decision.reason?.rawValue,
                              rule: decision.rule?.rawValue, confidence: decision.confidence,
                              explanation: String(decoding: JSONSerializer.serialize(Explanation.json(decision, kind: kind, context)), as: UTF8.self),
                              source: context.envelope.source, eventID: context.envelope.id, candidates: candidates)
    }

    static func confidence(_ score: Int) -> JSONValue {
        .number(score >= 100 ? "1" : score <= 0 ? "0" : "0." + (score < 10 ? "0" : "") + String(score))
    }

    static func matchedEvent(_ decision: ReconciliationDecision, _ context: HandlerContext) {
        let allocations: [JSONValue] = decision.allocations.map { allocation in
            var members: [(String, JSONValue)] = [("invoice_id", .string(allocation.invoiceID)), ("amount", .money(allocation.paid))]
            if allocation.writtenOff.isPositive { members.append(("written_off", .money(allocation.writtenOff))) }
            return .object(JSONObject(members))
        }
        var data: [(String, JSONValue)] = [
            ("entry_id", .string(decision.entryID)), ("state", .string(decision.state.rawValue)), ("rule", .string(decision.rule?.rawValue ?? "manual")),
            ("confidence", confidence(decision.confidence)), ("amount", .money(decision.amount)), ("currency", .string(decision.amount.currency.code)),
            ("allocations", .array(allocations)),
        ]
        if let customer = decision.customerID {
            data.append(("customer_id", .string(customer)))
            data.append(("unapplied_amount", .money(decision.toCredit)))
        }
        if let payout = decision.payout { data.append(("payout_id", .string(payout.payoutID))) }
        if decision.fees.isPositive { data.append(("fees", .money(decision.fees))) }
        context.events.emit("reconciliation.matched", id: EventIdentity.reconciliationMatched(entryID: decision.entryID), subject: decision.customerID, data)
    }

    static func exceptionEvent(_ decision: ReconciliationDecision, _ context: HandlerContext) {
        let candidates: [JSONValue] = decision.candidates.prefix(100).map { candidate in
            var members: [(String, JSONValue)] = []
            if let customer = candidate.customerID { members.append(("customer_id", .string(customer))) }
            if let payout = candidate.payoutID { members.append(("payout_id", .string(payout))) }
            members.append(("invoice_ids", .array(candidate.invoiceIDs.prefix(100).map { .string($0) })))
            members.append(("rule", .string(candidate.rule.rawValue)))
            members.append(("score", confidence(candidate.score)))
            members.append(("why", .string(String(candidate.why.prefix(500)))))
            return .object(JSONObject(members))
        }
        var data: [(String, JSONValue)] = [
            ("entry_id", .string(decision.entryID)), ("reason", .string(decision.reason?.rawValue ?? ExceptionReason.noMatch.rawValue)),
            ("candidates", .array(candidates)), ("amount", .money(decision.amount)), ("currency", .string(decision.amount.currency.code)),
        ]
        if let last = decision.notes.last { data.append(("detail", .string(String(last.prefix(1000))))) }
        context.events.emit("reconciliation.exception", id: EventIdentity.reconciliationException(entryID: decision.entryID),
                            subject: decision.candidateCustomers.first, data)
    }

    /// `payment.confirmed` for money a bank credit brought to a customer (SPEC section 2).
    static func confirmed(_ record: BankEntryRecord, customer: String, result: PaymentApplicationResult, balance: Money, credit: Money,
                          _ context: HandlerContext) {
        let allocations: [JSONValue] = result.allocations.map { allocation in
            .object(JSONObject([("invoice_id", .string(allocation.invoiceID)), ("amount", .money(allocation.amount)),
                                ("invoice_balance", .money(allocation.invoiceBalance))]))
        }
        let method = PaymentMethod.bankTransfer
        context.events.emit("payment.confirmed", id: EventIdentity.bankCreditConfirmed(entryID: record.entryID), subject: customer, [
            ("entry_id", .string(record.entryID)), ("customer_id", .string(customer)), ("amount", .money(record.amount)),
            ("currency", .string(record.amount.currency.code)), ("method", .string(method.rawValue)),
        ] + (method.family.map { [("method_family", .string($0.rawValue))] } ?? []) + [
            ("allocations", .array(allocations)), ("unapplied_amount", .money(result.unapplied)), ("customer_balance", .money(balance)),
            ("credit_balance", .money(credit)),
        ])
    }
}

/// The books of one statement's credits, kept in memory while its decisions are made and
/// written at the end in a few statements (`Store.saveBankBookings`) instead of some ten round
/// trips per credit. The customers are locked and the invoices loaded under the locks, so the
/// working copies are the books; every decision is booked with CustomerBooks as usual.
final class BankBookings {
    private var invoices: [String: Invoice]
    private var balances: [String: [Currency: Money]]
    private var credit: [String: [Currency: Money]]
    private var changed: [String: Invoice] = [:]
    private var applications: [(customerID: String, application: Application)] = []
    private var lots: [(customerID: String, lot: CreditLot)] = []
    private var journal: [(id: String, entry: JournalEntry)] = []

    init(invoices: [String: Invoice], balances: [String: [Currency: Money]], credit: [String: [Currency: Money]]) {
        self.invoices = invoices
        self.balances = balances
        self.credit = credit
    }

    /// Journal entries with the ids `Store.postJournal` would give them.
    func post(_ entries: [JournalEntry], cause: [String]) -> [(id: String, entry: JournalEntry)] {
        let posted = entries.enumerated().map { (StableID.make(cause + ["journal", String($0.offset)]), $0.element) }
        journal += posted
        return posted
    }

    /// Books one customer decision and emits its events (as `EventFactory.booksChanged` and
    /// `payment.confirmed` would after loadBooks / saveBooks).
    func apply(_ decision: ReconciliationDecision, customer: String, record: BankEntryRecord, cause: [String], _ context: HandlerContext) throws {
        let currency = record.amount.currency
        var books = CustomerBooks(customerID: customer, invoices: decision.allocations.map { allocation in
            guard let invoice = invoices[allocation.invoiceID] else { preconditionFailure("invoice \(allocation.invoiceID) of a decision was not loaded") }
            return invoice
        }, lots: [], applications: [])
        let result = try books.applyBankCredit(entryID: record.entryID, received: record.amount, allocations: decision.allocations)
        for invoice in books.changedInvoices {
            invoices[invoice.id] = invoice
            changed[invoice.id] = invoice
        }
        applications += books.newApplications.map { (customer, $0) }
        lots += books.newLots.map { (customer, $0) }
        let posted = post(books.journal, cause: cause)
        for (id, entry) in posted { context.events.ledgerEntryPosted(id: id, entry) }
        for change in books.statusChanges { context.events.invoiceStatusChanged(change) }
        let settled = decision.allocations.reduce(Money.zero(currency)) { $0 + $1.settled }
        let balance = (balances[customer]?[currency] ?? .zero(currency)) - settled
        balances[customer, default: [:]][currency] = balance
        var total = credit[customer]?[currency] ?? .zero(currency)
        if result.unapplied.isPositive {
            total += result.unapplied
            credit[customer, default: [:]][currency] = total
            guard let entryID = CustomerBooks.creditMoveEntryID(in: currency, among: posted) else {
                preconditionFailure("credit of \(customer) moved without a journal entry")
            }
            context.events.creditBalanceChanged(customerID: customer, total, journalEntryID: entryID)
        }
        ReconciliationHandlers.confirmed(record, customer: customer, result: result, balance: balance, credit: total, context)
    }

    func save(_ store: Store) throws {
        try store.saveBankBookings(invoices: changed.keys.sorted().map { changed[$0]! }, applications: applications, lots: lots, journal: journal)
    }
}

/// The stored explanation of a decision (`reconciliation_decisions.explanation`), which
/// `receivablesd reconcile explain` prints.
enum Explanation {
    static func json(_ decision: ReconciliationDecision, kind: String, _ context: HandlerContext) -> JSONValue {
        let candidates: [JSONValue] = decision.candidates.enumerated().map { rank, candidate in
            let subject: (String, String)
            switch candidate.subject {
            case .invoice(let id): subject = ("invoice", id)
            case .customer(let id): subject = ("customer", id)
            case .payout(let id): subject = ("payout", id)
            }
            return .object(JSONObject([
                ("rank", .number(String(rank + 1))), ("subject", .string(subject.0)), ("id", .string(subject.1)),
                ("customer_id", .optional(candidate.customerID)), ("invoice_ids", .array(candidate.invoiceIDs.map { .string($0) })),
                ("rule", .string(candidate.rule.rawValue)), ("score", .number(String(candidate.score))), ("won", .bool(candidate.won)),
                ("why", .string(candidate.why)),
            ]))
        }
        let allocations: [JSONValue] = decision.allocations.map { allocation in
            .object(JSONObject([("invoice_id", .string(allocation.invoiceID)), ("paid", .money(allocation.paid)),
                                ("written_off", .money(allocation.writtenOff))]))
        }
        return .object(JSONObject([
            ("kind", .string(kind)), ("by", .string(context.envelope.source + " " + context.envelope.id)),
            ("state", .string(decision.state.rawValue)), ("reason", .optional(decision.reason?.rawValue)),
            ("rule", .optional(decision.rule?.rawValue)), ("rule_number", decision.rule.map { .number(String($0.number)) } ?? .null),
            ("confidence", .number(String(decision.confidence))), ("customer_id", .optional(decision.customerID)),
            ("amount", .money(decision.amount)), ("currency", .string(decision.amount.currency.code)),
            ("allocations", .array(allocations)), ("to_credit", .money(decision.toCredit)), ("fees", .money(decision.fees)),
            ("payout_id", .optional(decision.payout?.payoutID)),
            ("candidates", .array(candidates)), ("notes", .array(decision.notes.map { .string($0) })),
        ]))
    }
}

/// Bank files and connector messages → entry rows with their identities (SPEC section 3: the
/// same booking seen twice is recognised by bank reference and account).
enum BankEntryIntake {
    /// direction|currency|amount: what must agree when the same identity comes again.
    static func fingerprint(isCredit: Bool, amount: Money) -> String {
        "\(isCredit ? "credit" : "debit")|\(amount.currency.code)|\(amount.minorUnits)"
    }

    static func record(_ command: BankCreditReceived, source: String, eventID: String) -> BankEntryRecord {
        let reference = command.bankReference ?? command.entryID
        return BankEntryRecord(
            entryID: command.entryID, identity: BankEntryIdentity(account: command.account, reference: reference), isCredit: true,
            amount: command.amount, bookingDate: command.bookingDate.description, valueDate: command.valueDate?.description,
            debtorName: command.debtorName, debtorAccount: command.debtorAccount.map(MatchKey.account), endToEndID: command.endToEndID,
            remittanceInfo: command.remittanceInfo, structuredReference: command.structuredReference, transactionCode: nil, reversal: false,
            originFormat: "connector", statementID: nil, source: source, eventID: eventID,
            fingerprint: fingerprint(isCredit: true, amount: command.amount), state: BankCreditState.exception.rawValue)
    }

    /// Every booked entry of the statements, in file order. Pending and informational advices
    /// (camt `PDNG`, `INFO`) are not money yet and zero amounts move none: both are left out. A
    /// batch booking whose transactions are all credits with amounts adding up to the entry is
    /// split into one credit per transaction (each has its own payer and remittance).
    static func records(_ statements: [BankStatement], source: String, eventID: String) -> [BankEntryRecord] {
        var records: [BankEntryRecord] = []
        for statement in statements {
            var occurrences: [String: Int] = [:]
            for entry in statement.entries {
                guard entry.status == nil || entry.status == "BOOK", entry.amount.isPositive else { continue }
                let isCredit = entry.creditDebit == .credit
                let parts = isCredit ? transactions(of: entry) : nil
                let remittance = entry.remittanceInfo ?? joined(entry.transactions.compactMap(\.remittanceInfo))
                let reference: String
                let publicID: String
                if entry.entryIDIsDigest {
                    let first = BankEntryIdentity.digestReference(account: entry.account, amount: entry.amount, credit: isCredit,
                                                                  bookingDate: entry.bookingDate?.description, endToEndID: entry.endToEndID,
                                                                  structuredReference: entry.structuredReference, remittance: remittance, occurrence: 0)
                    let occurrence = occurrences[first, default: 0]
                    occurrences[first] = occurrence + 1
                    reference = occurrence == 0 ? first : BankEntryIdentity.digestReference(
                        account: entry.account, amount: entry.amount, credit: isCredit, bookingDate: entry.bookingDate?.description,
                        endToEndID: entry.endToEndID, structuredReference: entry.structuredReference, remittance: remittance, occurrence: occurrence)
                    publicID = reference
                } else {
                    reference = entry.entryID
                    publicID = entry.entryID
                }
                func make(_ id: String, _ reference: String, amount: Money, details: BankTransactionDetails?) -> BankEntryRecord {
                    BankEntryRecord(
                        entryID: id, identity: BankEntryIdentity(account: entry.account, reference: reference), isCredit: isCredit, amount: amount,
                        bookingDate: entry.bookingDate?.description, valueDate: entry.valueDate?.description,
                        debtorName: details?.debtorName ?? entry.debtorName, debtorAccount: (details?.debtorAccount ?? entry.debtorAccount).map(MatchKey.account),
                        endToEndID: details?.endToEndID ?? entry.endToEndID, remittanceInfo: details.map { $0.remittanceInfo } ?? remittance,
                        structuredReference: details?.structuredReference ?? entry.structuredReference,
                        transactionCode: details?.bankTransactionCode ?? entry.bankTransactionCode, reversal: entry.reversal,
                        originFormat: statement.format.rawValue, statementID: statement.statementID ?? entry.statementID, source: source, eventID: eventID,
                        fingerprint: fingerprint(isCredit: isCredit, amount: amount),
                        state: isCredit ? BankCreditState.exception.rawValue : "recorded")
                }
                if let parts {
                    for (index, details) in parts.enumerated() {
                        records.append(make("\(publicID)/\(index + 1)", "\(reference)/\(index + 1)", amount: details.amount!, details: details))
                    }
                } else {
                    records.append(make(publicID, reference, amount: entry.amount, details: nil))
                }
            }
        }
        return records
    }

    /// The transactions of a batch credit, when they can stand as credits of their own.
    static func transactions(of entry: BankEntry) -> [BankTransactionDetails]? {
        guard entry.transactions.count >= 2,
              entry.transactions.allSatisfy({ $0.creditDebit == .credit && $0.amount?.currency == entry.amount.currency && ($0.amount?.isPositive ?? false) })
        else { return nil }
        let total = entry.transactions.reduce(Money.zero(entry.amount.currency)) { $0 + ($1.amount ?? .zero(entry.amount.currency)) }
        return total == entry.amount ? entry.transactions : nil
    }

    static func joined(_ texts: [String]) -> String? { texts.isEmpty ? nil : texts.joined(separator: " ") }
}
