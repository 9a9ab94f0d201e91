import ARDomain
import ArgumentParser
import Daemon
import Documents
import PostgresClient
import Store

/// `receivablesd report aging|dso|unapplied|exceptions|all [--as-of DATE] [--format table|csv|json|html]`: the AR
/// team's figures from the journal as known now, booked on or before the end of the as-of day.
///
/// Each report is one entry of `ReportCommand.reports`: a name and a function from the store and
/// the as-of date to a ReportDocument.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "AR reports: aging by customer, DSO (countback), unapplied cash by age, open reconciliation exceptions by reason and age; 'all' for the HTML page of all of them.")

    typealias Builder = @Sendable (Store, BusinessDate, Instant) throws -> ReportDocument

    static let reports: [(name: String, build: Builder)] = [
        ("aging", { store, asOf, now in ARReportDocuments.aging(try store.agingByCustomer(asOf: asOf), asOf: asOf, generatedAt: now) }),
        ("dso", { store, asOf, now in ARReportDocuments.dso(try store.daysSalesOutstanding(asOf: asOf), asOf: asOf, generatedAt: now) }),
        ("unapplied", { store, asOf, now in ARReportDocuments.unapplied(try store.unappliedByCustomer(asOf: asOf), asOf: asOf, generatedAt: now) }),
        ("exceptions", { store, asOf, now in ExceptionsReport.document(try ReportCommand.openExceptions(store), asOf: asOf, generatedAt: now) }),
    ]

    /// The reconciliation exceptions open now, as report lines (booking date, else the day received).
    static func openExceptions(_ store: Store) throws -> [OpenExceptionLine] {
        try store.openExceptions(limit: 100_000).map { exception in
            let booked = exception.bookingDate.flatMap(BusinessDate.init) ?? BusinessDate(String(exception.receivedAt.prefix(10)))!
            return OpenExceptionLine(entryID: exception.entryID, account: exception.accountKey, amount: exception.amount, bookedOn: booked,
                                     reason: exception.reason, candidateCustomers: exception.candidateCustomers)
        }
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "aging, dso, unapplied, exceptions or all.") var report: String
    @Option(name: .customLong("as-of"), help: "As-of day YYYY-MM-DD (default: today, UTC).") var asOf: String?
    @Option(help: "table, csv, json or html.") var format = "table"
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func validate() throws {
        guard report == "all" || ReportCommand.reports.contains(where: { $0.name == report }) else {
            throw ValidationError("unknown report '\(report)': \(ReportCommand.reports.map(\.name).joined(separator: ", ")) or all")
        }
        guard ReportDocument.Format(rawValue: format) != nil else { throw ValidationError("--format is table, csv, json or html") }
        if let asOf, BusinessDate(asOf) == nil { throw ValidationError("--as-of is a date YYYY-MM-DD") }
    }

    func run() async throws {
        let store = Store(try await connection.database())
        do {
            let now = try store.booksHorizon().instant
            let day = try asOf.flatMap(BusinessDate.init) ?? store.currentDate()
            let chosen = ReportCommand.reports.filter { report == "all" || $0.name == report }
            let documents = try chosen.map { try $0.build(store, day, now) }
            let format = ReportDocument.Format(rawValue: format)!
            if format == .html {
                try emit(ReportDocument.html(documents, title: documents.count == 1 ? documents[0].title : "Receivables reports"), to: output)
            } else {
                try emit(documents.map { $0.render(format) }.joined(separator: format == .table ? "\n" : ""), to: output)
            }
        } catch let error as PostgresError {
            throw CommandFailure("\(error)")
        }
    }
}
