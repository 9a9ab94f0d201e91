import ARDomain
import PropertyBased
import Testing
import TestSupport

/// One event id per fact (issue 14, SPEC section 2): random histories of one customer's books run
/// through a simulation of the daemon's seam (inbox, held messages released inside the releasing
/// message's transaction, batches rolled back and narrowed down to single messages, rollback then
/// retry, redeliveries and business duplicates), with the domain's decisions (`CustomerBooks`), the
/// transition numbering (`changedInvoices`, `statusChanges`) and the id rule (`EventIdentity`) that
/// the daemon uses. An outbox keyed by event id (as the real one is) must then hold exactly one
/// `invoice.status_changed` per transition of the domain's own history, which an independent model
/// (`BooksModel`) keeps, and a retried message must reproduce the ids of its rolled-back attempt.
@Suite struct EventIdentityPropertyTests {
    static let cases = 200
    static let steps = 45

    @Test func oneStatusEventPerTransitionOverRandomHistories() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var simulation = Simulation(seed: seed)
            simulation.run(steps: Self.steps)
            let problems = simulation.finalProblems()
            if !problems.isEmpty {
                Issue.record("seed \(seed):\n  \(simulation.log.suffix(12).joined(separator: "\n  "))\nproblems:\n  \(problems.prefix(10).joined(separator: "\n  "))")
            }
        }
    }

    /// The two histories of issue 14, as pure regression cases.
    @Test func issue14Histories() {
        // (a) JPY invoice paid in full by a card payment with an explicit allocation, then refunded in full.
        var a = Simulation(seed: 1)
        a.commitAlone(Message(id: "e1", operation: .issue(id: "I1", currency: jpy, minor: 120_000)))
        a.commitAlone(Message(id: "e2", operation: .pay(id: "P1", currency: jpy, minor: 120_000, explicit: [("I1", 120_000)])))
        a.commitAlone(Message(id: "e3", operation: .takeBack(paymentID: "P1", minor: 120_000, reference: "R1")))
        #expect(a.statusEvents == ["I1 new->open 120000", "I1 open->paid 0", "I1 paid->open 120000"])
        #expect(a.finalProblems().isEmpty, "\(a.finalProblems())")
        // (b) a refund before its payment (held), the payment (releases it), a redelivered copy of the refund.
        var b = Simulation(seed: 2)
        b.commitAlone(Message(id: "e1", operation: .issue(id: "I2", currency: jpy, minor: 90_000)))
        b.commitAlone(Message(id: "e2", operation: .pay(id: "P0", currency: jpy, minor: 30_000, explicit: [("I2", 30_000)])))
        let refund = Message(id: "e3", operation: .takeBack(paymentID: "P2", minor: 10_000, reference: "R2"))
        b.commitAlone(refund)
        b.commitAlone(Message(id: "e4", operation: .pay(id: "P2", currency: jpy, minor: 60_000, explicit: [("I2", 60_000)])))
        b.commitAlone(refund)                                    // redelivered: same event id
        b.commitAlone(Message(id: "e5", operation: refund.operation))  // re-sent under a new event id
        #expect(b.statusEvents == ["I2 new->open 90000", "I2 open->partially_paid 60000", "I2 partially_paid->paid 0",
                                   "I2 paid->partially_paid 10000"])
        #expect(b.finalProblems().isEmpty, "\(b.finalProblems())")
    }

    // MARK: the simulation

    enum Operation {
        case issue(id: String, currency: Currency, minor: Int64)
        case pay(id: String, currency: Currency, minor: Int64, explicit: [(String, Int64)])
        case takeBack(paymentID: String, minor: Int64, reference: String)
        case creditNote(id: String, currency: Currency, minor: Int64, invoiceID: String?)
        case adjust(invoiceID: String, minor: Int64)
        case void(invoiceID: String)
        case writeOff(invoiceID: String)
    }

    struct Message {
        let id: String
        let operation: Operation
    }

    /// Everything a transaction can change; a transaction works on a copy and commits by replacing it.
    struct Database {
        var invoices: [String: Invoice] = [:]
        var lots: [CreditLot] = []
        var applications: [Application] = []
        var nextRowID: Int64 = 0
        var journalIDs: Set<String> = []
        var inbox: Set<String> = []
        var payments: [String: Currency] = [:]
        var takeBacks: Set<String> = []
        var creditNotes: Set<String> = []
        /// Held messages in arrival order, with what each waits for ("payment P1", "invoice I3").
        var held: [(message: Message, waitingFor: String)] = []
        /// The outbox: event id -> payload, in insertion order (the real one has a unique event id).
        var outbox: [String: String] = [:]
        var outboxOrder: [String] = []
        /// The independent model and the transitions of the domain's own history it saw committed.
        var model = BooksModel()
        var history: [String] = []
    }

    struct Simulation {
        var rng: SplitMix
        var database = Database()
        var log: [String] = []
        var problems: [String] = []
        /// Messages published but not yet delivered (a redelivery goes back here).
        var queue: [Message] = []
        var sent: [Message] = []
        var counter = 0

        init(seed: UInt64) { rng = SplitMix(state: seed) }

        var statusEvents: [String] {
            database.outboxOrder.compactMap { database.outbox[$0] }.filter { $0.hasPrefix("status ") }.map { String($0.dropFirst(7)) }
        }

        // MARK: driving

        mutating func run(steps: Int) {
            for _ in 0..<steps {
                publishSome()
                deliverSome()
            }
            while !queue.isEmpty { deliverSome() }
        }

        /// New messages, often out of their causal order (a refund before its payment, an
        /// adjustment before its invoice), plus redeliveries and re-sends under a new event id.
        mutating func publishSome() {
            let issued = database.model.invoices.keys.sorted()
            let known = (issued + queue.compactMap { if case .issue(let id, _, _) = $0.operation { id } else { nil } }).sorted()
            let roll = rng.int(0...99)
            switch roll {
            case 0..<18:
                let id = "I\(next())"
                let currency = rng.chance(50) ? usd : jpy
                queue.append(fresh(.issue(id: id, currency: currency, minor: amount(currency))))
            case 18..<45:
                let currency = rng.chance(50) ? usd : jpy
                var explicit: [(String, Int64)] = []
                let candidates = known.filter { invoiceCurrency($0) == currency }
                if rng.chance(60), let target = rng.pick(candidates) {
                    let live = database.model.invoices[target].map { $0.isLive ? $0.balance : 0 } ?? amount(currency)
                    if live > 0 { explicit.append((target, rng.chance(50) ? live : Int64(rng.int(1...Int(live))))) }
                }
                let total = explicit.reduce(Int64(0)) { $0 + $1.1 } + (rng.chance(40) ? amount(currency) / 3 : 0)
                let payment = fresh(.pay(id: "P\(next())", currency: currency, minor: max(1, total), explicit: explicit))
                // A refund or chargeback that arrives before its payment: held, released by it.
                if rng.chance(25) {
                    queue.append(fresh(.takeBack(paymentID: payID(payment), minor: max(1, payMinor(payment) / 2), reference: "R\(next())")))
                }
                queue.append(payment)
            case 45..<60:
                let standing = database.model.broughtIn.keys.filter { $0.kind == .payment && database.model.standing(of: $0) > 0 }.sorted { $0.id < $1.id }
                if let origin = rng.pick(standing) {
                    let all = database.model.standing(of: origin)
                    queue.append(fresh(.takeBack(paymentID: origin.id, minor: rng.chance(40) ? all : Int64(rng.int(1...Int(all))), reference: "R\(next())")))
                }
            case 60..<68:
                let currency = rng.chance(50) ? usd : jpy
                queue.append(fresh(.creditNote(id: "CN\(next())", currency: currency, minor: amount(currency) / 4 + 1,
                                               invoiceID: rng.pick(known.filter { invoiceCurrency($0) == currency }))))
            case 68..<76:
                if let target = rng.pick(known) {
                    let current = database.model.invoices[target]?.amount ?? amount(usd)
                    queue.append(fresh(.adjust(invoiceID: target, minor: max(0, current + Int64(rng.int(-3...3)) * max(1, current / 10)))))
                }
            case 76..<80:
                if let target = rng.pick(known) { queue.append(fresh(.void(invoiceID: target))) }
            case 80..<84:
                if let target = rng.pick(known) { queue.append(fresh(.writeOff(invoiceID: target))) }
            case 84..<93:
                if let again = rng.pick(sent) { queue.append(again) }  // redelivery: the same event id
            default:
                if let again = rng.pick(sent) { queue.append(Message(id: "e\(next())", operation: again.operation)) }  // re-sent, new id
            }
        }

        /// Delivers a batch the way the consumer does, with the hazards of the real seam.
        mutating func deliverSome() {
            guard !queue.isEmpty else { return }
            let size = min(queue.count, rng.int(1...4))
            let batch = Array(queue.prefix(size))
            queue.removeFirst(size)
            sent += batch
            switch rng.int(0...99) {
            case 0..<55:
                commit(batch)
            case 55..<75:
                // The batch fails at the end (a database error): nothing commits; then it is narrowed
                // down to one message per transaction, and one of them fails again and is redelivered.
                _ = attempt(batch)
                let culprit = rng.int(0...(batch.count - 1))
                for (index, message) in batch.enumerated() {
                    if index == culprit, rng.chance(50) {
                        _ = attempt([message])
                        queue.append(message)
                    } else {
                        commit([message])
                    }
                }
            default:
                // Rolled back (a deadlock with another instance), then retried on the same state:
                // the retry must produce exactly the same events under the same ids.
                let first = attempt(batch)
                let retried = commit(batch)
                if first != retried {
                    problems.append("retry of \(batch.map(\.id)) gave other events: \(first) vs \(retried)")
                }
            }
        }

        mutating func commitAlone(_ message: Message) {
            sent.append(message)
            commit([message])
        }

        /// Runs a batch in a transaction and keeps it; returns the events it wrote.
        @discardableResult
        mutating func commit(_ batch: [Message]) -> [String] {
            var transaction = database
            let events = apply(batch, to: &transaction)
            database = transaction
            return events
        }

        /// Runs a batch in a transaction and rolls it back; returns the events it would have written.
        mutating func attempt(_ batch: [Message]) -> [String] {
            var transaction = database
            return apply(batch, to: &transaction)
        }

        // MARK: the seam

        mutating func apply(_ batch: [Message], to transaction: inout Database) -> [String] {
            var written: [String] = []
            for message in batch {
                var savepoint = transaction
                if handle(message, released: false, in: &savepoint, written: &written) { transaction = savepoint }
            }
            return written
        }

        /// One message in its savepoint; false when it was rejected (the savepoint is discarded).
        mutating func handle(_ message: Message, released: Bool, in transaction: inout Database, written: inout [String]) -> Bool {
            if !released {
                guard transaction.inbox.insert(message.id).inserted else { return true }  // duplicate delivery
            }
            // Business identity and holding.
            switch message.operation {
            case .issue(let id, _, _) where transaction.invoices[id] != nil: return true
            case .pay(let id, _, _, _) where transaction.payments[id] != nil: return true
            case .takeBack(let paymentID, _, _) where transaction.payments[paymentID] == nil:
                transaction.held.append((message, "payment \(paymentID)"))
                return true
            case .takeBack(_, _, let reference) where transaction.takeBacks.contains(reference): return true
            case .creditNote(let id, _, _, _) where transaction.creditNotes.contains(id): return true
            case .adjust(let id, _) where transaction.invoices[id] == nil, .void(let id) where transaction.invoices[id] == nil,
                 .writeOff(let id) where transaction.invoices[id] == nil:
                transaction.held.append((message, "invoice \(id)"))
                return true
            default: break
            }
            var books = CustomerBooks(customerID: "C1", invoices: Array(transaction.invoices.values), lots: transaction.lots,
                                      applications: transaction.applications)
            var model = transaction.model
            let modelBefore = model
            let expected: String?
            do {
                expected = try decide(message.operation, books: &books, model: &model, transaction: transaction)
            } catch {
                return false  // the domain refused it (the model must agree)
            }
            if let expected {
                problems.append("\(message.id) \(message.operation): accepted, the model expected \(expected)")
                return false
            }
            log.append("\(message.id) \(message.operation)")
            // The domain's own history: each invoice whose status moved in this decision, per the model.
            for (id, invoice) in model.invoices.sorted(by: { $0.key < $1.key }) {
                let before = modelBefore.invoices[id]?.status
                if before != invoice.status { transaction.history.append("\(id) \(before?.rawValue ?? "new")->\(invoice.status.rawValue) \(invoice.balance)") }
            }
            transaction.model = model
            save(books, cause: message.id, into: &transaction, written: &written)
            switch message.operation {
            case .pay(let id, let currency, _, _):
                transaction.payments[id] = currency
                release("payment \(id)", into: &transaction, written: &written)
            case .issue(let id, _, _):
                release("invoice \(id)", into: &transaction, written: &written)
            case .takeBack(_, _, let reference): transaction.takeBacks.insert(reference)
            case .creditNote(let id, _, _, _): transaction.creditNotes.insert(id)
            case .adjust, .void, .writeOff: break
            }
            return true
        }

        /// Held messages waiting for what just arrived, applied inside the releasing transaction.
        mutating func release(_ what: String, into transaction: inout Database, written: inout [String]) {
            let waiting = transaction.held.filter { $0.waitingFor == what }.map(\.message)
            transaction.held.removeAll { $0.waitingFor == what }
            for message in waiting {
                var savepoint = transaction
                if handle(message, released: true, in: &savepoint, written: &written) { transaction = savepoint }
            }
        }

        /// Runs the decision on the books and on the model; nil when the model agrees, else what it expected.
        func decide(_ operation: Operation, books: inout CustomerBooks, model: inout BooksModel, transaction: Database) throws -> String? {
            switch operation {
            case .issue(let id, let currency, let minor):
                let invoice = Invoice(id: id, customerID: "C1", number: "N" + id, amount: Money(minorUnits: minor, currency: currency),
                                      issueDate: date("2026-01-01"), dueDate: date("2026-01-31").adding(days: Int(minor % 3)))
                books.issue(invoice)
                model.issue(invoice)
                return nil
            case .pay(let id, let currency, let minor, let explicit):
                let requests = explicit.map { RequestedAllocation(invoiceID: $0.0, amount: Money(minorUnits: $0.1, currency: currency)) }
                let unknown = Set(explicit.map(\.0).filter { transaction.invoices[$0] == nil })
                let amount = Money(minorUnits: minor, currency: currency)
                let expected = model.receive(id, amount, explicit: explicit.map { ($0.0, Money(minorUnits: $0.1, currency: currency)) })
                do {
                    _ = try books.receive(MoneyOrigin(.payment, id), amount: amount, cashAccount: .cash("card"), explicit: requests, unknownInvoices: unknown)
                } catch {
                    if expected.rejection == nil { return "success, got \(error.code)" }
                    throw error
                }
                return expected.rejection
            case .takeBack(let paymentID, let minor, let reference):
                let origin = MoneyOrigin(.payment, paymentID)
                guard let currency = transaction.payments[paymentID], minor <= model.standing(of: origin) else {
                    throw BooksRejection("amount_exceeds_balance", "more than the payment has")
                }
                _ = model.takeBack(origin, minor)
                books.takeBack(Money(minorUnits: minor, currency: currency), of: origin, kind: .refund, reference: reference)
                return nil
            case .creditNote(let id, let currency, let minor, let invoiceID):
                let amount = Money(minorUnits: minor, currency: currency)
                let expected = model.creditNote(id, amount, invoiceID: invoiceID)
                return try agree(expected) {
                    try books.issueCreditNote(id: id, amount: amount, invoiceID: invoiceID,
                                              invoiceKnown: invoiceID.map { transaction.invoices[$0] != nil } ?? false)
                }
            case .adjust(let id, let minor):
                let amount = Money(minorUnits: minor, currency: transaction.invoices[id]!.currency)
                let expected = model.adjust(id, to: amount)
                return try agree(expected) { try books.adjust(invoiceID: id, to: amount) }
            case .void(let id):
                let expected = model.void(id)
                return try agree(expected) { try books.void(invoiceID: id) }
            case .writeOff(let id):
                let expected = model.writeOff(id)
                return try agree(expected) { try books.writeOff(invoiceID: id) }
            }
        }

        func agree(_ expected: String?, _ body: () throws -> Void) throws -> String? {
            do {
                try body()
            } catch let error as BooksRejection {
                if expected == nil { return "success, got \(error.code)" }
                throw error
            }
            return expected
        }

        /// What `Store.saveBooks` and `EventFactory.booksChanged` do: rows back (stored ids for new
        /// lots and applications), journal entries under ids from the cause, events under fact ids.
        mutating func save(_ books: CustomerBooks, cause: String, into transaction: inout Database, written: inout [String]) {
            for invoice in books.changedInvoices { transaction.invoices[invoice.id] = invoice }
            transaction.lots = books.lots.map { lot in
                guard lot.id == nil else { return lot }
                transaction.nextRowID += 1
                return CreditLot(id: transaction.nextRowID, origin: lot.origin, original: lot.original, remaining: lot.remaining,
                                 reservedForInvoice: lot.reservedForInvoice)
            }
            transaction.applications = books.applications.map { application in
                guard application.id == nil else { return application }
                transaction.nextRowID += 1
                return Application(id: transaction.nextRowID, invoiceID: application.invoiceID, origin: application.origin,
                                   amount: application.amount, unwound: application.unwound)
            }
            var posted: [(id: String, entry: JournalEntry)] = []
            for (index, entry) in books.journal.enumerated() {
                let id = StableID.make([cause, "journal", String(index)])
                if !transaction.journalIDs.insert(id).inserted { problems.append("journal entry id \(id) written twice") }
                posted.append((id, entry))
            }
            func write(_ id: String, _ payload: String) {
                if let existing = transaction.outbox[id] {
                    if existing != payload { problems.append("event id \(id) names two facts: \(existing) / \(payload)") }
                    return  // ON CONFLICT (event_id) DO NOTHING
                }
                transaction.outbox[id] = payload
                transaction.outboxOrder.append(id)
                written.append(id)
            }
            for (id, entry) in posted { write(EventIdentity.ledgerEntryPosted(journalEntryID: id), "ledger \(id) \(entry.kind.rawValue)") }
            for change in books.statusChanges {
                write(EventIdentity.invoiceStatusChanged(invoiceID: change.invoice.id, sequence: change.sequence),
                      "status \(change.invoice.id) \(change.from?.rawValue ?? "new")->\(change.to.rawValue) \(change.invoice.balance.minorUnits)")
            }
            for balance in books.creditChanges {
                guard let entry = CustomerBooks.creditMoveEntryID(in: balance.currency, among: posted) else {
                    problems.append("credit moved to \(balance) without a journal entry")
                    continue
                }
                write(EventIdentity.creditBalanceChanged(customerID: "C1", currency: balance.currency, journalEntryID: entry),
                      "credit \(balance.currency) \(balance.minorUnits) \(entry)")
            }
        }

        // MARK: checks

        func finalProblems() -> [String] {
            var found = problems
            // Exactly one status event per transition of the domain's own history, in the same order.
            if statusEvents != database.history {
                found.append("status events \(statusEvents.count) vs domain transitions \(database.history.count):\n    events  \(statusEvents)\n    history \(database.history)")
            }
            // Per invoice the committed transitions are numbered 1, 2, 3, ... and chain from/to.
            var lastTo: [String: String] = [:]
            for event in statusEvents {
                let parts = event.split(separator: " ")
                let invoice = String(parts[0])
                let fromTo = parts[1].split(separator: ">").map { String($0.dropLast($0.hasSuffix("-") ? 1 : 0)) }
                if (lastTo[invoice] ?? "new") != fromTo[0] { found.append("\(invoice): \(event) does not follow \(lastTo[invoice] ?? "new")") }
                lastTo[invoice] = fromTo[1]
            }
            for (id, invoice) in database.invoices {
                let count = statusEvents.filter { $0.hasPrefix(id + " ") }.count
                if invoice.statusSequence != Int64(count) { found.append("\(id): stored transition number \(invoice.statusSequence), \(count) events") }
            }
            return found
        }

        // MARK: values

        mutating func next() -> Int { counter += 1; return counter }
        mutating func fresh(_ operation: Operation) -> Message { Message(id: "e\(next())", operation: operation) }
        mutating func amount(_ currency: Currency) -> Int64 {
            Int64(rng.int(1...20)) * (currency == jpy ? 1_000 : 10_000) + (rng.chance(30) ? Int64(rng.int(1...999)) : 0)
        }
        func payID(_ message: Message) -> String { if case .pay(let id, _, _, _) = message.operation { id } else { "?" } }
        func payMinor(_ message: Message) -> Int64 { if case .pay(_, _, let minor, _) = message.operation { minor } else { 1 } }
        func invoiceCurrency(_ id: String) -> Currency? {
            if let invoice = database.invoices[id] { return invoice.currency }
            for message in queue + sent { if case .issue(id, let currency, _) = message.operation { return currency } }
            return nil
        }
    }
}
