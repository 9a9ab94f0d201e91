import Foundation
import PostgresClient
import Testing
import TestSupport

/// Issue 14 through the broker: payments with real gateways' method labels are applied (never
/// dead-lettered), and every fact is published under one event id.
extension BlackBoxTests {
    @Test("14a. payment.succeeded / payment.pending with two dozen gateway method labels: all applied, balances equal the model")
    func openMethodLabels() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s14_open_labels.py")
        expectClean(result, "scenario 14a")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let prefix = result.string("prefix") ?? "?"
        #expect(try deadLetterCount(prefix, db) == 0, "no payment may be dead-lettered for its label")
        let payments = result.array("payments")
        #expect(payments.count >= 20)
        for payment in payments {
            let id = payment.string("payment_id") ?? "?"
            let rows = try db.query("SELECT method FROM payments WHERE payment_id = $1", [.text(id)])
            #expect(rows.first?.string("method") == payment.string("method"), "\(id): the label is stored as sent")
            // The clearing account is bounded: the known label's key, or cash:other.
            let accounts = try db.query("""
                SELECT DISTINCT l.account FROM journal_lines l JOIN journal_entries e USING (entry_id)
                WHERE e.reference = $1 AND l.account LIKE 'cash:%'
                """, [.text(id)]).all.compactMap { $0.string("account") }
            #expect(accounts.count == 1, "\(id): one cash line account, got \(accounts)")
            if (payment["known"] as? Bool) == false { #expect(accounts == ["cash:other"], "\(id): an unknown label books to cash:other") }
        }
        #expect(try db.int("SELECT count(*) FROM pending_payments WHERE payment_id LIKE $1 || '%' AND state = 'pending'", [.text(prefix)]) == 6)
        try await expectVerifyPasses()
    }

    @Test("14b. one event id per fact: issue 14's two histories and random books with held refunds, reopen-then-pay, redeliveries")
    func oneEventIDPerFact() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s14_event_ids.py", timeout: .seconds(180))
        expectClean(result, "scenario 14b (seed \(result.int("seed") ?? -1))")
        let db = try harness.connect()
        try expectInvoiceRows(result.array("invoices"), db)
        let prefix = result.string("prefix") ?? "?"
        // In the database too: one outbox row per committed transition, and the transition numbers
        // on the invoice rows add up to the events.
        let transitions = Int64(result.int("transitions") ?? -1)
        let outbox = try db.int("""
            SELECT count(*) FROM outbox WHERE type = 'invoice.status_changed' AND position(convert_to($1, 'UTF8') in body) > 0
            """, [.text(prefix)])
        #expect(outbox == transitions, "outbox status events vs transitions of the model")
        #expect(try db.int("SELECT coalesce(sum(status_seq), 0) FROM invoices WHERE invoice_id LIKE $1 || '%'", [.text(prefix)]) == transitions)
        #expect(Int64(result.strings("status_event_ids").count) == transitions)
        try await expectVerifyPasses()
    }
}
