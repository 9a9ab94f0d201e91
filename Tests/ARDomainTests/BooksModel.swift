import ARDomain

/// A reference model of one customer's books, written straight from SPEC "Money rules" and
/// sharing no logic with `CustomerBooks`: money is a list of pieces, each of one origin, lying
/// either in credit (possibly held for a named invoice) or on an invoice. `sequence` orders
/// pieces by when they got where they are, which is all the refund and credit rules need.
///
/// Where the SPEC leaves a choice open the model follows the domain's documented choice:
/// a void or downward adjustment returns the invoice's newest money first, and a refund takes
/// a payment's newest credit first.
struct BooksModel {
    struct ModelInvoice: Equatable {
        let id: String
        let currency: Currency
        var amount: Int64
        var balance: Int64
        var status: InvoiceStatus
        var writtenOff: Int64
        let issueDate: BusinessDate
        let dueDate: BusinessDate
        var isLive: Bool { status == .open || status == .partiallyPaid }
    }

    enum Place: Equatable {
        case credit(heldFor: String?)
        case invoice(String)
    }

    struct Piece {
        let origin: MoneyOrigin
        let currency: Currency
        var amount: Int64
        var place: Place
        let sequence: Int
        var isCredit: Bool { if case .credit = place { true } else { false } }
    }

    var invoices: [String: ModelInvoice] = [:]
    var pieces: [Piece] = []
    var sequence = 0
    /// Money each payment or credit note brought in, and what was taken back of it.
    var broughtIn: [MoneyOrigin: Money] = [:]
    var takenBack: [MoneyOrigin: Int64] = [:]

    static func status(balance: Int64, amount: Int64) -> InvoiceStatus {
        if balance == 0 { return .paid }
        if balance == amount { return .open }
        return .partiallyPaid
    }

    // MARK: reading

    func credit(in currency: Currency) -> Int64 {
        pieces.filter { $0.isCredit && $0.currency == currency }.reduce(0) { $0 + $1.amount }
    }

    func held(for invoiceID: String) -> Int64 {
        pieces.filter { $0.place == .credit(heldFor: invoiceID) }.reduce(0) { $0 + $1.amount }
    }

    func standing(of origin: MoneyOrigin) -> Int64 {
        pieces.filter { $0.origin == origin }.reduce(0) { $0 + $1.amount }
    }

    // MARK: moving money

    private mutating func put(_ origin: MoneyOrigin, _ currency: Currency, _ amount: Int64, at place: Place) {
        guard amount > 0 else { return }
        sequence += 1
        pieces.append(Piece(origin: origin, currency: currency, amount: amount, place: place, sequence: sequence))
    }

    /// Indices of the pieces matching `where`, oldest first or newest first.
    private func indices(newestFirst: Bool, where matches: (Piece) -> Bool) -> [Int] {
        let found = pieces.indices.filter { matches(pieces[$0]) }.sorted { pieces[$0].sequence < pieces[$1].sequence }
        return newestFirst ? found.reversed() : found
    }

    private mutating func compact() { pieces.removeAll { $0.amount == 0 } }

    /// Moves `amount` of an invoice's money back to credit of its origins, newest first.
    private mutating func returnToCredit(from invoiceID: String, _ amount: Int64) {
        var left = amount
        for index in indices(newestFirst: true, where: { $0.place == .invoice(invoiceID) }) where left > 0 {
            let take = min(left, pieces[index].amount)
            pieces[index].amount -= take
            left -= take
            put(pieces[index].origin, pieces[index].currency, take, at: .credit(heldFor: nil))
        }
        precondition(left == 0, "model: invoice \(invoiceID) has less money than \(amount)")
        compact()
    }

    // MARK: operations (nil = accepted, else the rejection code)

    mutating func issue(_ invoice: Invoice) {
        let id = invoice.id
        let currency = invoice.currency
        let amount = invoice.amount.minorUnits
        invoices[id] = ModelInvoice(
            id: id, currency: currency, amount: amount, balance: amount, status: amount == 0 ? .paid : .open,
            writtenOff: 0, issueDate: invoice.issueDate, dueDate: invoice.dueDate)
        // Held money for this invoice: its own if the currency fits, plain credit otherwise.
        var held: [Int] = []
        for index in indices(newestFirst: false, where: { $0.place == .credit(heldFor: id) }) {
            pieces[index].place = .credit(heldFor: nil)
            if pieces[index].currency == currency { held.append(index) }
        }
        guard amount > 0 else { return }
        let plain = indices(newestFirst: false) { $0.place == .credit(heldFor: nil) && $0.currency == currency }.filter { !held.contains($0) }
        for index in held + plain {
            let balance = invoices[id]!.balance
            guard balance > 0 else { break }
            let take = min(balance, pieces[index].amount)
            pieces[index].amount -= take
            invoices[id]!.balance -= take
            put(pieces[index].origin, currency, take, at: .invoice(id))
        }
        invoices[id]!.status = Self.status(balance: invoices[id]!.balance, amount: amount)
        compact()
    }

    mutating func adjust(_ id: String, to newAmount: Money) -> String? {
        var invoice = invoices[id]!
        guard newAmount.currency == invoice.currency else { return "currency_mismatch" }
        guard invoice.isLive || invoice.status == .paid else { return "invalid_state" }
        let applied = invoice.amount - invoice.balance
        invoice.amount = newAmount.minorUnits
        invoice.balance = max(0, invoice.amount - applied)
        invoice.status = Self.status(balance: invoice.balance, amount: invoice.amount)
        invoices[id] = invoice
        if applied > invoice.amount { returnToCredit(from: id, applied - invoice.amount) }
        return nil
    }

