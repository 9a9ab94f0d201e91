import ARDomain
import PropertyBased
import Testing
import TestSupport

/// Random histories of one customer's books, booked over random days: every statement cut from
/// the journal adds up, its running balances follow, its aging sums to its receivable, and it
/// agrees with the books as they stood at the end of its last day.
@Suite struct StatementPropertyTests {
    static let currencies = [usd, jpy, kwd]

    struct DayState {
        var receivable: [Currency: Int64] = [:]
        var credit: [Currency: Int64] = [:]
        var invoiceBalances: [String: Int64] = [:]
    }

    struct Run {
        var rng: SplitMix
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        var postings: [StatementPosting] = []
        var dueDates: [String: BusinessDate] = [:]
        var states: [BusinessDate: DayState] = [:]
        var day = date("2026-01-01")
        var clock: Int64 = 0
        var counter = 0

        init(seed: UInt64) { rng = SplitMix(state: seed) }

        mutating func money(_ currency: Currency) -> Money {
            Money(minorUnits: Int64(rng.int(1...500_000)), currency: currency)
        }

        var openInvoices: [Invoice] { books.invoices.values.filter { $0.status.isOpen }.sorted { $0.id < $1.id } }

        /// One random operation; rejections leave nothing behind (CustomerBooks is a value).
        mutating func step() {
            counter += 1
            var next = books
            let before = next.journal.count
            do {
                switch rng.int(0...99) {
                case 0..<30:
                    let currency = rng.pick(StatementPropertyTests.currencies)!
                    let id = "I\(counter)"
                    let due = day.adding(days: rng.int(-100...40))
                    dueDates[id] = due
                    next.issue(Invoice(id: id, customerID: "C1", number: "N\(counter)", amount: money(currency), issueDate: day, dueDate: due))
                case 30..<60:
                    let currency = rng.pick(StatementPropertyTests.currencies)!
                    _ = try next.receive(MoneyOrigin(.payment, "P\(counter)"), amount: money(currency), cashAccount: .cash("card"), explicit: [])
                case 60..<70:
                    let paid = next.applications.map(\.origin).filter { $0.kind == .payment }
                    if let origin = rng.pick(paid), let currency = next.applications.first(where: { $0.origin == origin })?.amount.currency {
                        let standing = next.standing(of: origin, in: currency)
                        if standing.isPositive {
                            next.takeBack(Money(minorUnits: Int64(rng.int(1...Int(standing.minorUnits))), currency: currency), of: origin,
                                          kind: rng.chance(50) ? .refund : .reversal, reference: "R\(counter)")
                        }
                    }
                case 70..<80:
                    let currency = rng.pick(StatementPropertyTests.currencies)!
                    let target = rng.chance(60) ? rng.pick(openInvoices.filter { $0.currency == currency })?.id : nil
                    try next.issueCreditNote(id: "CN\(counter)", amount: money(currency), invoiceID: target, invoiceKnown: target != nil)
                case 80..<87:
                    if let invoice = rng.pick(openInvoices) { try next.void(invoiceID: invoice.id) }
                case 87..<93:
                    if let invoice = rng.pick(openInvoices) { try next.writeOff(invoiceID: invoice.id) }
                default:
                    if let invoice = rng.pick(openInvoices) {
                        try next.adjust(invoiceID: invoice.id, to: Money(minorUnits: Int64(rng.int(0...600_000)), currency: invoice.currency))
                    }
                }
            } catch {
                return
            }
            books = next
            for entry in books.journal[before...] {
                clock += Int64(rng.int(1...5_000_000))
                let bookedAt = Instant(microsecondsSinceEpoch: Int64(day.daysSinceEpoch) * 86_400_000_000 + min(clock, 86_399_999_999))
                postings.append(StatementPosting(entry: entry, entryID: "E\(postings.count)", bookedAt: bookedAt, order: Int64(postings.count)))
            }
        }

        mutating func endDay() {
            var state = DayState()
            for invoice in books.invoices.values {
                if invoice.status.isOpen || invoice.balance.isPositive { state.receivable[invoice.currency, default: 0] += invoice.balance.minorUnits }
                if !invoice.balance.isZero { state.invoiceBalances[invoice.id] = invoice.balance.minorUnits }
            }
            for (currency, money) in books.credit { state.credit[currency] = money.minorUnits }
            states[day] = state
            day = day.adding(days: rng.int(1...9))
            clock = 0
        }
    }

    @Test func statementsAddUpAndAgreeWithTheBooks() async {
        await propertyCheck(count: 150, input: Gen.uint64()) { seed in
            var run = Run(seed: seed)
            for _ in 0..<25 {
                for _ in 0..<run.rng.int(0...5) { run.step() }
                run.endDay()
            }
            let days = run.states.keys.sorted()
            for _ in 0..<8 {
                let a = run.rng.pick(days)!, b = run.rng.pick(days)!
                let (from, to) = (min(a, b), max(a, b))
                check(run, seed: seed, from: from, to: to)
                // Consecutive periods chain: this closing is the next period's opening.
                let next = to.adding(days: 1)
                for currency in StatementPropertyTests.currencies {
                    let first = CurrencyStatement.assemble(.aggregate(run.postings, currency: currency, dueDates: run.dueDates, from: from, to: to), to: to)
                    let second = CurrencyStatement.assemble(.aggregate(run.postings, currency: currency, dueDates: run.dueDates, from: next, to: next.adding(days: 30)), to: next.adding(days: 30))
                    #expect(first.closingBalance == second.openingBalance, "seed \(seed): \(currency) closing \(to) != opening \(next)")
                }
            }
        }
    }

