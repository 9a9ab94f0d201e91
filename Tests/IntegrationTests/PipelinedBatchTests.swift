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

/// Statements sent without waiting (libpq pipeline mode, issue 12) must not move an error to
/// another message: a statement's error surfaces inside the savepoint that sent it, so the
/// batch's isolation (MessagePipeline, ConsumerWorker.isolate) behaves exactly as when every
/// statement waited for its result. Each test runs in a private database, migrated.
@Suite(.serialized) struct PipelinedBatchTests {
    static func int(_ db: PostgresConnection, _ sql: String, _ parameters: [PostgresValue] = []) throws -> Int64 {
        try db.query(sql, parameters).first?.int64("n") ?? -1
    }

    struct Marker: Error {}

    /// The connection-level rule: a failing statement sent without waiting is thrown by its own
    /// savepoint (which rolls back alone and leaves the transaction usable), never later by the
    /// next savepoint or COMMIT; and it wins over an error the body throws after sending it.
    @Test func aDeferredErrorIsThrownByTheSavepointThatSentIt() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let db = try scratch.connect()
        try db.simpleQuery("CREATE TABLE rt_rows (id int PRIMARY KEY)")
        var inner: [String] = []
        try db.transaction {
            try db.transaction { try db.execute("INSERT INTO rt_rows VALUES (1)") }
            do {
                try db.transaction {
                    try db.execute("INSERT INTO rt_rows VALUES (2)")
                    try db.execute("INSERT INTO rt_rows VALUES (1)")  // unique violation, not waited for
                    try db.execute("INSERT INTO rt_rows VALUES (3)")
                }
                inner.append("released")
            } catch let error as PostgresError {
                inner.append(error.sqlState ?? "?")
            }
            do {
                try db.transaction {
                    try db.execute("INSERT INTO rt_rows VALUES (1)")
                    throw Marker()  // thrown before anything waited: the database error came first
                }
            } catch let error as PostgresError {
                inner.append(error.sqlState ?? "?")
            } catch {
                inner.append("marker")
            }
            do {
                try db.transaction {
                    try db.execute("INSERT INTO rt_rows VALUES (5)")
                    throw Marker()  // a rejection after statements that succeed: rolled back, rethrown as is
                }
            } catch is Marker {
                inner.append("marker")
            }
            try db.transaction { try db.execute("INSERT INTO rt_rows VALUES (4)") }
        }
        #expect(inner == ["23505", "23505", "marker"])
        let ids = try db.query("SELECT id::text AS id FROM rt_rows ORDER BY id").all.map { $0.requiredString("id") }
        #expect(ids == ["1", "4"], "the failed savepoints roll back alone; the others commit")
        // The connection is in a clean state afterwards (no pipeline left open, statements still prepared).
        #expect(try Self.int(db, "SELECT count(*) AS n FROM rt_rows WHERE id > $1", [.int(0)]) == 2)
        #expect(db.transactionDepth == 0)
    }

    /// Savepoints released unchecked (`checkingAtRelease: false`, the message savepoints of a
    /// batch): an error is found by the next statement that waits, possibly in a later savepoint.
    /// It cannot be pinned there, so no savepoint is rolled back to and the whole transaction
    /// fails: even a caller that catches the error cannot commit anything.
    @Test func anUncheckedSavepointsErrorFailsTheWholeTransaction() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let db = try scratch.connect()
        try db.simpleQuery("CREATE TABLE rt_rows (id int PRIMARY KEY)")
        var seen: [String] = []
        var committed: String?
        do {
            try db.transaction {
                try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (1)") }
                try db.transaction(checkingAtRelease: false) {
                    try db.execute("INSERT INTO rt_rows VALUES (1)")  // unique violation, found later
                }
                seen.append("released unchecked")
                do {
                    try db.transaction(checkingAtRelease: false) {
                        _ = try db.query("SELECT count(*) AS n FROM rt_rows")  // waits: finds the earlier error
                        seen.append("not reached")
                    }
                } catch let error as PostgresError {
                    seen.append(error.sqlState ?? "?")
                }
                // A careless caller goes on after catching it: its statements cannot commit.
                try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (7)") }
            }
            committed = "committed"
        } catch let error as PostgresError {
            committed = error.sqlState
        }
        #expect(seen == ["released unchecked", "23505"])
        #expect(committed == "25P02", "COMMIT refused after an unpinned error")
        #expect(try Self.int(db, "SELECT count(*) AS n FROM rt_rows") == 0, "nothing of the transaction commits")
        #expect(db.transactionDepth == 0)
        // The connection is usable, and unchecked savepoints without errors commit normally.
        try db.transaction {
            try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (1)") }
            try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (2)") }
        }
        #expect(try Self.int(db, "SELECT count(*) AS n FROM rt_rows") == 2)
        // An error in the last unchecked savepoint is found by COMMIT: nothing commits.
        var last: String?
        do {
            try db.transaction {
                try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (3)") }
                try db.transaction(checkingAtRelease: false) { try db.execute("INSERT INTO rt_rows VALUES (2)") }
            }
        } catch let error as PostgresError {
            last = error.sqlState
        }
        #expect(last == "23505")
        #expect(try Self.int(db, "SELECT count(*) AS n FROM rt_rows") == 2)
    }

    /// An error at COMMIT's sync (a statement of the outermost level) fails the transaction: nothing commits.
    @Test func aDeferredErrorBeforeCommitRollsBackEverything() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let db = try scratch.connect()
        try db.simpleQuery("CREATE TABLE rt_rows (id int PRIMARY KEY)")
        var thrown: String?
        do {
            try db.transaction {
                try db.execute("INSERT INTO rt_rows VALUES (1)")
                try db.execute("INSERT INTO rt_rows VALUES (1)")
            }
        } catch let error as PostgresError {
            thrown = error.sqlState
        }
        #expect(thrown == "23505")
        #expect(try Self.int(db, "SELECT count(*) AS n FROM rt_rows") == 0)
    }

    /// The middle message of a batch fails on a constraint in a statement sent without waiting
    /// (its journal lines). As before pipelining: the batch fails with that error and commits
    /// nothing; applied one by one (ConsumerWorker.isolate), the others commit and the failing
    /// one fails again, alone, leaving no trace (no inbox key, invoice, journal entry or event).
    @Test func aConstraintErrorInTheMiddleOfABatchIsIsolatedToItsMessage() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let setup = try scratch.connect()
        // Only journal lines naming this invoice violate it: the message's last writes, never waited for.
        try setup.simpleQuery("ALTER TABLE journal_lines ADD CONSTRAINT rt_poison CHECK (invoice_id IS DISTINCT FROM 'I-POISON')")
        let store = Store(try scratch.connect())
        let pipeline = PipelineFixtures.pipeline()
        let customer = PipelineFixtures.delivery(1, id: "e-c1", type: "customer.upserted", [("customer_id", .string("C1")), ("name", .string("One"))])
        #expect(try pipeline.process([customer], store: store) == [.applied])

        let batch = [PipelineFixtures.invoice(2, "I-A", customer: "C1"), PipelineFixtures.invoice(3, "I-POISON", customer: "C1"), PipelineFixtures.invoice(4, "I-C", customer: "C1")]
        var batchError: PostgresError?
        do { try pipeline.process(batch, store: store) } catch { batchError = error }
        #expect(batchError?.sqlState == "23514", "the batch fails with the poison message's own error: \(String(describing: batchError))")
        #expect(batchError?.message.contains("rt_poison") == true)
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM invoices") == 0, "a failed batch commits nothing")
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM inbox WHERE type = 'invoice.issued'") == 0)

        var outcomes: [String] = []
        for delivery in batch {
            do {
                let dispositions = try pipeline.process([delivery], store: store)
                outcomes.append("\(dispositions)")
            } catch {
                outcomes.append(error.sqlState ?? "?")
            }
        }
        #expect(outcomes == ["[Daemon.Disposition.applied]", "23514", "[Daemon.Disposition.applied]"])
        let invoices = try setup.query("SELECT invoice_id FROM invoices ORDER BY invoice_id").all.map { $0.requiredString("invoice_id") }
        #expect(invoices == ["I-A", "I-C"])
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM inbox WHERE event_id = 'e-I-POISON'") == 0)
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM journal_entries e JOIN journal_lines l USING (entry_id) WHERE l.invoice_id = 'I-POISON'") == 0)
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM outbox WHERE convert_from(body, 'UTF8') LIKE '%I-POISON%'") == 0)
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM outbox WHERE convert_from(body, 'UTF8') LIKE '%\"I-A\"%'") > 0)
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM outbox WHERE convert_from(body, 'UTF8') LIKE '%\"I-C\"%'") > 0)
        // The same store goes on: a batch of good messages after the failures commits whole.
        let after = [PipelineFixtures.invoice(5, "I-D", customer: "C1"), PipelineFixtures.invoice(6, "I-E", customer: "C1")]
        #expect(try pipeline.process(after, store: store) == [.applied, .applied])
        #expect(try Self.int(setup, "SELECT count(*) AS n FROM invoices") == 4)
        #expect(store.db.transactionDepth == 0)
    }

    /// The failing statement is the last of its message, after every read (the message is held:
    /// its held row and inbox outcome are only sent), and the next message is rejected before it
    /// touches the database (a request without `reply_to`), so its savepoint is rolled back: the
    /// error must still fail the batch, never vanish with a rollback (which would ack the held
    /// message with its effects undone: a message lost).
    @Test func aDeferredErrorIsNotLostWhenTheNextMessageIsRejectedAtOnce() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let setup = try scratch.connect()
        try setup.simpleQuery("ALTER TABLE held_messages ADD CONSTRAINT rt_poison CHECK (waiting_id <> 'C-POISON')")
        let store = Store(try scratch.connect())
        let pipeline = PipelineFixtures.pipeline()
        let customer = PipelineFixtures.delivery(1, id: "e-c1", type: "customer.upserted", [("customer_id", .string("C1")), ("name", .string("One"))])
        #expect(try pipeline.process([customer], store: store) == [.applied])
        let request = PipelineFixtures.delivery(4, id: "e-summary", type: "account.summary.requested", [("customer_id", .string("C1"))])
        #expect(try pipeline.process([request], store: store) != [.applied], "a request without reply_to is rejected")
        let batch = [PipelineFixtures.invoice(2, "I-A", customer: "C1"), PipelineFixtures.invoice(3, "I-HELD", customer: "C-POISON"),
                     PipelineFixtures.delivery(5, id: "e-summary-2", type: "account.summary.requested", [("customer_id", .string("C1"))])]
        var batchError: PostgresError?
        do { try pipeline.process(batch, store: store) } catch { batchError = error }
        #expect(batchError?.sqlState == "23514", "\(String(describing: batchError))")
        #expect(try PipelinedBatchTests.int(setup, "SELECT count(*) AS n FROM invoices") == 0)
        #expect(try PipelinedBatchTests.int(setup, "SELECT count(*) AS n FROM inbox WHERE event_id = 'e-I-HELD'") == 0)
        #expect(try PipelinedBatchTests.int(setup, "SELECT count(*) AS n FROM dead_letters WHERE event_id = 'e-summary-2'") == 0)
    }
}
