import ARDomain
import ArgumentParser
import Daemon
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd bench reads`: the portal's reads on a large book, against a primary-key lookup
/// round trip measured in the same run. Seeds a throwaway database (`<db.name>_bench_reads`) in
/// SQL: `--customers` customers, `--invoices` invoices (`--big` of them for one customer), half
/// of them paid, a year of bookings; then p50/p99 of each read, and the sequential scans the
/// reads caused on the big tables (0 = every reply came from indexes).
struct BenchReadsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reads",
                                                    abstract: "p50/p99 of summary, statement and history reads on a large seeded book vs a primary-key lookup.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Customers in the seeded book.") var customers = 100_000
    @Option(help: "Invoices in the seeded book.") var invoices = 1_000_000
    @Option(help: "Invoices of the one big customer.") var big = 5_000
    @Option(help: "Measured runs per read.") var runs = 200
    @Flag(help: "Keep the bench database afterwards.") var keep = false

    func run() async throws {
        guard customers > 1, invoices > big, big > 0, runs > 0 else { throw ValidationError("need customers > 1, invoices > big > 0, runs > 0") }
        var configuration = try await connection.load().database
        let name = configuration.database + "_bench_reads"
        do {
            let admin = try PostgresConnection(configuration)
            try admin.query("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)")
            try admin.query("CREATE DATABASE \"\(name)\"")
            configuration.database = name
            let db = try PostgresConnection(configuration)
            _ = try Migrator().migrate(db)
            let clock = ContinuousClock()
            var started = clock.now
            try seed(db)
            print("seeded \(invoices) invoices, \(customers) customers (one with \(big)) in \(clock.now - started)")
            started = clock.now
            try db.simpleQuery("VACUUM ANALYZE")
            print("vacuum analyze in \(clock.now - started)")
            try measure(Store(db))
            if !keep { try admin.query("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)") }
        } catch let error as PostgresError {
            throw CommandFailure("bench reads: \(error)")
        }
    }

    /// Invoices 1...big belong to customer B1, the rest round-robin to B2...Bn. Every invoice is
    /// booked on a day of 2026, every even one paid in full two weeks later by its own payment;
    /// each entry gets a commit stamp of its own.
    func seed(_ db: PostgresConnection) throws {
        try db.transaction {
            // Seeded entries carry their own stamps: the commit trigger (a no-op for them) fires
            // at once, so no trigger event is pending when the table is altered below.
            try db.query("SET CONSTRAINTS journal_entries_stamp_commit IMMEDIATE")
            try db.query("INSERT INTO customers (customer_id, name) SELECT 'B' || g, 'Bench customer ' || g FROM generate_series(1, $1::int) g",
                         [.int(customers)])
            try db.query("""
                INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor, balance_minor, status, issue_date, due_date, issued_fingerprint)
                SELECT 'I' || g, CASE WHEN g <= $2::int THEN 'B1' ELSE 'B' || (2 + g % ($3::int - 1)) END, 'N-' || g, 'USD',
                       10000 + (g::bigint * 7919) % 90000, CASE WHEN g % 2 = 0 THEN 0 ELSE 10000 + (g::bigint * 7919) % 90000 END,
                       CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'open' END,
                       DATE '2026-01-01' + (g % 365), DATE '2026-01-01' + (g % 365) + 30, 'bench'
                FROM generate_series(1, $1::int) g
                """, [.int(invoices), .int(big), .int(customers)])
            try db.query("""
                INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference, posted_at, booked_at, xact_id)
                SELECT 'JI' || i.invoice_id, 'invoice_issued', i.customer_id, 'USD', i.invoice_id, i.issue_date + time '10:00',
                       i.issue_date + time '10:00', NULL FROM invoices i ORDER BY i.issue_date, i.invoice_id
                """)
            try db.query("""
                INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
                SELECT 'JI' || invoice_id, 1, 'receivable', customer_id, invoice_id, amount_minor, 0 FROM invoices
                UNION ALL SELECT 'JI' || invoice_id, 2, 'revenue', customer_id, NULL, 0, amount_minor FROM invoices
                """)
            try db.query("""
                INSERT INTO payments (payment_id, customer_id, currency, amount_minor, method, received_at, fingerprint, xact_id)
                SELECT 'P' || invoice_id, customer_id, 'USD', amount_minor, 'card', issue_date + 14 + time '12:00', 'bench', NULL
                FROM invoices WHERE status = 'paid'
                """)
            try db.query("""
                INSERT INTO applications (invoice_id, customer_id, currency, origin_kind, origin_id, amount_minor)
                SELECT invoice_id, customer_id, 'USD', 'payment', 'P' || invoice_id, amount_minor FROM invoices WHERE status = 'paid'
                """)
            try db.query("""
                INSERT INTO journal_entries (entry_id, kind, customer_id, currency, reference, posted_at, booked_at, xact_id)
                SELECT 'JP' || payment_id, 'payment_received', customer_id, 'USD', payment_id, received_at, received_at, NULL FROM payments
                """)
            try db.query("""
                INSERT INTO journal_lines (entry_id, line_no, account, customer_id, invoice_id, debit_minor, credit_minor)
                SELECT 'JP' || p.payment_id, 1, 'cash:card', p.customer_id, NULL, p.amount_minor, 0 FROM payments p
                UNION ALL SELECT 'JP' || p.payment_id, 2, 'receivable', p.customer_id, substr(p.payment_id, 2), 0, p.amount_minor FROM payments p
                """)
            // One commit stamp per entry, as if each had its own transaction (the daemon's batches
            // share one): statement reads join every entry to its stamp. Synthetic transaction ids
            // from 2^60 up, far above any real one (epoch << 32 | xid).
            try db.query("""
                CREATE TEMPORARY TABLE seeded AS
                SELECT entry_id, posted_at, (1152921504606846976 + row_number() OVER (ORDER BY posted_at, entry_id))::text::xid8 AS xact_id,
                       row_number() OVER (ORDER BY posted_at, entry_id) AS seq
                FROM journal_entries
                """)
            try db.query("""
                INSERT INTO journal_commits (xact_id, seq, known_at)
                SELECT xact_id, seq, posted_at + seq * interval '1 microsecond' FROM seeded
                """)
            try db.query("ALTER TABLE journal_entries DISABLE TRIGGER journal_entries_immutable")
            try db.query("UPDATE journal_entries e SET xact_id = s.xact_id FROM seeded s WHERE s.entry_id = e.entry_id")
            try db.query("ALTER TABLE journal_entries ENABLE TRIGGER journal_entries_immutable")
            try db.query("UPDATE journal_clock SET last_seq = (SELECT max(seq) FROM journal_commits), last_at = (SELECT max(known_at) FROM journal_commits)")
            try db.query("UPDATE payments p SET xact_id = e.xact_id FROM journal_entries e WHERE e.entry_id = 'JP' || p.payment_id")
        }
    }

    struct Figures {
        var samples: [Int64] = []
        mutating func add(_ duration: Duration) {
            let (seconds, attoseconds) = duration.components
            samples.append(seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        }
        func percentile(_ p: Int) -> Int64 {
            let sorted = samples.sorted()
            return sorted[min(sorted.count - 1, (sorted.count * p) / 100)]
        }
    }

    func measure(_ store: Store) throws {
        let clock = ContinuousClock()
        func time(_ label: String, _ body: (Int) throws -> Void) throws -> Figures {
            for index in 0..<min(runs, 20) { try body(index) }  // warm up caches and prepared statements
            var figures = Figures()
            for index in 0..<runs {
                let started = clock.now
                try body(index)
                figures.add(clock.now - started)
            }
            return figures
        }
        let tables = ["journal_entries", "journal_lines", "journal_commits", "invoices", "payments", "applications", "customers", "credit_lots"]
        // Rows read by sequential scans (a scan of an empty or one-row table reads none).
        func sequentialScans() throws -> Int64 {
            try store.db.query("SELECT COALESCE(sum(seq_tup_read), 0)::bigint AS n FROM pg_stat_user_tables WHERE relname = ANY($1::text[])",
                               [.text("{" + tables.joined(separator: ",") + "}")]).first?.int64("n") ?? 0
        }
        let year = (BusinessDate("2026-01-01")!, BusinessDate("2026-12-31")!)
        try store.db.query("SELECT pg_stat_force_next_flush()")
        try store.db.query("SELECT 1 AS flushed")
        let scansBefore = try sequentialScans()
        var results: [(String, Figures)] = []
        results.append(("baseline: primary-key lookup", try time("pk") { index in
            _ = try store.customerName("B\(2 + index % (customers - 1))")
        }))
        results.append(("summary, customer with \(big) invoices", try time("summary") { _ in
            guard try store.accountSummary(customerID: "B1") != nil else { throw CommandFailure("no summary for B1") }
        }))
        results.append(("statement of a year, \(big) invoices", try time("statement") { _ in
            _ = try StatementReader.read(store: store, customerID: "B1", from: year.0, to: year.1, asKnownAt: nil)
        }))
        results.append(("statement of a year, typical customer", try time("small") { index in
            _ = try StatementReader.read(store: store, customerID: "B\(2 + index % (customers - 1))", from: year.0, to: year.1, asKnownAt: nil)
        }))
        results.append(("payment history page (50), big customer", try time("history") { _ in
            _ = try store.paymentHistory(customerID: "B1", filter: PaymentHistoryFilter(from: nil, to: nil, invoiceID: nil),
                                         horizonSequence: Int64.max, after: nil, limit: 50)
        }))
        // Statistics reach the views when a backend flushes them (at most once a second in
        // PostgreSQL 15): force it, let one more transaction end, then read.
        try store.db.query("SELECT pg_stat_force_next_flush()")
        try store.db.query("SELECT 1 AS flushed")
        let scans = try sequentialScans() - scansBefore
        let base = max(results[0].1.percentile(50), 1)
        func ms(_ micros: Int64) -> String {
            let text = "\(micros / 1000).\(String(micros % 1000 / 10 + 100).dropFirst()) ms"
            return text.leftPadded(10)
        }
        print("read                                          p50         p99   p50 / baseline p50")
        for (label, figures) in results {
            let ratio = figures.percentile(50) * 10 / base
            print("\(label.padding(44)) \(ms(figures.percentile(50)))  \(ms(figures.percentile(99)))   \(ratio / 10).\(ratio % 10)")
        }
        print("(\(runs) runs each; sequential scans of \(tables.joined(separator: ", ")) during the reads: \(scans) rows)")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
