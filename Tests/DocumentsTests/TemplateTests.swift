import ARContract
import ARDomain
@testable import Documents
import Foundation
import Testing

@Suite struct DocumentTests {
    static let usd = Currency(code: "USD")!
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func embeddedTemplatesAreUpToDate() throws {
        let folder = DocumentTests.root.appendingPathComponent("templates")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".mustache") }
        #expect(Set(files.map { String($0.dropLast(".mustache".count)) }) == Set(DocumentTemplates.texts.keys))
        for file in files {
            var text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            if text.hasSuffix("\n") { text.removeLast() }  // a multi-line literal ends before the file's last newline
            #expect(DocumentTemplates.texts[String(file.dropLast(".mustache".count))] == text, "\(file): run scripts/embed-templates.sh")
        }
    }

    @Test func noTemplateUsesUnescapedValues() {
        for (name, text) in DocumentTemplates.texts {
            #expect(!text.contains("{{{") && !text.contains("{{&"), "\(name) renders a value unescaped")
        }
    }

    static func statement(name: String, reference: String = "INV-1") -> StatementOfAccount {
        let day = BusinessDate("2026-03-02")!
        let posting = StatementPosting(entryID: "e1", kind: .invoice, reference: reference, currency: usd,
                                       bookedAt: Instant(microsecondsSinceEpoch: Int64(day.daysSinceEpoch) * 86_400_000_000), order: 0,
                                       receivableByInvoice: [reference: 12_345], creditChange: 0, documentDate: day, documentNumber: "N<1>")
        let inputs = StatementInputs(currency: usd, openingReceivable: 100, openingCredit: 0, postings: [posting],
                                     invoiceBalances: [InvoiceBalance(invoiceID: reference, dueDate: BusinessDate("2026-02-01")!, balance: 12_445)])
        return StatementOfAccount(customerID: "C<1>", customerName: name, from: BusinessDate("2026-03-01")!, to: day,
                                  asKnownAt: Instant(microsecondsSinceEpoch: 0), currencies: [CurrencyStatement.assemble(inputs, to: day)])
    }

    @Test func htmlEscapesEverythingPublishersChose() {
        let html = StatementDocument.html(DocumentTests.statement(name: "<script>alert('x')</script> & \"Co\""))
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;"))
        #expect(html.contains("C&lt;1&gt;") && html.contains("N&lt;1&gt;"))
        #expect(html.contains("124.45"), "closing balance 1.00 + 123.45")
        #expect(html.contains("<td class=\"money aging-days_1_30\">124.45</td>"))
    }

    @Test func csvQuotesAndDisarmsFormulas() {
        let csv = StatementDocument.csv(DocumentTests.statement(name: "x", reference: "=HYPERLINK(\"http://evil\")"))
        #expect(csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\","))
        #expect(csv.contains(",123.45,124.45\r\n"), "amounts stay numbers")
        #expect(csv.hasPrefix(StatementDocument.csvColumns.joined(separator: ",") + "\r\n"))
        #expect(CSV.field("-12.50", isAmount: true) == "-12.50")
        #expect(CSV.field("+1 555") == "'+1 555")
        #expect(CSV.field("@SUM(A1)") == "'@SUM(A1)")
        #expect(CSV.field("a,b") == "\"a,b\"")
    }

    @Test func jsonStatementValidatesAgainstTheReplySchema() throws {
        let statement = DocumentTests.statement(name: "Acme")
        let data = JSONValue.object(JSONObject([
            ("customer_id", .string("C-1")), ("name", .string("Acme")), ("from", .string("2026-03-01")), ("to", .string("2026-03-02")),
            ("as_known_at", .string(statement.asKnownAt.description)), ("statements", StatementDocument.json(statement)),
        ]))
        let bytes = encodeEvent(id: "r", source: "receivablesd", type: "statement.reply", time: Instant(microsecondsSinceEpoch: 0), subject: "C-1", data: data)
        let validator = try SchemaValidator(documents: EmbeddedSchemas.documents)
        let failures = validator.validate(try JSONParser().parse(bytes), against: "statement.reply.json")
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func reportChartScalesToTheLargestBar() {
        let chart = ReportDocument.Chart(caption: "c", bars: [("a", 50, "0.50"), ("b", 200, "2.00"), ("c", 0, "0.00")])
        let context = ReportDocument.chartContext(chart)
        let bars = context["bars"] as? [[String: Any]] ?? []
        #expect(bars.map { $0["bar_height"] as? Int } == [45, 180, 0])
    }
}

