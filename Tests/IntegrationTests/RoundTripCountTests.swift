import AMQPClient
import ARContract
import ARDomain
@testable import Daemon
import Foundation
import Logging
import PostgresClient
import Store
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A migrated private database and a pipeline over it, for tests that drive `MessagePipeline.process`
/// directly (no broker, no daemon).
enum PipelineFixtures {
    /// A migrated private database; dropped by `close`.
    final class Scratch {
        let name: String
        let admin: PostgresConnection
        let configuration: PostgresConfiguration

        init() throws {
            let environment = try TestEnvironment.load()
            name = "receivablesd_rt\(getpid())_\(UInt32.random(in: 0..<UInt32.max))"
            let base = PostgresConfiguration(
                host: environment["RECEIVABLESD_DB_HOST"]!, port: Int(environment["RECEIVABLESD_DB_PORT"]!) ?? 5432,
                database: environment["RECEIVABLESD_DB_NAME"]!, user: environment["RECEIVABLESD_DB_USER"]!,
                password: environment["RECEIVABLESD_DB_PASSWORD"], applicationName: "receivablesd-pipelined-batch-tests")
            admin = try PostgresConnection(base)
            // CREATE DATABASE takes no parameters; the name is built from digits only.
            try admin.simpleQuery("CREATE DATABASE \(name)")
            var own = base
            own.database = name
            configuration = own
            try Migrator().migrate(try PostgresConnection(own))
        }

        func connect() throws -> PostgresConnection { try PostgresConnection(configuration) }

