import ARDomain
import Benchmark

/// Benchmark 3: a payment spread oldest due first over a customer's 1,000 open invoices
/// (`CustomerBooks.receive`, SPEC section 2 `payment.succeeded` without explicit allocations):
/// sorting by due date, applying, one balanced journal entry. The payment is the customer's whole
/// balance, so every invoice is paid. Baseline: a plain loop summing the same 1,000 balances.
func registerAllocationBenchmarks() {
    var random = SeededGenerator(seed: 0x414C_4C4F_4301)
    let firstIssue = BusinessDate(year: 2025, month: 6, day: 1)!
    let invoices: [Invoice] = (0..<1_000).map { index in
        // Issued over ten months, due in 14 to 60 days: due dates interleave, as real books do.
        let issued = firstIssue.adding(days: Int.random(in: 0..<300, using: &random))
        return Invoice(id: "I-\(index)", customerID: "C-1", number: invoiceNumber(index),
                       amount: Money(minorUnits: invoiceAmountMinorUnits(&random), currency: euro),
                       issueDate: issued, dueDate: issued.adding(days: [14, 30, 45, 60][index % 4]))
    }
    let books = CustomerBooks(customerID: "C-1", invoices: invoices, lots: [], applications: [])
    let balances = invoices.map(\.balance.minorUnits)
    let payment = Money(minorUnits: balances.reduce(0, +), currency: euro)
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 3,
                                                maxDuration: .seconds(2), maxIterations: 5_000)

    Benchmark("allocation: payment oldest due first over 1,000 open invoices", configuration: configuration) { benchmark in
        // The books are a value: each iteration starts from the same 1,000 open invoices.
        var working = books
        do {
            let result = try working.receive(MoneyOrigin(.payment, "pay-1"), amount: payment, cashAccount: .cash("card"), explicit: [])
            guard result.allocations.count == invoices.count, result.unapplied.isZero else {
                benchmark.error("the payment was not spread over every invoice")
                return
            }
            blackHole(result)
        } catch {
            benchmark.error("the payment is rejected: \(error)")
        }
    }
    Benchmark("allocation baseline: sum of 1,000 balances", configuration: configuration) { benchmark in
        var total: Int64 = 0
        for balance in balances { total &+= balance }
        blackHole(total)
    }
}
