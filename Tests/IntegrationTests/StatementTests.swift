import ARDomain
import Foundation
import PostgresClient
import Store
import Testing
import TestSupport

extension BlackBoxTests {
    @Test("11. statements, payment history, documents: agree with a model and the summary; as_known_at exact; errors and isolation")
    func statementsAndHistory() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s11_statements.py", timeout: .seconds(200))
        expectClean(result, "scenario 11")
        // The Store's statement sums agree with the raw journal, for both customers of the run.
        let store = Store(try harness.connect())
        let horizon = try store.booksHorizon()
        let today = horizon.instant.date()
        for customer in [result.string("customer_a") ?? "?", result.string("customer_b") ?? "?"] {
            let journal = try store.statementJournal(customerID: customer, knownAt: horizon.instant)
            #expect(!journal.postings.isEmpty, "no journal for \(customer)")
            for from in [today.adding(days: -400), today] {
                let inputs = try store.statementInputs(customerID: customer, from: from, to: today, knownAt: horizon.instant)
                for read in inputs {
                    let reference = StatementInputs.aggregate(journal.postings, currency: read.currency, dueDates: journal.dueDates, from: from, to: today)
                    #expect(read.openingReceivable == reference.openingReceivable && read.openingCredit == reference.openingCredit, "\(customer) \(read.currency) opening")
                    #expect(read.postings.map(\.entryID) == reference.postings.map(\.entryID), "\(customer) \(read.currency) movements")
                    #expect(read.postings.map(\.amount) == reference.postings.map(\.amount), "\(customer) \(read.currency) amounts")
                    #expect(Set(read.invoiceBalances) == Set(reference.invoiceBalances), "\(customer) \(read.currency) invoice balances")
                }
            }
        }
        // Every entry posted by the daemon carries a commit stamp.
        let db = try harness.connect()
        #expect(try db.int("SELECT count(*) FROM journal_entries e LEFT JOIN journal_commits c USING (xact_id) WHERE c.xact_id IS NULL") == 0,
                "journal entries without a commit stamp")
        try await expectVerifyPasses()
    }
}

extension BlackBoxTests {
    @Test("12. payment history pages while payments arrive (older and newer): none skipped, none repeated")
    func historyPagingUnderConcurrentInserts() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s12_history_paging.py", timeout: .seconds(200))
        expectClean(result, "scenario 12")
        let db = try harness.connect()
        #expect(try db.int("SELECT count(*) FROM payments WHERE customer_id = $1", [.text(result.string("customer_id") ?? "?")]) == Int64(40 + 4 * ((result.int("pages") ?? 1) - 1)))
    }
}