        func close() { _ = try? admin.simpleQuery("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    static func pipeline() -> MessagePipeline {
        var configuration = DaemonConfiguration(
            database: PostgresConfiguration(host: "unused", port: 1, database: "unused", user: "unused", password: nil),
            broker: AMQPConfiguration(host: "unused", port: 1, user: "receivablesd", password: "unused"))
        configuration.publishers = PublisherPolicy(allowed: ["billing": ["*"]])
        return MessagePipeline(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                               decoder: try! InboundDecoder())
    }

    static func delivery(_ tag: UInt64, id: String, type: String, _ data: [(String, JSONValue)]) -> AMQPDelivery {
        let body = encodeEvent(id: id, source: "billing-test", type: type, time: Instant(secondsSinceEpoch: 1_795_000_000), subject: nil,
                               data: .object(JSONObject(data)))
        return AMQPDelivery(deliveryTag: tag, redelivered: false, exchange: "ar.inbound", routingKey: type,
                            properties: AMQPProperties(contentType: "application/cloudevents+json", deliveryMode: 2, userID: "billing"), body: body)
    }

    static func invoice(_ tag: UInt64, _ invoiceID: String, customer: String) -> AMQPDelivery {
        delivery(tag, id: "e-\(invoiceID)", type: "invoice.issued", [
            ("invoice_id", .string(invoiceID)), ("customer_id", .string(customer)), ("number", .string("N-\(invoiceID)")),
            ("currency", .string("EUR")), ("amount", .string("100.00")), ("issue_date", .string("2026-11-01")),
            ("due_date", .string("2026-12-01")),
        ])
    }

    static func customer(_ tag: UInt64, _ id: String) -> AMQPDelivery {
        delivery(tag, id: "e-\(id)-\(tag)", type: "customer.upserted", [("customer_id", .string(id)), ("name", .string("Customer \(id)"))])
    }

    static func payment(_ tag: UInt64, _ paymentID: String, customer: String, allocateTo invoiceID: String) -> AMQPDelivery {
        delivery(tag, id: "e-\(paymentID)", type: "payment.succeeded", [
            ("payment_id", .string(paymentID)), ("customer_id", .string(customer)), ("currency", .string("EUR")),
            ("amount", .string("150.00")), ("method", .string("card")), ("received_at", .string("2026-11-15T10:00:00Z")),
            ("allocations", .array([.object(JSONObject([("invoice_id", .string(invoiceID)), ("amount", .string("100.00"))]))])),
        ])
    }
}

/// What the hot messages cost in statements and round trips (issue 12), per message in a batch
/// of 16 with prepared statements warm; printed for the record and bounded so a change that
/// brings the round trips back is noticed.
@Suite(.serialized) struct RoundTripCountTests {
    @Test func hotMessagesCostFewRoundTrips() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        let pipeline = PipelineFixtures.pipeline()
        let size = 16
        var tag: UInt64 = 0
        func next() -> UInt64 { tag += 1; return tag }
        var figures: [String: PostgresStatistics] = [:]
        func measure(_ type: String, _ batches: [[AMQPDelivery]]) throws {
            // The first batch warms the prepared statements; the second is measured.
            for (index, batch) in batches.enumerated() {
                let before = store.db.statistics
                let outcomes = try pipeline.process(batch, store: store)
                #expect(outcomes.allSatisfy { $0 == .applied }, "\(type): \(outcomes)")
                if index == batches.count - 1 { figures[type] = store.db.statistics - before }
            }
        }
        try measure("customer.upserted", (0..<2).map { round in (0..<size).map { PipelineFixtures.customer(next(), "C\(round)-\($0)") } })
        try measure("invoice.issued", (0..<2).map { round in (0..<size).map {
            PipelineFixtures.invoice(next(), "I\(round)-\($0)", customer: "C\(round)-\($0)")
        } })
        // A second, older-due invoice each, so a payment pays one explicitly and the rest oldest first.
        _ = try pipeline.process((0..<2).flatMap { round in (0..<size).map {
            PipelineFixtures.invoice(next(), "J\(round)-\($0)", customer: "C\(round)-\($0)")
        } }, store: store)
        try measure("payment.succeeded", (0..<2).map { round in (0..<size).map {
            PipelineFixtures.payment(next(), "P\(round)-\($0)", customer: "C\(round)-\($0)", allocateTo: "I\(round)-\($0)")
        } })
        var lines: [String] = []
        for type in ["customer.upserted", "invoice.issued", "payment.succeeded"] {
            let figure = figures[type] ?? PostgresStatistics()
            lines.append("\(type): \(Double(figure.statements) / Double(size)) statements, \(Double(figure.roundTrips) / Double(size)) round trips per message")
        }
        print("round trips (batch of \(size)):\n  " + lines.joined(separator: "\n  "))
        // Reads a decision waits for, per message, plus one Sync per batch (COMMIT); a message's
        // writes are checked by the next message's first wait (savepoints released unchecked).
        // customer.upserted: the inbox claim, the lock, whether anything waits for the customer and
        // its time zone. invoice.issued and payment.succeeded: the inbox claim, the locks, the stored
        // invoice or payment, whether anything waits for it, and the books. More means a read came back.
        let bounds = ["customer.upserted": 1, "invoice.issued": 1, "payment.succeeded": 1]
        for (type, perMessage) in bounds {
            let roundTrips = figures[type]?.roundTrips ?? .max
            #expect(roundTrips <= perMessage * size + 1, "\(type): \(roundTrips) round trips for \(size) messages")
        }
    }

    /// The inbox claim travels with a handler's first reads (payment.succeeded, invoice.issued):
    /// a re-delivery, in the same batch or a later one, must still be a duplicate with no effect,
    /// and a message for a customer not known yet must still be held and applied once it arrives.
    @Test func claimsSentWithTheFirstReadsStillStopRedeliveriesAndHold() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        let db = store.db
        let pipeline = PipelineFixtures.pipeline()
        func count(_ sql: String) throws -> Int64 { try db.query(sql).first?.int64("n") ?? -1 }

