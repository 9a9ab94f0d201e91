import ARDomain
import PropertyBased
import Testing
import TestSupport

/// Random histories of one customer's books checked step by step against `BooksModel`.
@Suite struct BooksPropertyTests {
    static let currencies = [usd, jpy, kwd]
    static let invoicePool = (0..<14).map { "I\($0)" }
    static let cases = 300
    static let steps = 40

    /// Runs `cases` random histories. With `reload`, the books are rebuilt after every step the
    /// way the Store loads them (stored lots and applications get ids), so the change sets are
    /// checked too; without, one CustomerBooks holds the whole history in memory.
    @Test(arguments: [false, true])
    func randomHistoriesAgreeWithTheModel(reload: Bool) async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var history = History(seed: seed, reload: reload)
            history.run(steps: Self.steps)
        }
    }

    struct History {
        var rng: SplitMix
        let seed: UInt64
        let reload: Bool
        var books = CustomerBooks(customerID: "C1", invoices: [], lots: [], applications: [])
        var model = BooksModel()
        /// Every journal entry posted so far (a reload starts the books' own journal afresh).
        var journal: [JournalEntry] = []
        var nextStoredID: Int64 = 0
        var counter = 0
        var log: [String] = []

        init(seed: UInt64, reload: Bool) {
            self.seed = seed
            self.reload = reload
            rng = SplitMix(state: seed)
        }

        mutating func money(_ currency: Currency, maxMinor: Int64? = nil) -> Money {
            let limit = maxMinor ?? Int64(1000) * currency.minorUnitsPerMajor
            // Mostly round-ish amounts so invoices and payments meet exactly now and then.
            let minor = rng.chance(30) ? Int64(rng.int(1...10)) * max(1, limit / 10) : Int64.random(in: 1...max(1, limit), using: &rng)
            return Money(minorUnits: minor, currency: currency)
        }

        var issuedIDs: [String] { BooksPropertyTests.invoicePool.filter { model.invoices[$0] != nil } }
        var unissuedIDs: [String] { BooksPropertyTests.invoicePool.filter { model.invoices[$0] == nil } }

        mutating func run(steps: Int) {
            for step in 0..<steps {
                let modelBefore = model
                let problems = self.step()
                var all = problems
                if all.isEmpty { all = invariants(modelBefore: modelBefore) }
                if !all.isEmpty {
                    Issue.record("seed \(seed) reload \(reload) step \(step):\n  \(log.suffix(8).joined(separator: "\n  "))\nproblems:\n  \(all.joined(separator: "\n  "))")
                    return
                }
                if reload {
                    journal += books.journal
                    reloadBooks()
                }
            }
        }

        /// Rebuilds the books as the Store would load them after committing this step.
        mutating func reloadBooks() {
            var lots: [CreditLot] = []
            for lot in books.lots {
                if lot.id != nil { lots.append(lot); continue }
                nextStoredID += 1
                lots.append(CreditLot(id: nextStoredID, origin: lot.origin, original: lot.original, remaining: lot.remaining, reservedForInvoice: lot.reservedForInvoice))
            }
            var applications: [Application] = []
            for application in books.applications {
                if application.id != nil { applications.append(application); continue }
                nextStoredID += 1
                applications.append(Application(id: nextStoredID, invoiceID: application.invoiceID, origin: application.origin, amount: application.amount, unwound: application.unwound))
            }
            books = CustomerBooks(customerID: "C1", invoices: Array(books.invoices.values), lots: lots, applications: applications)
        }

        /// Runs one books operation that the model expects to be `expected` (nil = accepted).
        mutating func perform(_ expected: String?, _ description: String, _ body: (inout CustomerBooks) throws -> Void) -> [String] {
            log.append(description + (expected.map { " [expect \($0)]" } ?? ""))
            // CustomerBooks is a value: keep a copy, run the operation on the books themselves,
            // and a rejection must leave them exactly as the copy.
            let copy = books
            do {
                try body(&books)
            } catch let error as BooksRejection {
                var problems = error.code == expected ? [] : ["rejected \(error.code) (\(error.detail)), model expected \(expected ?? "success")"]
                if books.snapshot != copy.snapshot || books.statusChanges != copy.statusChanges || books.creditChanges != copy.creditChanges {
                    problems.append("the books changed although the operation was rejected")
                }
                return problems
            } catch {
                return ["unexpected error \(error)"]
            }
            return expected == nil ? [] : ["accepted, model expected \(expected!)"]
        }

        // MARK: one random step

        mutating func step() -> [String] {
            counter += 1
            let roll = rng.int(0...99)
            switch roll {
            case 0..<20 where !unissuedIDs.isEmpty: return issue()
            case 0..<45: return pay()
            case 45..<58: return takeBack()
            case 58..<70: return creditNote()
            case 70..<82 where !issuedIDs.isEmpty: return adjust()
            case 82..<91 where !issuedIDs.isEmpty: return void()
            case 91..<100 where !issuedIDs.isEmpty: return writeOff()
            default: return pay()
            }
        }

        mutating func issue() -> [String] {
            let id = rng.pick(unissuedIDs)!
            let currency = rng.pick(BooksPropertyTests.currencies)!
            let amount = rng.chance(5) ? Money.zero(currency) : money(currency)
            // Few distinct dates, so due-date and issue-date ties happen.
            let issued = date("2026-01-01").adding(days: rng.int(0...3) * 10)
            let due = issued.adding(days: rng.int(0...2) * 15)
            let new = Invoice(id: id, customerID: "C1", number: "N" + id, amount: amount, issueDate: issued, dueDate: due)
            model.issue(new)
            return perform(nil, "issue \(id) \(amount) due \(due)") { $0.issue(new) }
        }

        mutating func adjust() -> [String] {
            let id = rng.pick(issuedIDs)!
            let invoice = model.invoices[id]!
            let currency = rng.chance(8) ? rng.pick(BooksPropertyTests.currencies)! : invoice.currency
            let newAmount = rng.chance(10) ? Money.zero(currency)
                : Money(minorUnits: Int64.random(in: 0...max(100, invoice.amount * 2), using: &rng), currency: currency)
            let expected = model.adjust(id, to: newAmount)
            return perform(expected, "adjust \(id) to \(newAmount)") { try $0.adjust(invoiceID: id, to: newAmount) }
        }

        mutating func void() -> [String] {
            let id = rng.pick(issuedIDs)!
            let expected = model.void(id)
            return perform(expected, "void \(id)") { try $0.void(invoiceID: id) }
        }

        mutating func writeOff() -> [String] {
            let id = rng.pick(issuedIDs)!
            let expected = model.writeOff(id)
            return perform(expected, "write off \(id)") { try $0.writeOff(invoiceID: id) }
        }

        mutating func creditNote() -> [String] {
            let id = "CN\(counter)"
            let currency = rng.pick(BooksPropertyTests.currencies)!
            let amount = money(currency, maxMinor: 300 * currency.minorUnitsPerMajor)
            let target: String?
            switch rng.int(0...2) {
            case 0: target = nil
            case 1: target = rng.pick(issuedIDs)
            default: target = rng.pick(unissuedIDs)
            }
            let known = target.map { model.invoices[$0] != nil } ?? false
            let expected = model.creditNote(id, amount, invoiceID: target)
            return perform(expected, "credit note \(id) \(amount) on \(target ?? "-")") {
                try $0.issueCreditNote(id: id, amount: amount, invoiceID: target, invoiceKnown: known)
            }
        }

        mutating func pay() -> [String] {
            let id = "P\(counter)"
            let currency = rng.pick(BooksPropertyTests.currencies)!
            var explicit: [(String, Money)] = []
            for _ in 0..<rng.int(0...3) {
                let roll = rng.int(0...99)
                let live = issuedIDs.filter { model.invoices[$0]!.currency == currency && model.invoices[$0]!.isLive }
                if roll < 50, let target = rng.pick(live) {
                    let balance = model.invoices[target]!.balance
                    let minor = rng.chance(5) ? balance + 1 : Int64.random(in: 1...balance, using: &rng)
                    explicit.append((target, Money(minorUnits: minor, currency: currency)))
                } else if roll < 78, let target = rng.pick(unissuedIDs) {
                    explicit.append((target, money(currency, maxMinor: 300 * currency.minorUnitsPerMajor)))
                } else if roll < 88, let target = rng.pick(issuedIDs) {
                    explicit.append((target, money(currency, maxMinor: 50 * currency.minorUnitsPerMajor)))
                } else if roll < 95, let previous = explicit.last {
                    explicit.append(previous)
                } else if let target = rng.pick(BooksPropertyTests.invoicePool) {
                    explicit.append((target, money(rng.pick(BooksPropertyTests.currencies)!, maxMinor: 100)))
                }
            }
            let requested = explicit.filter { $0.1.currency == currency }.reduce(Int64(0)) { $0 + $1.1.minorUnits }
            let amount = rng.chance(85)
                ? Money(minorUnits: requested + (rng.chance(20) ? 0 : money(currency).minorUnits), currency: currency)
                : money(currency)
            guard amount.isPositive else { return [] }
            let unknown = Set(explicit.map(\.0).filter { model.invoices[$0] == nil })
            let expected = model.receive(id, amount, explicit: explicit)
            var result: PaymentApplicationResult?
            let requests = explicit.map { RequestedAllocation(invoiceID: $0.0, amount: $0.1) }
            var problems = perform(expected.rejection, "pay \(id) \(amount) explicit \(explicit.map { "\($0.0):\($0.1.decimalString)" })") {
                result = try $0.receive(MoneyOrigin(.payment, id), amount: amount, cashAccount: .cash("card"), explicit: requests, unknownInvoices: unknown)
            }
            if let result {
                let got = result.allocations.map { "\($0.invoiceID) \($0.amount.minorUnits) -> \($0.invoiceBalance.minorUnits)" }
                let want = expected.applied.map { "\($0.0) \($0.1) -> \(model.invoices[$0.0]!.balance)" }
                if got != want { problems.append("allocations \(got), model \(want)") }
                if result.unapplied.minorUnits != expected.unapplied { problems.append("unapplied \(result.unapplied), model \(expected.unapplied)") }
                let allocated = result.allocations.reduce(Money.zero(currency)) { $0 + $1.amount }
                if allocated + result.unapplied != amount || result.unapplied.isNegative { problems.append("allocations + unapplied != payment") }
            }
            return problems
        }

        mutating func takeBack() -> [String] {
            let candidates = model.broughtIn.keys.filter { $0.kind == .payment && model.standing(of: $0) > 0 }.sorted { $0.id < $1.id }
            guard let origin = rng.pick(candidates) else { return pay() }
            let standing = model.standing(of: origin)
            let minor = rng.chance(25) ? standing : Int64.random(in: 1...standing, using: &rng)
            let amount = Money(minorUnits: minor, currency: model.broughtIn[origin]!.currency)
            let kind: TakeBackKind = rng.chance(50) ? .refund : .reversal
            let expected = model.takeBack(origin, minor)
            var reopened: [Allocation] = []
            let reference = "R\(counter)"
            var problems = perform(nil, "\(kind) \(amount) of \(origin)") {
                reopened = $0.takeBack(amount, of: origin, kind: kind, reference: reference)
            }
            let got = reopened.map { "\($0.invoiceID) \($0.amount.minorUnits) -> \($0.invoiceBalance.minorUnits)" }
            let want = expected.map { "\($0.0) \($0.1) -> \($0.2)" }
            if got != want { problems.append("taken back \(got), model \(want)") }
            return problems
        }

        // MARK: invariants

        func invariants(modelBefore: BooksModel) -> [String] {
            var problems: [String] = []
            let fullJournal = journal + books.journal  // `journal` stays empty without reloads
            // Invoices agree with the model and keep their own invariants.
            if Set(books.invoices.keys) != Set(model.invoices.keys) { problems.append("invoice ids \(books.invoices.keys.sorted()) vs model \(model.invoices.keys.sorted())") }
            for (id, expected) in model.invoices {
                guard let invoice = books.invoices[id] else { continue }
                let got = "\(invoice.status.rawValue) amount \(invoice.amount.minorUnits) balance \(invoice.balance.minorUnits) written off \(invoice.writtenOffAmount.minorUnits)"
                let want = "\(expected.status.rawValue) amount \(expected.amount) balance \(expected.balance) written off \(expected.writtenOff)"
                if got != want { problems.append("\(id): \(got); model \(want)") }
                if invoice.balance.isNegative || invoice.balance > invoice.amount { problems.append("\(id): balance outside 0...amount") }
                if !invoice.status.isFinal && invoice.status != InvoiceStatus.following(balance: invoice.balance, amount: invoice.amount) {
                    problems.append("\(id): status \(invoice.status) does not follow balance")
                }
                let standing = books.applications.filter { $0.invoiceID == id }.reduce(Money.zero(invoice.currency)) { $0 + $1.standing }
                if standing != invoice.applied { problems.append("\(id): standing applications \(standing) != applied \(invoice.applied)") }
                let expectedApplied = invoice.status == .voided ? 0 : invoice.amount.minorUnits - invoice.balance.minorUnits - invoice.writtenOffAmount.minorUnits
                if invoice.applied.minorUnits != expectedApplied { problems.append("\(id): applied \(invoice.applied) inconsistent") }
            }
            // Journal: every entry balances, one-sided positive lines; receivables and credit recompute.
            for entry in fullJournal {
                if entry.lines.reduce(0, { $0 + $1.debit }) != entry.lines.reduce(0, { $0 + $1.credit }) { problems.append("unbalanced \(entry.kind)") }
                if !entry.lines.allSatisfy({ ($0.debit > 0 && $0.credit == 0) || ($0.debit == 0 && $0.credit > 0) }) { problems.append("bad line in \(entry.kind)") }
                if entry.lines.contains(where: { $0.account == .receivable && $0.invoiceID == nil }) { problems.append("receivable line without invoice in \(entry.kind)") }
            }
            var receivable: [String: Int64] = [:]
            var creditFromJournal: [Currency: Int64] = [:]
            var netIn: [Currency: Int64] = [:]
            for entry in fullJournal {
                for line in entry.lines {
                    if line.account == .receivable { receivable[line.invoiceID ?? "", default: 0] += line.debit - line.credit }
                    if line.account == .unappliedCredit { creditFromJournal[entry.currency, default: 0] += line.credit - line.debit }
                    if line.account.rawValue.hasPrefix("cash:") || line.account == .creditNotes || line.account == .refunds || line.account == .chargebacks {
                        netIn[entry.currency, default: 0] += line.debit - line.credit
                    }
                }
            }
            // Revenue booked for an invoice (issue, adjustments, void) is its live amount.
            var revenue: [String: Int64] = [:]
            for entry in fullJournal where [.invoiceIssued, .invoiceAdjusted, .invoiceVoided].contains(entry.kind) {
                for line in entry.lines where line.account == .revenue { revenue[entry.reference, default: 0] += line.credit - line.debit }
            }
            for (id, invoice) in books.invoices where (revenue[id] ?? 0) != (invoice.status == .voided ? 0 : invoice.amount.minorUnits) {
                problems.append("\(id): revenue from journal \(revenue[id] ?? 0) != amount \(invoice.amount.minorUnits) (\(invoice.status))")
            }
            for (id, invoice) in books.invoices where (receivable[id] ?? 0) != invoice.balance.minorUnits {
                problems.append("\(id): receivable from journal \(receivable[id] ?? 0) != balance \(invoice.balance.minorUnits)")
            }
            for currency in BooksPropertyTests.currencies {
                let credit = books.credit(in: currency)
                if credit.minorUnits != model.credit(in: currency) { problems.append("credit \(credit), model \(model.credit(in: currency))") }
                if (creditFromJournal[currency] ?? 0) != credit.minorUnits { problems.append("credit from journal \(creditFromJournal[currency] ?? 0) != \(credit)") }
                // Conservation: money in (payments, credit notes) less money out (refunds,
                // chargebacks) is exactly what is still credit or standing on invoices.
                let standing = books.applications.filter { $0.amount.currency == currency }.reduce(Int64(0)) { $0 + $1.standing.minorUnits }
                if (netIn[currency] ?? 0) != credit.minorUnits + standing {
                    problems.append("\(currency): in − out \(netIn[currency] ?? 0) != credit \(credit.minorUnits) + applied \(standing)")
                }
            }
            for id in BooksPropertyTests.invoicePool {
                let held = books.lots.filter { $0.reservedForInvoice == id }.reduce(Int64(0)) { $0 + $1.remaining.minorUnits }
                if held != model.held(for: id) { problems.append("held for \(id): \(held), model \(model.held(for: id))") }
            }
            // Per payment and credit note: what it brought = what still stands + what was taken back.
            for (origin, brought) in model.broughtIn {
                let standing = books.standing(of: origin, in: brought.currency)
                if standing.minorUnits != model.standing(of: origin) { problems.append("\(origin) standing \(standing), model \(model.standing(of: origin))") }
                if standing.minorUnits + model.takenBack[origin, default: 0] != brought.minorUnits { problems.append("\(origin) not conserved") }
            }
            for lot in books.lots where lot.remaining.isNegative || lot.remaining > lot.original { problems.append("lot out of range") }
            for application in books.applications where application.unwound.isNegative || application.unwound > application.amount { problems.append("application out of range") }
            // What the Store writes back and publishes.
            if reload {
                let changes = books.statusChanges.map { "\($0.invoice.id) \($0.from?.rawValue ?? "new")->\($0.to.rawValue)" }
                let expected = model.invoices.values.sorted { $0.id < $1.id }.compactMap { invoice -> String? in
                    let from = modelBefore.invoices[invoice.id]?.status
                    return from == invoice.status ? nil : "\(invoice.id) \(from?.rawValue ?? "new")->\(invoice.status.rawValue)"
                }
                if changes != expected { problems.append("status changes \(changes), model \(expected)") }
                let creditChanges = books.creditChanges.map(\.description)
                let expectedCredit = BooksPropertyTests.currencies.sorted().compactMap { currency -> String? in
                    let after = model.credit(in: currency)
                    return after == modelBefore.credit(in: currency) ? nil : Money(minorUnits: after, currency: currency).description
                }
                if creditChanges != expectedCredit { problems.append("credit changes \(creditChanges), model \(expectedCredit)") }
            }
            return problems
        }
    }
}
