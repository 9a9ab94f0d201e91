import ARContract
import ARDomain
import BankFormats
import Foundation
import Logging
import PostgresClient
import Store

/// `receivablesd bench reconcile`: a camt.053 statement of N credits against a book of open
/// invoices, reconciled through the real handler (decode → parse → identities → facts through
/// indexes → rules → books, journal, events → commit), against a baseline measured in the same
/// run on the same database: the same message only decoded, parsed and its entries stored.
/// Runs in a throwaway database, which it drops afterwards.
public struct ReconcileBenchmark {
    public struct Figures: Sendable {
        public let credits: Int
        public let invoices: Int
        public let customers: Int
        public let statementBytes: Int
        public let baselineSeconds: Double
        public let reconcileSeconds: Double
        /// state (and reason) → count, to show the run really reconciled.
        public let outcomes: [String: Int]
        public let verifyViolations: Int
    }

    let configuration: DaemonConfiguration
    let credits: Int
    let invoicesPerCustomer: Int
    let customers: Int

    public init(configuration: DaemonConfiguration, credits: Int, customers: Int, invoicesPerCustomer: Int) {
        self.configuration = configuration
        self.credits = credits
        self.customers = customers
        self.invoicesPerCustomer = invoicesPerCustomer
    }

    static let eur = Currency(code: "EUR")!

