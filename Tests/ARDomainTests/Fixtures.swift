import ARDomain

// Currencies of every minor-unit width the suite exercises.
let usd = Currency(code: "USD")!
let eur = Currency(code: "EUR")!
let jpy = Currency(code: "JPY")!
let kwd = Currency(code: "KWD")!
let clf = Currency(code: "CLF")!

extension Money {
    /// Test shorthand: a decimal string that must parse ("12.50" USD).
    static func of(_ text: String, _ currency: Currency) -> Money {
        do { return try Money.parse(text, currency: currency, allowNegative: true) } catch {
            preconditionFailure("test amount \(text) \(currency): \(error)")
        }
    }
}

func usd(_ text: String) -> Money { .of(text, usd) }
func jpy(_ text: String) -> Money { .of(text, jpy) }
func kwd(_ text: String) -> Money { .of(text, kwd) }

func date(_ text: String) -> BusinessDate {
    guard let value = BusinessDate(text) else { preconditionFailure("test date \(text)") }
    return value
}

/// A one-customer invoice for the books tests.
func invoice(_ id: String, _ amount: Money, issued: String = "2026-01-01", due: String = "2026-01-31", customer: String = "C1") -> Invoice {
    Invoice(id: id, customerID: customer, number: "N-" + id, amount: amount, issueDate: date(issued), dueDate: date(due))
}

func payment(_ id: String) -> MoneyOrigin { MoneyOrigin(.payment, id) }
func creditNote(_ id: String) -> MoneyOrigin { MoneyOrigin(.creditNote, id) }

extension CustomerBooks {
    /// Everything a decision can change, for "a rejected operation leaves the books unchanged".
    struct Snapshot: Equatable {
        let invoices: [String: Invoice]
        let lots: [CreditLot]
        let applications: [Application]
        let journal: [JournalEntry]
    }

    var snapshot: Snapshot { Snapshot(invoices: invoices, lots: lots, applications: applications, journal: journal) }

    /// The invoice, which the test knows exists.
    func invoice(_ id: String) -> Invoice {
        guard let invoice = invoices[id] else { preconditionFailure("no invoice \(id)") }
        return invoice
    }

    /// Receivable per invoice recomputed from the journal (debit − credit of `receivable` lines).
    var receivableFromJournal: [String: Int64] {
        var totals: [String: Int64] = [:]
        for entry in journal {
            for line in entry.lines where line.account == .receivable {
                totals[line.invoiceID ?? "", default: 0] += line.debit - line.credit
            }
        }
        return totals
    }

    /// Unapplied credit per currency recomputed from the journal (credit − debit of `unapplied_credit` lines).
    var creditFromJournal: [Currency: Int64] {
        var totals: [Currency: Int64] = [:]
        for entry in journal {
            for line in entry.lines where line.account == .unappliedCredit {
                totals[entry.currency, default: 0] += line.credit - line.debit
            }
        }
        return totals
    }
}

/// The rejection code a throwing books operation produced, nil when it succeeded.
func rejection(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as BooksRejection {
        return error.code
    } catch {
        return "unexpected \(error)"
    }
}

extension CustomerBooks {
    /// "status balance" of one invoice, so scripts read as one line per expectation.
    func state(_ id: String) -> String {
        let invoice = invoice(id)
        return "\(invoice.status.rawValue) \(invoice.balance.decimalString)"
    }

    /// Receives a card payment with no explicit allocations.
    @discardableResult
    mutating func pay(_ id: String, _ amount: Money, explicit: [(String, Money)] = [], unknown: Set<String> = []) throws(BooksRejection) -> [String] {
        let result = try receive(
            payment(id), amount: amount, cashAccount: .cash("card"),
            explicit: explicit.map { RequestedAllocation(invoiceID: $0.0, amount: $0.1) }, unknownInvoices: unknown)
        return result.allocations.map { "\($0.invoiceID) \($0.amount.decimalString) -> \($0.invoiceBalance.decimalString)" }
            + ["unapplied \(result.unapplied.decimalString)"]
    }

    /// Refunds part of a payment; returns "invoice amount -> balance" per reopened invoice.
    @discardableResult
    mutating func refund(_ id: String, _ amount: Money, kind: TakeBackKind = .refund) -> [String] {
        takeBack(amount, of: payment(id), kind: kind, reference: "R-" + id)
            .map { "\($0.invoiceID) \($0.amount.decimalString) -> \($0.invoiceBalance.decimalString)" }
    }

    /// Credit lots as "origin remaining[/reserved-for]".
    var lotSummary: [String] {
        lots.filter(\.remaining.isPositive).map { lot in
            "\(lot.origin.id) \(lot.remaining.decimalString)" + (lot.reservedForInvoice.map { " for " + $0 } ?? "")
        }
    }
}
