import Foundation
import PostgresClient
import Testing
import TestSupport

/// Black-box scenarios against a real `receivablesd serve` (SPEC sections 2, 7): python scripts
/// (Tests/IntegrationTests/blackbox, using scripts/arclient.py) publish as billing, gateway and
/// portal and capture what the daemon publishes; the tests assert on their results and prove
/// rows directly in PostgreSQL.
@Suite(.serialized, .daemonHarness, .timeLimit(.minutes(10)))
struct BlackBoxTests {
    let harness = Harness.shared

    func expectClean(_ result: ScenarioResult, _ scenario: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.failures.isEmpty, "\(scenario) failed:\n  \(result.failureSummary)", sourceLocation: sourceLocation)
        #expect(result.exitStatus == 0, "\(scenario) exited \(result.exitStatus)", sourceLocation: sourceLocation)
    }

    /// Invoice rows as the script expects them: amount, currency and balance in minor units.
    func expectInvoiceRows(_ expected: [[String: Any]], _ db: PostgresConnection, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(!expected.isEmpty, "the script reported no invoices to check", sourceLocation: sourceLocation)
        for invoice in expected {
            let id = invoice.string("invoice_id") ?? "?"
            let rows = try db.query("SELECT currency, amount_minor, balance_minor, status FROM invoices WHERE invoice_id = $1", [.text(id)])
            guard let row = rows.first else {
                Issue.record("no invoices row for \(id)", sourceLocation: sourceLocation)
                continue
            }
            if let currency = invoice.string("currency") {
                #expect(row.string("currency") == currency, "\(id) currency", sourceLocation: sourceLocation)
            }
            if let amount = invoice.int("amount_minor") {
                #expect(row.int64("amount_minor") == amount, "\(id) amount_minor", sourceLocation: sourceLocation)
            }
            if let balance = invoice.int("balance_minor") {
                #expect(row.int64("balance_minor") == balance, "\(id) balance_minor", sourceLocation: sourceLocation)
            }
            if let status = invoice.string("status") {
                #expect(row.string("status") == status, "\(id) status", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("1. publish → row → event in USD, JPY, KWD; account summary adds up")
    func publishRowEvent() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s1_publish_row_event.py")
        expectClean(result, "scenario 1")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        #expect(result.string("correlation_id") != nil, "the summary reply carried no correlation id")
    }
}

extension BlackBoxTests {
    /// Dead-letter records whose body mentions the run's prefix.
    func deadLetterCount(_ prefix: String, _ db: PostgresConnection) throws -> Int64 {
        try db.int("SELECT count(*) FROM dead_letters WHERE position(convert_to($1, 'UTF8') in body) > 0", [.text(prefix)])
    }

    func expectVerifyPasses(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let verify = try await harness.cli(["verify"])
        #expect(verify.status == 0, "receivablesd verify failed:\n\(verify.output)", sourceLocation: sourceLocation)
    }

    @Test("2. same message twice, same invoice/credit note under a new id: one effect; different: conflicting_duplicate")
    func duplicates() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s2_duplicates.py")
        expectClean(result, "scenario 2")
        let db = try harness.connect()
        let invoice = result.string("invoice_id") ?? "?"
        try expectInvoiceRows([["invoice_id": invoice, "amount_minor": result.int("amount_minor") ?? -1,
                                "balance_minor": result.int("balance_minor") ?? -1]], db)
        #expect(try db.int("SELECT count(*) FROM credit_notes WHERE credit_note_id = $1", [.text(result.string("credit_note_id") ?? "?")]) == 1)
        #expect(try db.int("SELECT count(*) FROM applications WHERE invoice_id = $1", [.text(invoice)]) == 1,
                "the credit note must be applied to the invoice exactly once")
        let accepted = result.strings("event_ids")
        #expect(accepted.count == 4)
        for id in accepted {
            #expect(try db.int("SELECT count(*) FROM inbox WHERE event_id = $1", [.text(id)]) == 1, "inbox row for \(id)")
        }
    }

    @Test("3. every bad-input class is dead-lettered with its reason, body unchanged; the daemon keeps going")
    func badInput() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s3_bad_input.py")
        expectClean(result, "scenario 3")
        #expect(result.strings("cases").count == 16)
        #expect(harness.isRunning("primary"), "the daemon died during the bad-input scenario:\n\(harness.daemonLogTail("primary"))")
        let db = try harness.connect()
        let prefix = result.string("prefix") ?? "?"
        #expect(try deadLetterCount(prefix, db) == 16, "dead_letters rows of the run (one per bad message)")
        #expect(try db.int("SELECT count(*) FROM invoices WHERE invoice_id = $1", [.text(result.string("after_invoice") ?? "?")]) == 1)
    }

    @Test("4. held until the customer / invoice / payment arrives; never released → unknown_reference")
    func held() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s4_held.py", timeout: .seconds(150))
        expectClean(result, "scenario 4")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let prefix = result.string("prefix") ?? "?"
        #expect(try db.int("SELECT count(*) FROM held_messages WHERE event_id LIKE $1 || '%'", [.text(prefix)]) == 0, "held rows left")
        #expect(try db.int("SELECT count(*) FROM invoices WHERE invoice_id = $1", [.text(result.string("never_invoice") ?? "?")]) == 0)
    }

    /// Scenarios 5 and 6: N messages, an outage mid-stream, then exactly-once checks.
    func streamSurvives(_ name: String, outage: () async throws -> Void) async throws {
        try await harness.ready()
        let prefix = "it56-\(UInt32.random(in: 0...UInt32.max))"
        let stateFile = harness.logDirectory + "/\(name)-state.json"
        let publisher = try harness.spawnScript("stream.py", ["publish", stateFile, "300", prefix])
        let db = try harness.connect()
        // Mid-stream: some invoices booked, the publisher still going.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        var booked: Int64 = 0
        while clock.now < deadline {
            booked = try db.int("SELECT count(*) FROM invoices WHERE invoice_id LIKE $1 || '%'", [.text(prefix)])
            if booked >= 15 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(booked >= 15, "the stream never started (\(booked) invoices booked)")
        #expect(publisher.isRunning, "the outage did not land mid-stream: the publisher had already finished")
        try await outage()
        let published = try await harness.finish(publisher, timeout: .seconds(90))
        expectClean(published, "\(name) publish phase")
        let result = try await harness.runScript("stream.py", ["check", stateFile], timeout: .seconds(240))
        expectClean(result, "\(name) check phase")

        let after = try harness.connect()
        let invoices = result.array("invoices")
        #expect(try after.int("SELECT count(*) FROM invoices WHERE invoice_id LIKE $1 || '%'", [.text(prefix)]) == Int64(invoices.count))
        try expectInvoiceRows(invoices, after)
        let payments = result.array("payments")
        let expectedSum = payments.reduce(Int64(0)) { $0 + ($1.int("amount_minor") ?? 0) }
        #expect(try after.int("SELECT count(*) FROM payments WHERE payment_id LIKE $1 || '%'", [.text(prefix)]) == Int64(payments.count))
        #expect(try after.int("SELECT coalesce(sum(amount_minor), 0) FROM payments WHERE payment_id LIKE $1 || '%'", [.text(prefix)]) == expectedSum)
        #expect(try after.int("SELECT coalesce(sum(amount_minor - unwound_minor), 0) FROM applications WHERE origin_id LIKE $1 || '%'", [.text(prefix)]) == expectedSum,
                "money applied once per payment")
        let ids = result.strings("event_ids")
        #expect(ids.count == 300)
        let literal = "{" + ids.joined(separator: ",") + "}"
        #expect(try after.int("SELECT count(*) FROM inbox WHERE event_id = ANY($1::text[]) AND outcome = 'applied'", [.text(literal)]) == Int64(ids.count),
                "every message of the stream applied (inbox)")
        #expect(try deadLetterCount(prefix, after) == 0, "dead letters for the stream")
        #expect(try after.int("SELECT count(*) FROM held_messages WHERE position(convert_to($1, 'UTF8') in body) > 0", [.text(prefix)]) == 0)
        try await expectVerifyPasses()
    }

    @Test("5. PostgreSQL stopped and restarted mid-stream: every message applied exactly once")
    func databaseRestart() async throws {
        try await streamSurvives("s5") {
            try await harness.services("pg-stop")
            try await Task.sleep(for: .seconds(4))
            try await harness.services("pg-start")
        }
        #expect(harness.isRunning("primary"), "the daemon did not survive the database restart:\n\(harness.daemonLogTail("primary"))")
    }

    @Test("6. kill -9 of the daemon mid-stream and restart: every message applied exactly once")
    func killNine() async throws {
        try await streamSurvives("s6") {
            try await harness.killDaemon("primary")
            try await harness.startDaemon("primary")
        }
    }

    @Test("7. payments, refunds, chargebacks follow the money rules; payment.confirmed matches a model")
    func payments() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s7_payments.py")
        expectClean(result, "scenario 7")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let customer = result.string("customer_id") ?? "?"
        #expect(try db.int("SELECT coalesce(sum(remaining_minor), 0) FROM credit_lots WHERE customer_id = $1", [.text(customer)])
                == Int64(result.int("credit_minor") ?? -1), "unapplied credit in credit_lots")
        try await expectVerifyPasses()
    }

    @Test("8. two daemon instances, shuffled and duplicated stream: verify passes, balances equal the model")
    func twoInstances() async throws {
        try await harness.ready()
        try await harness.startDaemon("secondary")
        let run: ScenarioResult
        do {
            run = try await harness.runScript("s8_two_instances.py", timeout: .seconds(200))
        } catch {
            _ = try? await harness.stopDaemon("secondary")  // cleanup; the scenario error is the one to report
            throw error
        }
        let status = try await harness.stopDaemon("secondary")
        #expect(status == 0, "second instance exit status on SIGTERM")
        expectClean(run, "scenario 8 (seed \(run.int("seed") ?? -1))")
        let db = try harness.connect()
        let invoices = run.array("invoices")
        try expectInvoiceRows(invoices, db)
        let prefix = run.string("prefix") ?? "?"
        #expect(try db.int("SELECT count(*) FROM invoices WHERE invoice_id LIKE $1 || '%'", [.text(prefix)]) == Int64(invoices.count))
        #expect(try deadLetterCount(prefix, db) == 0, "dead letters of the run")
        try await expectVerifyPasses()
    }

    @Test("9. dead-letter list shows rejections; replay applies a fixed message once, never launders a publisher")
    func deadLetterReplay() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s9_dead_letter.py", timeout: .seconds(150))
        expectClean(result, "scenario 9")
        let db = try harness.connect()
        #expect(try db.int("SELECT count(*) FROM payments WHERE payment_id = $1", [.text(result.string("forbidden_payment") ?? "?")]) == 0,
                "a replayed forbidden payment was booked")
        let invoice = result.string("invoice_id") ?? "?"
        #expect(try db.int("SELECT count(DISTINCT entry_id) FROM journal_lines WHERE invoice_id = $1", [.text(invoice)]) == 1,
                "the replayed invoice must be booked exactly once (one balanced two-line entry)")
        try expectInvoiceRows([["invoice_id": invoice, "balance_minor": result.int("amount_minor") ?? -1]], db)
    }

    @Test("10. verify notices stored state that disagrees with the journal, names it, and exits 1")
    func verifyDetectsTampering() async throws {
        try await harness.ready()
        try await expectVerifyPasses()
        let db = try harness.connect()
        guard let row = try db.query("""
            SELECT invoice_id, balance_minor FROM invoices WHERE status = 'partially_paid' AND balance_minor > 1 ORDER BY invoice_id LIMIT 1
            """).first, let invoice = row.string("invoice_id") else {
            Issue.record("no partially paid invoice in the suite's database to tamper with (earlier scenarios should have made some)")
            return
        }
        // One minor unit off: stored balance no longer equals the journal's receivable lines.
        try db.query("UPDATE invoices SET balance_minor = balance_minor - 1 WHERE invoice_id = $1", [.text(invoice)])
        let tampered = try await harness.cli(["verify"])
        try db.query("UPDATE invoices SET balance_minor = balance_minor + 1 WHERE invoice_id = $1", [.text(invoice)])
        #expect(tampered.status == 1, "verify must exit 1 on a violation:\n\(tampered.output)")
        #expect(tampered.output.contains("invoice balance equals journal") && tampered.output.contains(invoice),
                "verify must name the check and the invoice:\n\(tampered.output)")
        #expect(tampered.output.contains("invoice applications match its balance"), "the applications check must also see it:\n\(tampered.output)")
        // A journal entry cannot be edited at all: the table is append-only.
        #expect(throws: (any Error).self) { try db.query("UPDATE journal_lines SET debit_minor = debit_minor + 1 WHERE line_no = 1") }
        try await expectVerifyPasses()
    }
}