        let invoice = PipelineFixtures.invoice(2, "I1", customer: "C1")
        let payment = PipelineFixtures.payment(3, "P1", customer: "C1", allocateTo: "I1")
        // Customer unknown: both held (the payment behind the customer, the invoice too).
        #expect(try pipeline.process([invoice, payment], store: store) == [.held(waitingFor: "customer C1"), .held(waitingFor: "customer C1")])
        // Re-delivered while held: duplicates, nothing held twice.
        #expect(try pipeline.process([invoice, payment], store: store) == [.duplicate, .duplicate])
        #expect(try count("SELECT count(*) AS n FROM held_messages") == 2)
        // The customer arrives: both apply, once.
        #expect(try pipeline.process([PipelineFixtures.customer(1, "C1")], store: store) == [.applied])
        #expect(try pipeline.process([PipelineFixtures.customer(1, "C1")], store: store) == [.duplicate], "the same customer.upserted re-delivered")
        #expect(try count("SELECT count(*) AS n FROM payments WHERE payment_id = 'P1'") == 1)
        #expect(try count("SELECT count(*) AS n FROM invoices WHERE invoice_id = 'I1' AND status = 'paid'") == 1)
        // Re-delivered after applying, alone and twice in one batch: no effect at all.
        let journal = try count("SELECT count(*) AS n FROM journal_entries")
        let outbox = try count("SELECT count(*) AS n FROM outbox")
        #expect(try pipeline.process([payment, invoice, payment], store: store) == [.duplicate, .duplicate, .duplicate])
        #expect(try count("SELECT count(*) AS n FROM journal_entries") == journal)
        #expect(try count("SELECT count(*) AS n FROM outbox") == outbox)
        #expect(try count("SELECT count(*) AS n FROM outbox WHERE type = 'payment.confirmed'") == 1)
        // A new payment and its re-delivery in one batch: applied once, the copy a duplicate.
        // (I2 takes the 50.00 of credit P1 left; I3 owes its whole 100.00.)
        #expect(try pipeline.process([PipelineFixtures.invoice(4, "I2", customer: "C1")], store: store) == [.applied])
        #expect(try pipeline.process([PipelineFixtures.invoice(5, "I3", customer: "C1")], store: store) == [.applied])
        let second = PipelineFixtures.payment(6, "P2", customer: "C1", allocateTo: "I3")
        let outcomes = try pipeline.process([second, second], store: store)
        #expect(outcomes == [.applied, .duplicate], "\(outcomes)")
        #expect(try count("SELECT count(*) AS n FROM payments WHERE payment_id = 'P2'") == 1)
        #expect(try count("SELECT count(*) AS n FROM outbox WHERE type = 'payment.confirmed'") == 2)

        // Messages waiting for a payment or an invoice (found by the intake's look-up under the
        // key's lock) are released by it, in the same batch or a later one.
        let refund = PipelineFixtures.delivery(7, id: "e-R3", type: "payment.refunded", [
            ("payment_id", .string("P3")), ("refund_id", .string("R3")), ("amount", .string("10.00")),
        ])
        let void = PipelineFixtures.delivery(8, id: "e-V9", type: "invoice.voided", [("invoice_id", .string("I9")), ("reason", .string("duplicate"))])
        #expect(try pipeline.process([refund, void], store: store) == [.held(waitingFor: "payment P3"), .held(waitingFor: "invoice I9")])
        let third = PipelineFixtures.delivery(9, id: "e-P3", type: "payment.succeeded", [
            ("payment_id", .string("P3")), ("customer_id", .string("C1")), ("currency", .string("EUR")), ("amount", .string("20.00")),
            ("method", .string("card")), ("received_at", .string("2026-11-16T10:00:00Z")),
        ])
        #expect(try pipeline.process([third, PipelineFixtures.invoice(10, "I9", customer: "C1")], store: store) == [.applied, .applied])
        #expect(try count("SELECT count(*) AS n FROM held_messages") == 0)
        #expect(try count("SELECT count(*) AS n FROM payment_takebacks WHERE takeback_id = 'R3'") == 1)
        #expect(try count("SELECT count(*) AS n FROM invoices WHERE invoice_id = 'I9' AND status = 'voided'") == 1)
    }
}
