import ARDomain
import Foundation
import PostgresClient
import Store
import Testing

/// Reconciliation through the broker (SPEC section 3): the scenarios in blackbox/r*.py publish as
/// billing, the gateway, the bank connector and the AR team; the tests prove the rows.
extension BlackBoxTests {
    @Test("R1. a bank day: camt.054 and camt.053 overlap, a re-sent file, BAI2, MT940, a payout, bank charges, exceptions, resolutions; each booking applied once; verify passes")
    func reconciliationDay() async throws {
        try await harness.ready()
        let result = try await harness.runScript("r1_reconciliation_day.py", timeout: .seconds(240))
        expectClean(result, "scenario R1")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let prefix = result.string("prefix") ?? "?"
        let entries = result.array("entries")
        for entry in entries {
            let id = entry.string("entry_id") ?? "?"
            let rows = try db.query("SELECT state FROM bank_entries WHERE entry_id = $1", [.text(id)])
            #expect(rows.first?.string("state") == entry.string("state"), "state of bank entry \(id)")
        }
        // Each booking once: the overlapping files and the re-sent one added no rows, the pending
        // advice and the refused file none at all.
        #expect(try db.int("SELECT count(*) FROM bank_entries WHERE bank_reference LIKE $1 || '%'", [.text(prefix)]) == Int64(entries.count))
        // What the journal booked to the bank is exactly the credits that were applied.
        let applied = try db.int("""
            SELECT coalesce(sum(amount_minor), 0) FROM bank_entries WHERE entry_id LIKE $1 || '%' AND state IN ('matched', 'partially_matched')
            """, [.text(prefix)])
        let banked = try db.int("""
            SELECT coalesce(sum(l.debit_minor - l.credit_minor), 0) FROM journal_entries e JOIN journal_lines l USING (entry_id)
            WHERE e.reference LIKE $1 || '%' AND l.account = 'cash:bank'
            """, [.text(prefix)])
        #expect(applied > 0 && banked == applied, "bank cash booked \(banked), credits applied \(applied)")
        #expect(try db.int("SELECT count(*) FROM payouts WHERE payout_id = $1 AND settled_by_entry = $2",
                           [.text(result.string("payout") ?? "?"), .text(prefix + "-R3")]) == 1, "the payout settled once, by R3")
        #expect(try db.int("SELECT coalesce(sum(remaining_minor), 0) FROM credit_lots WHERE customer_id = $1", [.text(result.string("customer_c") ?? "?")])
                == Int64(result.int("credit_c_minor") ?? -1), "C's credit: the over-payment and the credit resolved to it")
        // The hooks of dunning and reports: R11 is still open and names A and E.
        let store = Store(db)
        let open = try store.openExceptionCandidates(customerIDs: [result.string("customer_a") ?? "?", result.string("customer_e") ?? "?",
                                                                   result.string("customer_b") ?? "?"])
        #expect(Set(open.map(\.customerID)) == Set([result.string("customer_a") ?? "?", result.string("customer_e") ?? "?"]), "open exception candidates: \(open)")
        #expect(open.allSatisfy { $0.entryID == prefix + "-R11" && $0.reason == "ambiguous" })
        #expect(try store.openExceptions().contains { $0.entryID == prefix + "-R11" && $0.reason == "ambiguous" && $0.candidateCustomers.count == 2 })
        try await expectVerifyPasses()
    }

    @Test("R2. bank.* and reconciliation.resolved dead-lettered not_supported_yet by an older version apply after dead-letter replay")
    func replayOfNotSupportedYet() async throws {
        try await harness.ready()
        let stateFile = harness.logDirectory + "/r2-state.json"
        let prepared = try await harness.runScript("r2_replay_not_supported.py", ["prepare", stateFile])
        expectClean(prepared, "scenario R2 (prepare)")
        let db = try harness.connect()
        // What the version before reconciliation recorded for these messages.
        for message in prepared.array("dead_letters") {
            let user = message.string("user") ?? "?"
            try db.query("""
                INSERT INTO dead_letters (source, event_id, type, routing_key, user_id, reason, detail, body, properties)
                VALUES ($1, $2, $3, $3, $4, 'not_supported_yet', $5, convert_to($6, 'UTF8'), $7::jsonb)
                """, [.text(message.string("source") ?? "?"), .text(message.string("event_id") ?? "?"), .text(message.string("type") ?? "?"),
                      .text(user), .text("\(message.string("type") ?? "?") is not handled by this version of receivablesd; replay it after an upgrade"),
                      .text(message.string("body") ?? "{}"),
                      .text("{\"content-type\": \"application/cloudevents+json\", \"x-original-user-id\": \"\(user)\"}")])
        }
        let replay = try await harness.cli(["dead-letter", "replay", "--reason", "not_supported_yet"])
        #expect(replay.status == 0, "dead-letter replay failed:\n\(replay.output)")
        let checked = try await harness.runScript("r2_replay_not_supported.py", ["check", stateFile])
        expectClean(checked, "scenario R2 (check)")
        try expectInvoiceRows(checked.array("invoices"), db)
        for entry in checked.array("entries") {
            let id = entry.string("entry_id") ?? "?"
            #expect(try db.query("SELECT state FROM bank_entries WHERE entry_id = $1", [.text(id)]).first?.string("state") == entry.string("state"), "\(id)")
        }
        let prefix = prepared.string("prefix") ?? "?"
        #expect(try db.int("SELECT count(*) FROM dead_letters WHERE event_id LIKE $1 || '%' AND replayed_at IS NOT NULL", [.text(prefix)]) == 3)
        #expect(try db.int("SELECT count(*) FROM inbox WHERE event_id LIKE $1 || '%' AND outcome = 'applied'", [.text(prefix)]) == 3)
        try await expectVerifyPasses()
    }

    @Test("R3. the database's match keys are the domain's (MatchKey), for every shape of invoice number")
    func matchKeysAgreeWithTheDatabase() async throws {
        try await harness.ready()
        let db = try harness.connect()
        let samples = ["INV-2024-0042", "inv 2024 42", "A-000", "0-01", "000", "straße-12 00 x0", "RF18 5390 0754 7034", "Nº 7/0008", "a\tb-01_02.003",
                       "00A00B000", "ÄÖÜ-1", "12-0-3-00"]
        // Real rows, in a transaction that is rolled back: the generated columns of migration 0004.
        try db.simpleQuery("BEGIN")
        defer { _ = try? db.simpleQuery("ROLLBACK") }  // nothing of this test stays in the database
        let customer = "r3-\(UUID().uuidString)"
        try db.query("INSERT INTO customers (customer_id, name, bank_accounts) VALUES ($1, 'R3', $2::jsonb)",
                     [.text(customer), .text("[\"de89370400440532013000\", \"Ab12cd\"]")])
        for (index, sample) in samples.enumerated() {
            try db.query("""
                INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor, balance_minor, status, issue_date, due_date,
                                      payment_reference, issued_fingerprint)
                VALUES ($1, $2, $3, 'EUR', 0, 0, 'paid', '2026-01-01', '2026-01-01', $3, 'r3')
                """, [.text("\(customer)-\(index)"), .text(customer), .text(sample)])
            let row = try db.query("SELECT number_key, number_loose_key, reference_key FROM invoices WHERE invoice_id = $1",
                                   [.text("\(customer)-\(index)")]).first
            #expect(row?.string("number_key") == MatchKey.strict(sample), "strict key of \(sample)")
            #expect(row?.string("number_loose_key") == MatchKey.loose(sample), "loose key of \(sample)")
            #expect(row?.string("reference_key") == InvoiceFact(id: "x", customerID: "c", number: sample, paymentReference: sample,
                                                                amount: .zero(Currency(code: "EUR")!), balance: .zero(Currency(code: "EUR")!),
                                                                status: .paid, issueDate: BusinessDate("2026-01-01")!,
                                                                dueDate: BusinessDate("2026-01-01")!).referenceStrict, "reference key of \(sample)")
        }
        let accounts = try db.query("SELECT account_key FROM customer_bank_accounts WHERE customer_id = $1 ORDER BY account_key", [.text(customer)])
        #expect(accounts.all.map { $0.requiredString("account_key") } == ["AB12CD", "DE89370400440532013000"].map(MatchKey.account))
    }
}