    mutating func void(_ id: String) -> String? {
        guard let invoice = invoices[id], invoice.isLive || invoice.status == .paid else { return "invalid_state" }
        returnToCredit(from: id, invoice.amount - invoice.balance)
        invoices[id]!.balance = 0
        invoices[id]!.status = .voided
        return nil
    }

    mutating func writeOff(_ id: String) -> String? {
        guard let invoice = invoices[id], invoice.isLive else { return "invalid_state" }
        invoices[id]!.writtenOff = invoice.balance
        invoices[id]!.balance = 0
        invoices[id]!.status = .writtenOff
        return nil
    }

    mutating func creditNote(_ id: String, _ amount: Money, invoiceID: String?) -> String? {
        let origin = MoneyOrigin(.creditNote, id)
        let currency = amount.currency
        var rest = amount.minorUnits
        var heldFor: String?
        if let invoiceID {
            if let invoice = invoices[invoiceID] {
                guard invoice.currency == currency else { return "currency_mismatch" }
                if invoice.isLive {
                    let take = min(rest, invoice.balance)
                    rest -= take
                    invoices[invoiceID]!.balance -= take
                    invoices[invoiceID]!.status = Self.status(balance: invoices[invoiceID]!.balance, amount: invoice.amount)
                    put(origin, currency, take, at: .invoice(invoiceID))
                }
            } else {
                heldFor = invoiceID
            }
        }
        put(origin, currency, rest, at: .credit(heldFor: heldFor))
        broughtIn[origin] = amount
        return nil
    }

    /// Explicit allocations (checked in order, all before anything moves), then open invoices
    /// oldest due first (issue date, id), then credit. Returns the per-invoice totals applied.
    mutating func receive(_ id: String, _ amount: Money, explicit: [(String, Money)]) -> (rejection: String?, applied: [(String, Int64)], unapplied: Int64) {
        let origin = MoneyOrigin(.payment, id)
        let currency = amount.currency
        var named: Set<String> = []
        var total: Int64 = 0
        for (invoiceID, money) in explicit {
            guard named.insert(invoiceID).inserted else { return ("duplicate_allocation", [], 0) }
            guard money.currency == currency else { return ("currency_mismatch", [], 0) }
            total += money.minorUnits
            guard let invoice = invoices[invoiceID] else { continue }
            guard invoice.currency == currency else { return ("currency_mismatch", [], 0) }
            guard invoice.status != .voided && invoice.status != .writtenOff else { return ("invalid_state", [], 0) }
            guard money.minorUnits <= invoice.balance else { return ("amount_exceeds_balance", [], 0) }
        }
        guard total <= amount.minorUnits else { return ("allocations_exceed_payment", [], 0) }
        var applied: [(String, Int64)] = []
        func record(_ invoiceID: String, _ money: Int64) {
            if let index = applied.firstIndex(where: { $0.0 == invoiceID }) { applied[index].1 += money } else { applied.append((invoiceID, money)) }
        }
        var held: [(String, Int64)] = []
        for (invoiceID, money) in explicit {
            if invoices[invoiceID] == nil {
                held.append((invoiceID, money.minorUnits))
                continue
            }
            invoices[invoiceID]!.balance -= money.minorUnits
            invoices[invoiceID]!.status = Self.status(balance: invoices[invoiceID]!.balance, amount: invoices[invoiceID]!.amount)
            put(origin, currency, money.minorUnits, at: .invoice(invoiceID))
            record(invoiceID, money.minorUnits)
        }
        var rest = amount.minorUnits - total
        let oldestFirst = invoices.values.filter { $0.currency == currency && $0.isLive }
            .sorted { ($0.dueDate, $0.issueDate, $0.id) < ($1.dueDate, $1.issueDate, $1.id) }
        for invoice in oldestFirst where rest > 0 {
            let take = min(rest, invoices[invoice.id]!.balance)
            rest -= take
            invoices[invoice.id]!.balance -= take
            invoices[invoice.id]!.status = Self.status(balance: invoices[invoice.id]!.balance, amount: invoice.amount)
            put(origin, currency, take, at: .invoice(invoice.id))
            record(invoice.id, take)
        }
        for (invoiceID, money) in held { put(origin, currency, money, at: .credit(heldFor: invoiceID)) }
        put(origin, currency, rest, at: .credit(heldFor: nil))
        broughtIn[origin] = amount
        return (nil, applied, amount.minorUnits - applied.reduce(0) { $0 + $1.1 })
    }

    /// Takes a payment's money back: its credit first, then its invoice money newest first.
    /// Returns (invoice, amount taken, balance after) per piece taken from an invoice.
    mutating func takeBack(_ origin: MoneyOrigin, _ amount: Int64) -> [(String, Int64, Int64)] {
        var left = amount
        for index in indices(newestFirst: true, where: { $0.origin == origin && $0.isCredit }) where left > 0 {
            let take = min(left, pieces[index].amount)
            pieces[index].amount -= take
            left -= take
        }
        var reopened: [(String, Int64, Int64)] = []
        for index in indices(newestFirst: true, where: { $0.origin == origin && !$0.isCredit }) where left > 0 {
            guard case .invoice(let invoiceID) = pieces[index].place else { continue }
            let take = min(left, pieces[index].amount)
            pieces[index].amount -= take
            left -= take
            var invoice = invoices[invoiceID]!
            if invoice.status == .writtenOff {
                invoice.writtenOff += take  // the loss grows; the invoice stays closed
            } else {
                invoice.balance += take
                invoice.status = Self.status(balance: invoice.balance, amount: invoice.amount)
            }
            invoices[invoiceID] = invoice
            reopened.append((invoiceID, take, invoice.balance))
        }
        precondition(left == 0, "model: \(origin) has less than \(amount) standing")
        takenBack[origin, default: 0] += amount
        compact()
        return reopened
    }
}
