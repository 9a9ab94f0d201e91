import AMQPClient
import ARContract
import ARDomain
@testable import Daemon
import Foundation
import PostgresClient
import Store
import Testing
import TestSupport

/// The payments of a batch keep their writes back and send them as one statement per table
/// (`WriteBehind`). These tests hold it to its rule: the books come out exactly as when every
/// message is applied alone, a rejected message leaves nothing, and rows kept back are never
/// lost with a later savepoint. Each test runs in a private database, migrated.
@Suite(.serialized) struct WriteBehindTests {
    static func payment(_ tag: UInt64, _ paymentID: String, customer: String, amount: String, allocations: [(String, String)] = []) -> AMQPDelivery {
        var data: [(String, JSONValue)] = [
            ("payment_id", .string(paymentID)), ("customer_id", .string(customer)), ("currency", .string("EUR")),
            ("amount", .string(amount)), ("method", .string("card")), ("received_at", .string("2026-11-15T10:00:00Z")),
        ]
        if !allocations.isEmpty {
            data.append(("allocations", .array(allocations.map { .object(JSONObject([("invoice_id", .string($0.0)), ("amount", .string($0.1))])) })))
        }
        return PipelineFixtures.delivery(tag, id: "e-\(paymentID)", type: "payment.succeeded", data)
    }

    /// Everything a payment writes, without the ids and clocks the database assigns.
    static func books(_ db: PostgresConnection) throws -> [String] {
        let queries = [
            "SELECT 'invoice ' || invoice_id || ' ' || balance_minor || ' ' || status || ' ' || status_seq AS row FROM invoices ORDER BY invoice_id",
            "SELECT 'payment ' || payment_id || ' ' || customer_id || ' ' || amount_minor || ' ' || fingerprint AS row FROM payments ORDER BY payment_id",
            "SELECT 'application ' || invoice_id || ' ' || origin_id || ' ' || amount_minor || ' ' || unwound_minor AS row FROM applications ORDER BY application_id",
            "SELECT 'lot ' || customer_id || ' ' || origin_id || ' ' || original_minor || ' ' || remaining_minor AS row FROM credit_lots ORDER BY lot_id",
            """
            SELECT 'line ' || e.entry_id || ' ' || e.customer_id || ' ' || e.kind || ' ' || l.line_no || ' ' || l.account || ' ' || COALESCE(l.invoice_id, '-')
                   || ' ' || l.debit_minor || ' ' || l.credit_minor AS row
            FROM journal_entries e JOIN journal_lines l USING (entry_id) ORDER BY e.entry_seq, l.line_no
            """,
            // The events in the order they will be published, with what they say (not when).
            "SELECT 'event ' || type || ' ' || COALESCE(((convert_from(body, 'UTF8')::jsonb -> 'data') - 'posted_at'::text)::text, '') AS row FROM outbox ORDER BY seq",
            "SELECT 'dead letter ' || event_id || ' ' || reason AS row FROM dead_letters ORDER BY event_id",
        ]
        return try queries.flatMap { try db.query($0).all.map { $0.requiredString("row") } }
    }