/// `receivablesd report exceptions`: a worked example counted by hand.
@Suite struct ExceptionsReportTests {
    static let eur = Currency(code: "EUR")!
    static let jpy = Currency(code: "JPY")!

    static func line(_ id: String, _ minor: Int64, _ currency: Currency, _ day: String, _ reason: String, _ candidates: [String] = []) -> OpenExceptionLine {
        OpenExceptionLine(entryID: id, account: "DE89", amount: Money(minorUnits: minor, currency: currency), bookedOn: BusinessDate(day)!,
                          reason: reason, candidateCustomers: candidates)
    }

    @Test func bucketsByReasonAndAgeWithTotals() throws {
        let asOf = BusinessDate("2026-03-31")!
        let lines = [
            Self.line("e1", 10_000, Self.eur, "2026-03-31", "ambiguous", ["C1", "C2"]),  // 0 days
            Self.line("e2", 2_500, Self.eur, "2026-03-29", "ambiguous", ["C3"]),          // 2 days: still 0-2
            Self.line("e3", 700, Self.eur, "2026-03-28", "no_match"),                     // 3 days: 3-7
            Self.line("e4", 99_999, Self.eur, "2026-02-01", "no_match"),                  // 58 days: 31+
            Self.line("e5", 500, Self.jpy, "2026-03-20", "currency_mismatch", ["C9"]),    // 11 days: 8-30
        ]
        let document = ExceptionsReport.document(lines.reversed(), asOf: asOf, generatedAt: Instant(rfc3339: "2026-03-31T12:00:00Z")!)
        #expect(document.sections.map(\.id) == ["EUR-summary", "EUR-entries", "JPY-summary", "JPY-entries"])
        let summary = document.sections[0]
        // reason, then (count, amount) for 0-2, 3-7, 8-30, 31+, total
        #expect(summary.rows[0] == ["ambiguous", "2", "125.00", "0", "0.00", "0", "0.00", "0", "0.00", "2", "125.00"])
        #expect(summary.rows[1] == ["no_match", "0", "0.00", "1", "7.00", "0", "0.00", "1", "999.99", "2", "1006.99"])
        #expect(summary.rows[2] == ["TOTAL", "2", "125.00", "1", "7.00", "0", "0.00", "1", "999.99", "4", "1131.99"])
        #expect(summary.hasTotal)
        let entries = document.sections[1]
        #expect(entries.rows.map { $0[0] } == ["e4", "e3", "e2", "e1"], "oldest first")
        #expect(entries.rows[0][3] == "58" && entries.rows[3][5] == "C1 C2")
        #expect(document.sections[2].rows.last == ["TOTAL", "0", "0", "0", "0", "1", "500", "0", "0", "1", "500"])
        let csv = document.render(.csv)
        #expect(csv.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("report,section,") }.count == 4, "a header per section shape:\n\(csv)")
    }

    @Test func noExceptionsIsAnEmptyReport() {
        let document = ExceptionsReport.document([], asOf: BusinessDate("2026-03-31")!, generatedAt: Instant(rfc3339: "2026-03-31T12:00:00Z")!)
        #expect(document.sections.isEmpty)
        #expect(document.render(.table).hasPrefix("Open reconciliation exceptions, as of 2026-03-31"))
    }
}