extension BlackBoxTests {
    @Test("13. the reference portal, the HTML statement and the HTML report in headless chromium: the numbers are there, the name is text")
    func portalInABrowser() async throws {
        try await harness.ready()
        let environment = try harness.environment()
        let binary = ((environment["RECEIVABLESD_BIN"] ?? "") as NSString).deletingLastPathComponent + "/receivablesd-portal"
        let portal = try ChildProcess(label: "portal", executable: binary, arguments: ["--port", environment["RECEIVABLESD_PORTAL_PORT"] ?? "0", "--source", harness.eventSource],
                                      environment: environment, logDirectory: harness.logDirectory)
        defer {
            portal.signal(SIGTERM)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var url: String?
        while clock.now < deadline, url == nil {
            if let line = portal.stdout.split(separator: "\n").first(where: { $0.hasPrefix("portal listening on ") }) {
                url = String(line.dropFirst("portal listening on ".count))
            } else if let status = portal.poll() {
                Issue.record("receivablesd-portal exited \(status): \(portal.tail(portal.stderr))")
                return
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        guard let url else {
            Issue.record("receivablesd-portal did not say where it listens: \(portal.tail(portal.stdout + portal.stderr))")
            return
        }
        let result = try await harness.runScript("s13_portal_browser.py", [url, harness.logDirectory], timeout: .seconds(300))
        expectClean(result, "scenario 13")
        #expect(portal.isRunning, "the portal died: \(portal.tail(portal.stderr))")
        portal.signal(SIGTERM)
        _ = await portal.wait(timeout: .seconds(10))
    }
}

extension BlackBoxTests {
    /// A posting stamped but not yet visible (its transaction is between the commit trigger and
    /// the end of COMMIT) must not make a reader's horizon lie: the reader waits for it, so its
    /// statement includes it, and as_known_at = that horizon later reproduces the statement.
    @Test("14. the books horizon waits out a commit in progress: as_known_at never shows what was not visible")
    func horizonWaitsForACommitInProgress() async throws {
        try await harness.ready()
        let writer = try harness.connect()
        let customer = "it14-\(UInt32.random(in: 0...UInt32.max))"
        let today = try Store(writer).currentDate()
        try writer.simpleQuery("BEGIN")
        try writer.query("INSERT INTO customers (customer_id, name) VALUES ($1, 'Horizon test')", [.text(customer)])
        try writer.query("""
            INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor, balance_minor, status, issue_date, due_date, issued_fingerprint)
            VALUES ($1 || '-I', $1, 'N1', 'USD', 12345, 12345, 'open', $2::date, $2::date, 'test')
            """, [.text(customer), .text(today.description)])
        try writer.query("""
            WITH entry AS (INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference)
                           VALUES ($1 || '-E', 'invoice_issued', $1, 'USD', $1 || '-I') RETURNING entry_id)
            INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
            SELECT entry_id, 1, 'receivable', $1, $1 || '-I', 12345, 0 FROM entry
            UNION ALL SELECT entry_id, 2, 'revenue', $1, NULL, 0, 12345 FROM entry
            """, [.text(customer)])
        // Fire the commit trigger now: the transaction is stamped and holds the clock row, as
        // during a COMMIT, but nothing of it is visible yet.
        try writer.query("SET CONSTRAINTS journal_entries_stamp_commit IMMEDIATE")
        let stamp = try writer.int("SELECT (extract(epoch FROM known_at) * 1000000)::bigint FROM journal_commits WHERE xact_id = pg_current_xact_id()")
        let harness = self.harness
        let reader = Task.detached { () throws -> (BooksHorizon, [StatementInputs]) in
            let store = Store(try harness.connect())
            let horizon = try store.booksHorizon()
            return (horizon, try store.statementInputs(customerID: customer, from: today, to: today, knownAt: horizon.instant))
        }
        try await Task.sleep(for: .milliseconds(700))  // the reader is waiting on the clock row by now
        try writer.simpleQuery("COMMIT")
        let (horizon, seen) = try await reader.value
        #expect(horizon.instant.microsecondsSinceEpoch >= stamp, "the horizon is after the stamp of the commit it waited for")
        #expect(seen.first?.postings.map(\.entryID) == ["\(customer)-E"], "the reader's statement shows the posting it waited for")
        let again = try Store(try harness.connect()).statementInputs(customerID: customer, from: today, to: today, knownAt: horizon.instant)
        #expect(again == seen, "as_known_at = the horizon reproduces the statement")
        let before = try Store(try harness.connect()).statementInputs(customerID: customer, from: today, to: today,
                                                                     knownAt: Instant(microsecondsSinceEpoch: stamp - 1))
        #expect(before.allSatisfy { $0.postings.isEmpty }, "one microsecond before its stamp the posting was not known")
    }
}

extension BlackBoxTests {
    /// The commit stamp is taken once per transaction however many entries it posts, and the
    /// entries after the first find the transaction-local mark without reading journal_commits
    /// (which grows by a row per commit). A savepoint rolled back after the stamp undoes stamp and
    /// mark together, so the triggers fire again and stamp once. (The trigger is fired with SET
    /// CONSTRAINTS ... IMMEDIATE, as COMMIT would fire it, and the transaction is rolled back: the
    /// shared database keeps no entries without their ledger events.)
    @Test("14b. one commit stamp per transaction, without a look-up per entry, also across a rolled-back savepoint")
    func commitStampOncePerTransaction() async throws {
        try await harness.ready()
        let db = try harness.connect()
        let customer = "it14b-\(UInt32.random(in: 0...UInt32.max))"
        let entries = 5
        try db.simpleQuery("BEGIN")
        defer { try? db.simpleQuery("ROLLBACK") }
        try db.query("INSERT INTO customers (customer_id, name) VALUES ($1, 'Stamp test')", [.text(customer)])
        for index in 0..<entries {
            try db.query("""
                WITH entry AS (INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference)
                               VALUES ($1 || '-E' || $2, 'credit_note_issued', $1, 'USD', $1 || '-R' || $2) RETURNING entry_id)
                INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
                SELECT entry_id, 1, 'revenue', $1, NULL, 100, 0 FROM entry
                UNION ALL SELECT entry_id, 2, 'unapplied_credit', $1, NULL, 0, 100 FROM entry
                """, [.text(customer), .text(String(index))])
        }
        let clockBefore = try db.int("SELECT last_seq FROM journal_clock")
        func stamps() throws -> Int64 { try db.int("SELECT count(*) FROM journal_commits WHERE xact_id = pg_current_xact_id()") }
        func reads() throws -> Int64 {
            try db.int("SELECT COALESCE(sum(seq_scan + COALESCE(idx_scan, 0)), 0)::bigint FROM pg_stat_xact_user_tables WHERE relname = 'journal_commits'")
        }
        let readsBefore = try reads()
        try db.simpleQuery("SAVEPOINT stamped")
        try db.query("SET CONSTRAINTS journal_entries_stamp_commit IMMEDIATE")
        #expect(try stamps() == 1, "stamped once for \(entries) entries")
        #expect(try db.int("SELECT last_seq FROM journal_clock") == clockBefore + 1, "the clock moved once")
        // `stamps()` itself reads journal_commits once.
        #expect(try reads() - readsBefore == 1, "the entries' triggers read journal_commits")
        try db.simpleQuery("ROLLBACK TO SAVEPOINT stamped")
        #expect(try stamps() == 0, "the rolled-back stamp is gone")
        try db.query("SET CONSTRAINTS journal_entries_stamp_commit IMMEDIATE")
        #expect(try stamps() == 1, "stamped again, once, after the savepoint took the first stamp back")
        #expect(try db.int("""
            SELECT count(*) FROM journal_entries e JOIN journal_commits c USING (xact_id) WHERE e.customer_id = $1
            """, [.text(customer)]) == Int64(entries), "every entry carries the transaction's stamp")
    }
}