    /// Random payments (seeded) over three customers' invoices, with explicit allocations,
    /// overpayments that leave credit, payments naming another customer's invoice (rejected)
    /// and re-sent payment ids: applied as one batch, the books, journal, events and dead letters
    /// are exactly those of the same messages applied one per transaction.
    @Test(arguments: [1, 2, 3, 4, 5])
    func aBatchWritesWhatOneMessageAtATimeWrites(seed: UInt64) throws {
        var random = SplitMix(state: seed)
        let customers = ["C1", "C2", "C3"]
        var setup: [AMQPDelivery] = []
        var tag: UInt64 = 0
        func next() -> UInt64 { tag += 1; return tag }
        for customer in customers {
            setup.append(PipelineFixtures.customer(next(), customer))
            for number in 1...3 { setup.append(PipelineFixtures.invoice(next(), "\(customer)-I\(number)", customer: customer)) }
        }
        var traffic: [AMQPDelivery] = []
        for number in 0..<24 {
            let customer = customers[Int(random.next() % 3)]
            let amount = "\(10 + random.next() % 180).\(random.next() % 10)0"
            var allocations: [(String, String)] = []
            switch random.next() % 4 {
            case 0: allocations = [("\(customer)-I\(1 + random.next() % 3)", "5.00")]
            case 1: allocations = [("\(customers[Int(random.next() % 3)])-I1", "1.00")]  // another customer's invoice: rejected
            default: break
            }
            // Now and then a payment id sent again under a new event id (a conflict or a duplicate).
            let paymentID = number > 3 && random.next() % 6 == 0 ? "P\(number - 3)" : "P\(number)"
            traffic.append(Self.payment(next(), paymentID, customer: customer, amount: amount, allocations: allocations))
        }
        let pipeline = PipelineFixtures.pipeline()
        let alone = try PipelineFixtures.Scratch()
        defer { alone.close() }
        let batched = try PipelineFixtures.Scratch()
        defer { batched.close() }
        let aloneStore = Store(try alone.connect())
        let batchedStore = Store(try batched.connect())
        for store in [aloneStore, batchedStore] { _ = try pipeline.process(setup, store: store) }

        var aloneOutcomes: [Disposition] = []
        for delivery in traffic { aloneOutcomes += try pipeline.process([delivery], store: aloneStore) }
        let batchedOutcomes = try pipeline.process(traffic, store: batchedStore)
        #expect(batchedOutcomes == aloneOutcomes)
        #expect(aloneOutcomes.contains(.applied) && aloneOutcomes.contains { if case .rejected = $0 { true } else { false } },
                "the traffic has applied and rejected payments: \(aloneOutcomes)")
        let expected = try Self.books(aloneStore.db)
        let actual = try Self.books(batchedStore.db)
        let missing = expected.filter { !actual.contains($0) }, extra = actual.filter { !expected.contains($0) }
        #expect(actual == expected, "missing \(missing.prefix(5)), extra \(extra.prefix(5))\(missing.isEmpty && extra.isEmpty ? " (same rows, another order from \(zip(expected, actual).first { $0 != $1 } as Any))" : "")")
        #expect(expected.contains { $0.hasPrefix("lot ") }, "some payment left credit")
        #expect(batchedStore.db.transactionDepth == 0)
        let violations = try batchedStore.verify()
        #expect(violations.isEmpty, "\(violations)")
    }

    /// Sixteen payments of different customers in one batch write their rows with one statement
    /// per table: far fewer statements than sixteen batches of one (where nothing is kept back).
    @Test func aBatchOfPaymentsSendsOneStatementPerTable() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        let pipeline = PipelineFixtures.pipeline()
        let size = 16
        var tag: UInt64 = 0
        func next() -> UInt64 { tag += 1; return tag }
        var setup: [AMQPDelivery] = []
        for round in 0..<3 {
            for index in 0..<size {
                setup.append(PipelineFixtures.customer(next(), "C\(round)-\(index)"))
                setup.append(PipelineFixtures.invoice(next(), "I\(round)-\(index)", customer: "C\(round)-\(index)"))
            }
        }
        _ = try pipeline.process(setup, store: store)
        // Round 0 warms the prepared statements.
        _ = try pipeline.process((0..<size).map { PipelineFixtures.payment(next(), "P0-\($0)", customer: "C0-\($0)", allocateTo: "I0-\($0)") }, store: store)
        var before = store.db.statistics
        for index in 0..<size {
            #expect(try pipeline.process([PipelineFixtures.payment(next(), "P1-\(index)", customer: "C1-\(index)", allocateTo: "I1-\(index)")],
                                         store: store) == [.applied])
        }
        let oneByOne = (store.db.statistics - before).statements
        before = store.db.statistics
        let outcomes = try pipeline.process((0..<size).map { PipelineFixtures.payment(next(), "P2-\($0)", customer: "C2-\($0)", allocateTo: "I2-\($0)") },
                                            store: store)
        #expect(outcomes == Array(repeating: .applied, count: size))
        let batched = (store.db.statistics - before).statements
        print("statements for \(size) payments: \(oneByOne) one per transaction, \(batched) in one batch")
        // A payment alone writes its payment, invoice, application, journal entry and events with
        // five statements, plus BEGIN/COMMIT and the batch's bookkeeping; in a batch, those five
        // are sent once. Sixteen messages therefore save at least 5 × 15 statements.
        #expect(batched <= oneByOne - 5 * (size - 1), "\(batched) statements batched against \(oneByOne) one by one")
        #expect(try store.db.query("SELECT count(*) AS n FROM payments WHERE payment_id LIKE 'P2-%'").first?.int64("n") == Int64(size))
        #expect(try store.db.query("SELECT count(*) AS n FROM invoices WHERE invoice_id LIKE 'I2-%' AND status = 'paid'").first?.int64("n") == Int64(size))
    }

    /// Rows kept back inside a savepoint that rolls back go with it; the others commit. A flush
    /// inside a savepoint that then rolls back would undo earlier savepoints' rows in the
    /// database: the transaction fails rather than commit without them.
    @Test func keptBackRowsFollowTheirSavepoint() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        let pipeline = PipelineFixtures.pipeline()
        _ = try pipeline.process([PipelineFixtures.customer(1, "C1")], store: store)
        struct Marker: Error {}
        func insert(_ id: String) throws {
            try store.insertPayment(id: id, customerID: "C1", amount: Money(minorUnits: 100, currency: Currency(code: "EUR")!), method: "card",
                                    receivedAt: Instant(secondsSinceEpoch: 1_795_000_000), gatewayReference: nil, payoutID: id == "K2" ? "PO-1" : nil,
                                    fingerprint: "f-\(id)")
        }
        func payments() throws -> [String] {
            try store.db.query("SELECT payment_id FROM payments ORDER BY payment_id").all.map { $0.requiredString("payment_id") }
        }
        try store.transaction {
            try store.transaction {
                store.writingBehind = true
                defer { store.writingBehind = false }
                try insert("K1")
            }
            do {
                try store.transaction {
                    store.writingBehind = true
                    defer { store.writingBehind = false }
                    try insert("K2")
                    throw Marker()
                }
            } catch is Marker {}
            try store.transaction {
                store.writingBehind = true
                defer { store.writingBehind = false }
                try insert("K3")
            }
        }
        #expect(try payments() == ["K1", "K3"])

        var failure: PostgresError?
        do {
            try store.transaction {
                try store.transaction {
                    store.writingBehind = true
                    defer { store.writingBehind = false }
                    try insert("K4")
                }
                do {
                    try store.transaction {
                        try store.flushWriteBehind()  // K4 is written inside this savepoint...
                        throw Marker()                 // ...and rolled back with it
                    }
                } catch is Marker {
                    Issue.record("the savepoint's rollback undid an earlier savepoint's rows and was taken as a plain rejection")
                }
            }
        } catch let error as PostgresError {
            failure = error
        }
        #expect(failure?.message.contains("kept back") == true, "\(String(describing: failure))")
        #expect(try payments() == ["K1", "K3"], "nothing of the failed transaction commits")
        #expect(store.db.transactionDepth == 0)
        #expect(!store.writingBehind)
    }
}
