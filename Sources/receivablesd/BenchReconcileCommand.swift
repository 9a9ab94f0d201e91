import ArgumentParser
import Daemon

/// `receivablesd bench reconcile`: credits per second through reconciliation against the same
/// statement only decoded, parsed and stored, both in the same run (see `ReconcileBenchmark`).
struct BenchReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Measure entries/s reconciling a camt.053 statement against a large book, against a parse-and-store baseline."
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Credits in the statement.") var credits = 10_000
    @Option(help: "Customers in the book.") var customers = 20_000
    @Option(help: "Open invoices per customer.") var invoicesPerCustomer = 5

    func run() async throws {
        guard credits > 0, customers > 1, invoicesPerCustomer > 1 else { throw ValidationError("need credits > 0, customers > 1, invoices per customer > 1") }
        let configuration = try await connection.load()
        let benchmark = ReconcileBenchmark(configuration: configuration, credits: credits, customers: customers, invoicesPerCustomer: invoicesPerCustomer)
        let figures: ReconcileBenchmark.Figures
        do { figures = try benchmark.run { print("  \($0)") } } catch { throw CommandFailure("bench failed: \(error)") }
        print(benchmark.describe(figures))
    }
}