    public func run(log: (String) -> Void) throws -> Figures {
        let tag = "benchrec\(Monotonic.milliseconds() % 1_000_000_000)"
        let databaseName = "receivablesd_\(tag)"
        let admin = try PostgresConnection(configuration.database)
        // CREATE DATABASE takes no parameters; the name is built from digits only.
        try admin.simpleQuery("CREATE DATABASE \(databaseName)")
        defer { _ = try? admin.simpleQuery("DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)") }
        var settings = configuration
        settings.database.database = databaseName
        settings.maximumBodyBytes = 64 << 20
        settings.publishers = PublisherPolicy(allowed: ["bench": ["*"]])
        let db = try PostgresConnection(settings.database)
        try Migrator().migrate(db)
        let store = Store(db)

        log("book: \(customers) customers, \(customers * invoicesPerCustomer) open invoices (half the customers with a registered account)")
        let book = Book(customers: customers, invoicesPerCustomer: invoicesPerCustomer)
        try book.insert(into: store)
        try db.simpleQuery("ANALYZE")

        let (file, expectedCredits) = book.statement(credits: credits)
        let message = JSONSerializer.serialize(.object(JSONObject([
            ("specversion", .string("1.0")), ("id", .string("\(tag)-statement")), ("source", .string("bench-bank")),
            ("type", .string("bank.statement.received")), ("time", .string("2026-03-14T18:00:00Z")), ("format", .string("camt.053")),
            ("data_base64", .string(Data(file).base64EncodedString())),
        ])))
        log("statement: camt.053 of \(expectedCredits) credits, \(file.count) bytes (\(message.count) as a message)")
        let decoder = try InboundDecoder()
        let pipeline = MessagePipeline(configuration: settings, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                                       decoder: decoder)
        let limits = DecodingLimits(maximumBodyBytes: settings.maximumBodyBytes, maximumDepth: settings.maximumJSONDepth)

        log("baseline: decode, parse and store the \(expectedCredits) entries (no matching)")
        var started = Monotonic.nanoseconds()
        try db.transaction {
            guard case .success(let decoded) = decoder.decode(body: message, limits: limits),
                  case .bankStatementReceived(let command) = decoded.command else { throw BenchError("the statement message does not decode") }
            let statements = try BankFormats.parse(command.file, format: BankFormat(rawValue: command.format.rawValue))
            // Stored as unreconciled credits (exception no_match), as a parse-only importer would.
            let records = BankEntryIntake.records(statements, source: decoded.envelope.source, eventID: decoded.envelope.id).map { record in
                var stored = record
                if stored.isCredit { stored.reason = ExceptionReason.noMatch.rawValue }
                return stored
            }
            _ = try store.knownBankEntries(records.map(\.identity))
            try store.insertBankEntries(records)
        }
        let baseline = Double(Monotonic.nanoseconds() - started) / 1e9  // a figure for humans, not money
        try db.simpleQuery("TRUNCATE bank_entries CASCADE")

        log("reconcile: the same message through the bank.statement.received handler")
        started = Monotonic.nanoseconds()
        try db.transaction {
            guard case .success(let decoded) = decoder.decode(body: message, limits: limits) else { throw BenchError("the statement message does not decode") }
            let context = HandlerContext(message: decoded, delivery: Received(userID: "bench", body: message, routingKey: "bank.statement.received"),
                                         store: store, pipeline: pipeline)
            let disposition = try CommandHandlers.handle(context)
            guard disposition == .applied else { throw BenchError("the statement was not applied: \(disposition)") }
        }
        let reconcile = Double(Monotonic.nanoseconds() - started) / 1e9
        var outcomes: [String: Int] = [:]
        for row in try db.query("SELECT state || COALESCE(' ' || reason, '') || COALESCE(' ' || rule, '') AS outcome, count(*) AS n FROM bank_entries GROUP BY 1").all {
            outcomes[row.requiredString("outcome")] = Int(row.requiredInt64("n"))
        }
        log("verify: checking the reconciliation invariants on the result")
        let violations = try store.verify().filter { $0.check.hasPrefix("bank") || $0.check.hasPrefix("payout") || $0.check.hasPrefix("candidates") }
        return Figures(credits: expectedCredits, invoices: customers * invoicesPerCustomer, customers: customers, statementBytes: file.count,
                       baselineSeconds: baseline, reconcileSeconds: reconcile, outcomes: outcomes, verifyViolations: violations.count)
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The generated book: customers C<n>, invoices BN-<n> (some with an ISO 11649 payment
    /// reference), registered accounts BENCHACC<n> for even customers.
    struct Book {
        let customers: Int
        let invoicesPerCustomer: Int

        func amount(_ invoice: Int) -> Int64 { Int64(10_000 + (invoice * 7919) % 900_000) }
        func customer(of invoice: Int) -> Int { invoice / invoicesPerCustomer }
        func number(_ invoice: Int) -> String {
            let digits = String(invoice)
            return "BN-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
        }
        func reference(_ invoice: Int) -> String? {
            guard invoice % 3 == 0 else { return nil }
            let body = "B\(invoice)X"
            return "RF" + ReconcileBenchmark.checkDigits(body) + body
        }
        func account(_ customer: Int) -> String? { customer % 2 == 0 ? "BENCHACC\(customer)" : nil }

        func insert(into store: Store) throws {
            let db = store.db
            let chunk = 20_000
            var customerRows: [(String, String)] = []
            for index in 0..<customers {
                customerRows.append(("C\(index)", account(index).map { "[\"\($0)\"]" } ?? "[]"))
            }
            for start in stride(from: 0, to: customerRows.count, by: chunk) {
                let slice = customerRows[start..<min(start + chunk, customerRows.count)]
                try db.query("""
                    INSERT INTO customers (customer_id, name, bank_accounts)
                    SELECT c.id, 'Bench ' || c.id, c.accounts::jsonb FROM unnest($1::text[], $2::text[]) AS c(id, accounts)
                    """, [Store.textArrayParameter(slice.map(\.0)), Store.textArrayParameter(slice.map(\.1))])
            }
            let total = customers * invoicesPerCustomer
            for start in stride(from: 0, to: total, by: chunk) {
                let range = Array(start..<min(start + chunk, total))
                let ids: [String] = range.map { "I\($0)" }
                let owners: [String] = range.map { "C\(customer(of: $0))" }
                let numbers: [String] = range.map(number)
                let amounts: String = "{" + range.map { String(amount($0)) }.joined(separator: ",") + "}"
                let references: [String] = range.map { reference($0) ?? "" }
                let positions: String = "{" + range.map(String.init).joined(separator: ",") + "}"
                try db.query("""
                    INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor, balance_minor, status, issue_date, due_date,
                                          payment_reference, issued_fingerprint)
                    SELECT i.id, i.customer, i.number, 'EUR', i.amount, i.amount, 'open', '2026-01-01', ('2026-02-01'::date + (i.n % 60)),
                           NULLIF(i.reference, ''), 'bench'
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[])
                         AS i(id, customer, number, amount, reference, n)
                    """, [Store.textArrayParameter(ids), Store.textArrayParameter(owners), Store.textArrayParameter(numbers), .text(amounts),
                          Store.textArrayParameter(references), .text(positions)])
            }
        }

        /// A camt.053 with `credits` credits of mixed quality: ISO 11649 references, one or two
        /// invoice numbers in messy text, only a registered account with the exact amount, bank
        /// charges within tolerance, and unknown payers.
        func statement(credits: Int) -> (file: [UInt8], credits: Int) {
            var entries: [BankEntry] = []
            let total = customers * invoicesPerCustomer
            var net: Int64 = 0
            for index in 0..<credits {
                // Spread over the book; each credit takes its own invoices.
                let invoice = (index * 9) % max(1, total - 2)
                var remittance: String?
                var debtor: String?
                var amount = amount(invoice)
                switch index % 10 {
                case 0, 1, 2:
                    let target = invoice - invoice % 3  // an invoice with a reference
                    remittance = "Payment " + (reference(target) ?? number(target))
                    amount = self.amount(target)
                case 3, 4, 5:
                    remittance = "Rechnungen \(number(invoice)) und \(number(invoice + 1).lowercased()) danke"
                    amount = self.amount(invoice) + self.amount(invoice + 1)
                case 6, 7:
                    let customer = customer(of: invoice) - customer(of: invoice) % 2
                    let target = customer * invoicesPerCustomer
                    debtor = account(customer)
                    amount = self.amount(target + (index % invoicesPerCustomer))
                    remittance = "thank you"
                case 8:
                    remittance = "inv " + number(invoice).replacingDashes() + " less charges"
                    amount = self.amount(invoice) - 150
                default:
                    remittance = "misc transfer \(index)"
                    amount = Int64(1_000 + index)
                }
                net += amount
                entries.append(BankEntry(entryID: "BENCH-\(index)", statementID: "BENCH-1", account: "DE89370400440532013000", creditDebit: .credit,
                                         amount: Money(minorUnits: amount, currency: ReconcileBenchmark.eur), bookingDate: BankDate(year: 2026, month: 3, day: 14),
                                         valueDate: BankDate(year: 2026, month: 3, day: 14), remittanceInfo: remittance, debtorName: "Payer \(index)",
                                         debtorAccount: debtor))
            }
            let statement = BankStatement(format: .camt053, statementID: "BENCH-1", sequenceNumber: "1", account: "DE89370400440532013000",
                                          currency: ReconcileBenchmark.eur,
                                          openingBalance: BankBalance(amount: .zero(ReconcileBenchmark.eur), date: BankDate(year: 2026, month: 3, day: 13)),
                                          closingBalance: BankBalance(amount: Money(minorUnits: net, currency: ReconcileBenchmark.eur), date: BankDate(year: 2026, month: 3, day: 14)),
                                          entries: entries, entryCount: entries.count)
            var writer = BankStatementWriter(format: .camt053)
            let text = writer.begin() + writer.write(statement) + writer.end()
            return (Array(text.utf8), entries.count)
        }
    }

    static func checkDigits(_ body: String) -> String {
        let remainder = Mod97.remainder(Array((body + "RF00").unicodeScalars)) ?? 0
        let check = 98 - remainder
        return check < 10 ? "0\(check)" : String(check)
    }

    public func describe(_ figures: Figures) -> String {
        let baselineRate = Double(figures.credits) / max(figures.baselineSeconds, 1e-9)
        let reconcileRate = Double(figures.credits) / max(figures.reconcileSeconds, 1e-9)
        func format(_ value: Double) -> String { String(Int(value.rounded())) }
        let outcomes = figures.outcomes.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }.joined(separator: "\n")
        return """
            measurement                                  entries/s    seconds   ratio to baseline
            baseline (decode, parse, store entries)   \(format(baselineRate).leftPadding(10))   \(String(format3(figures.baselineSeconds)).leftPadding(8))   1.0
            reconcile (rules, books, journal, events) \(format(reconcileRate).leftPadding(10))   \(String(format3(figures.reconcileSeconds)).leftPadding(8))   \(format3(reconcileRate / baselineRate))
            (\(figures.credits) credits in one camt.053 of \(figures.statementBytes) bytes against \(figures.invoices) open invoices of \(figures.customers) customers)
            outcomes:
            \(outcomes)
            verify (reconciliation checks): \(figures.verifyViolations == 0 ? "all hold" : "\(figures.verifyViolations) violation(s)")
            """
    }

    func format3(_ value: Double) -> String { String(Double(Int(value * 1000)) / 1000) }
}

extension String {
    fileprivate func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    fileprivate func replacingDashes() -> String { split(separator: "-").joined(separator: " ") }
}

