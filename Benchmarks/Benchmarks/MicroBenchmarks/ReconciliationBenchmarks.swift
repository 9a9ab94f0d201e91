import ARDomain
import Benchmark

/// Benchmark 4: one bank credit against a working set of 100,000 open invoices of 20,000 customers
/// (`ReconciliationRun`, as the daemon reconciles a statement): scan the texts, look the keys up in
/// the indexes, run the SPEC section 3 rules. Three credits: an invoice number in messy text, an
/// ISO 11649 reference in the structured field, and a transfer nothing identifies (an exception).
/// Baseline: a dictionary lookup of an invoice number among the same 100,000.
func registerReconciliationBenchmarks() {
    let configuration = perItemConfiguration()
    for example in ReconciliationBook.Example.allCases {
        Benchmark("reconcile: \(example.rawValue) vs 100,000 open invoices", configuration: configuration) { benchmark, book in
            let credit = book.credit(example)
            for _ in benchmark.scaledIterations {
                let scan = credit.scan
                let decision = Reconciler.decide(credit, scan: scan, facts: book.run.facts(for: credit, scan: scan), policy: book.run.policy)
                blackHole(decision)
            }
            let decision = Reconciler.decide(credit, facts: book.run.facts(for: credit), policy: book.run.policy)
            if decision.state != example.expectedState { benchmark.error("\(example.rawValue): \(decision.state), not \(example.expectedState)") }
        } setup: {
            ReconciliationBook.shared
        }
    }
    Benchmark("reconcile baseline: dictionary lookup of an invoice number among 100,000", configuration: configuration) { benchmark, book in
        let number = invoiceNumber(ReconciliationBook.namedInvoice)
        for _ in benchmark.scaledIterations {
            blackHole(book.invoiceIDByNumber[number])
        }
    } setup: {
        ReconciliationBook.shared
    }
}

/// The generated book, built once per process (building 100,000 facts and indexes takes a while
/// and is not what is measured).
final class ReconciliationBook: Sendable {
    static let invoiceCount = 100_000
    static let invoicesPerCustomer = 5
    /// The invoice the remittance text names, and the one whose reference is in the structured field.
    static let namedInvoice = 47_113
    static let referencedInvoice = 81_234  // a multiple of 3: it has a payment reference

    static let shared = ReconciliationBook()

    enum Example: String, CaseIterable {
        case invoiceNumberInText = "invoice number in remittance text"
        case structuredReference = "RF reference in structured field"
        case unknown = "unknown credit"

        var expectedState: BankCreditState {
            switch self {
            case .invoiceNumberInText, .structuredReference: .matched
            case .unknown: .exception
            }
        }
    }

    let run: ReconciliationRun
    let amounts: [Int64]
    let invoiceIDByNumber: [String: String]

    private init() {
        var random = SeededGenerator(seed: 0x5245_434F_4E01)
        let issued = BusinessDate(year: 2026, month: 1, day: 15)!
        var facts: [InvoiceFact] = []
        var amounts: [Int64] = []
        var byNumber: [String: String] = [:]
        facts.reserveCapacity(Self.invoiceCount)
        for index in 0..<Self.invoiceCount {
            let amount = Money(minorUnits: invoiceAmountMinorUnits(&random), currency: euro)
            amounts.append(amount.minorUnits)
            // Every third invoice carries a payment reference, as in `receivablesd bench reconcile`.
            let reference = index % 3 == 0 ? creditorReference(body: "\(index)C\(index / Self.invoicesPerCustomer)") : nil
            facts.append(InvoiceFact(id: "I-\(index)", customerID: "C-\(index / Self.invoicesPerCustomer)", number: invoiceNumber(index),
                                     paymentReference: reference, amount: amount, balance: amount, status: .open,
                                     issueDate: issued.adding(days: index % 60), dueDate: issued.adding(days: 30 + index % 60)))
            byNumber[invoiceNumber(index)] = "I-\(index)"
        }
        self.amounts = amounts
        invoiceIDByNumber = byNumber
        run = ReconciliationRun(invoices: facts, payouts: [], accountOwners: [:], oldestFirstCustomers: [], policy: ReconciliationPolicy())
    }

    func credit(_ example: Example) -> BankCredit {
        switch example {
        case .invoiceNumberInText:
            let invoice = Self.namedInvoice
            // Lower case, without the dashes, among other numbers: as payers type it.
            return BankCredit(entryID: "E-1", amount: Money(minorUnits: amounts[invoice], currency: euro), debtorAccount: "DE02120300000000202051",
                              debtorName: "Mueller Haustechnik GmbH",
                              remittanceInfo: "Zahlung Rechnung inv 2026 0\(invoice) Kd-Nr 9\(invoice / Self.invoicesPerCustomer) vom 15.01.2026 danke",
                              structuredReference: nil, endToEndID: "NOTPROVIDED")
        case .structuredReference:
            let invoice = Self.referencedInvoice
            let reference = creditorReference(body: "\(invoice)C\(invoice / Self.invoicesPerCustomer)")
            return BankCredit(entryID: "E-2", amount: Money(minorUnits: amounts[invoice], currency: euro), debtorAccount: "FR7630006000011234567890189",
                              debtorName: "SARL Dupont", remittanceInfo: nil, structuredReference: reference, endToEndID: "E2E-2026-03-14-0002")
        case .unknown:
            return BankCredit(entryID: "E-3", amount: Money(minorUnits: 73_519, currency: euro), debtorAccount: "NL91ABNA0417164300",
                              debtorName: "J. de Vries", remittanceInfo: "Sammelueberweisung Maerz Bestellung 55-8812 siehe Avis",
                              structuredReference: nil, endToEndID: nil)
        }
    }
}