    func check(_ run: Run, seed: UInt64, from: BusinessDate, to: BusinessDate) {
        let state = run.states[to]!
        for currency in StatementPropertyTests.currencies {
            let inputs = StatementInputs.aggregate(run.postings, currency: currency, dueDates: run.dueDates, from: from, to: to)
            let statement = CurrencyStatement.assemble(inputs, to: to)
            let label = "seed \(seed) \(currency) \(from)...\(to)"
            #expect(statement.openingBalance + statement.charges - statement.credits == statement.closingBalance, "\(label): opening + charges − credits")
            var running = statement.openingBalance
            for movement in statement.movements {
                #expect(movement.amount != 0, "\(label): a movement of zero")
                running += movement.amount
                #expect(movement.runningBalance == running, "\(label): running balance of \(movement.posting.entryID)")
                #expect(movement.posting.bookedOn >= from && movement.posting.bookedOn <= to, "\(label): movement outside the period")
            }
            #expect(running == statement.closingBalance, "\(label): last running balance")
            #expect(statement.aging.total == statement.closingReceivable, "\(label): aging sums to the receivable")
            #expect(statement.aging.all.allSatisfy { $0 >= 0 }, "\(label): a negative aging bucket \(statement.aging)")
            #expect(statement.closingBalance == statement.closingReceivable - statement.closingCredit, "\(label): closing = receivable − credit")
            // The statement agrees with the books as they stood at the end of `to`.
            #expect(statement.closingReceivable == state.receivable[currency] ?? 0, "\(label): receivable vs books")
            #expect(statement.closingCredit == state.credit[currency] ?? 0, "\(label): credit vs books")
            for balance in inputs.invoiceBalances {
                #expect(balance.balance == state.invoiceBalances[balance.invoiceID], "\(label): invoice \(balance.invoiceID) at \(to)")
                #expect(balance.balance > 0, "\(label): invoice \(balance.invoiceID) below zero at a day boundary")
            }
        }
    }

    // MARK: tables

    @Test(arguments: [(-5, 0), (0, 0), (1, 1), (30, 1), (31, 2), (60, 2), (61, 3), (90, 3), (91, 4), (4000, 4)])
    func agingBuckets(daysPastDue: Int, bucket: Int) {
        #expect(AgingBuckets.bucket(daysPastDue: daysPastDue) == bucket)
    }

    @Test func aStatementByHand() {
        // Opening: invoice A 100.00 booked Feb 20; in March: invoice B 50.00, payment 120.00
        // (A paid, 20.00 on B), credit note 10.00 unapplied.
        let feb = Instant(microsecondsSinceEpoch: Int64(date("2026-02-20").daysSinceEpoch) * 86_400_000_000)
        let mar = Instant(microsecondsSinceEpoch: Int64(date("2026-03-05").daysSinceEpoch) * 86_400_000_000)
        let postings = [
            StatementPosting(entryID: "e1", kind: .invoice, reference: "A", currency: usd, bookedAt: feb, order: 0, receivableByInvoice: ["A": 10000], creditChange: 0),
            StatementPosting(entryID: "e2", kind: .invoice, reference: "B", currency: usd, bookedAt: mar, order: 1, receivableByInvoice: ["B": 5000], creditChange: 0),
            StatementPosting(entryID: "e3", kind: .payment, reference: "P", currency: usd, bookedAt: mar, order: 2,
                             receivableByInvoice: ["A": -10000, "B": -2000], creditChange: 0),
            StatementPosting(entryID: "e4", kind: .creditNote, reference: "CN", currency: usd, bookedAt: mar, order: 3, receivableByInvoice: [:], creditChange: 1000),
        ]
        let inputs = StatementInputs.aggregate(postings, currency: usd, dueDates: ["A": date("2026-02-28"), "B": date("2026-01-15")],
                                               from: date("2026-03-01"), to: date("2026-03-31"))
        let statement = CurrencyStatement.assemble(inputs, to: date("2026-03-31"))
        #expect(statement.openingBalance == 10000)
        #expect(statement.movements.map(\.amount) == [5000, -12000, -1000])
        #expect(statement.movements.map(\.runningBalance) == [15000, 3000, 2000])
        #expect((statement.charges, statement.credits, statement.closingBalance) == (5000, 13000, 2000))
        #expect((statement.closingReceivable, statement.closingCredit) == (3000, 1000))
        #expect(statement.aging.days61to90 == 3000, "B is 75 days past due on Mar 31")
    }
}