extension BlackBoxTests {
    @Test("R4. a bank day in volume: a few hundred credits of mixed quality, camt.054 then camt.053 (twice); every outcome and amount as built, nothing applied twice")
    func reconciliationInVolume() async throws {
        try await harness.ready()
        let result = try await harness.runScript("r3_bank_volume.py", timeout: .seconds(300))
        expectClean(result, "scenario R3 (seed \(result.int("seed") ?? -1))")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let prefix = result.string("prefix") ?? "?"
        #expect(try db.int("SELECT count(*) FROM bank_entries WHERE entry_id LIKE $1 || '%'", [.text(prefix)]) == Int64(result.int("credits") ?? -1))
        #expect(try db.int("SELECT count(*) FROM reconciliation_decisions WHERE entry_id LIKE $1 || '%'", [.text(prefix)]) == Int64(result.int("credits") ?? -1),
                "one decision per credit")
        // The AR team's queue lists exactly the run's open exceptions, with their reasons.
        let report = try await harness.cli(["report", "exceptions", "--format", "json"])
        #expect(report.status == 0, "report exceptions failed:\n\(report.output)")
        let json = report.output.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
        var listed: [String: String] = [:]
        for section in object["sections"] as? [[String: Any]] ?? [] where (section["id"] as? String ?? "").hasSuffix("-entries") {
            for row in section["rows"] as? [[String: Any]] ?? [] {
                if let id = row["entry_id"] as? String, id.hasPrefix(prefix) { listed[id] = row["reason"] as? String }
            }
        }
        var expected: [String: String] = [:]
        for row in try db.query("SELECT entry_id, reason FROM bank_entries WHERE state = 'exception' AND entry_id LIKE $1 || '%'", [.text(prefix)]).all {
            expected[row.requiredString("entry_id")] = row.requiredString("reason")
        }
        #expect(!expected.isEmpty, "the volume day has exceptions")
        #expect(listed == expected, "report exceptions lists \(listed.count) of the run's \(expected.count) open exceptions")
        try await expectVerifyPasses()
    }
}

extension BlackBoxTests {
    @Test("R5. a customer among the candidates of a credit in exception gets no reminder until the AR team resolves it")
    func exceptionsHoldDunning() async throws {
        try await harness.ready()
        let result = try await harness.runScript("r4_dunning_hold.py", timeout: .seconds(200))
        expectClean(result, "scenario R4 (dunning hold)")
        let db = try harness.connect()
        let held = result.string("held") ?? "?"
        #expect(try Store(db).bankExceptionHolds(customerIDs: [held]).isEmpty, "the resolved credit still holds \(held)")
        try await expectVerifyPasses()
    }
}
