/// One line of how a payment was spread: invoice, amount applied, invoice balance after.
public struct Allocation: Hashable, Sendable {
    public let invoiceID: String
    public let amount: Money
    public let invoiceBalance: Money
}

/// The outcome of applying a payment, for `payment.confirmed`.
public struct PaymentApplicationResult: Hashable, Sendable {
    public let allocations: [Allocation]
    /// Money left as credit (held allocations for invoices not yet issued included).
    public let unapplied: Money
}

/// What a payment asks for explicitly: an amount on a named invoice.
public struct RequestedAllocation: Hashable, Sendable {
    public let invoiceID: String
    public let amount: Money
    public init(invoiceID: String, amount: Money) { self.invoiceID = invoiceID; self.amount = amount }
}

/// Why money is being taken back from a payment.
public enum TakeBackKind: Sendable, Hashable {
    case refund
    case reversal

    var journalKind: JournalKind { self == .refund ? .paymentRefunded : .paymentReversed }
    var account: LedgerAccount { self == .refund ? .refunds : .chargebacks }
}

extension CustomerBooks {
    /// Applies a payment or bank credit (SPEC section 2, `payment.succeeded`): explicit
    /// allocations first (all checked before anything moves), then open invoices of its currency
    /// oldest due first (ties: issue date, then id), then the rest to credit.
    ///
    /// - Parameters:
    ///   - unknownInvoices: explicitly named invoices not issued yet: their amounts are held for
    ///     them as reserved credit, not spent on other invoices.
    ///   - cashAccount: the clearing account the money arrived in.
    ///   - spreadRest: false keeps the rest as credit instead of spreading it (bank credits
    ///     matched to specific invoices).
    public mutating func receive(
        _ origin: MoneyOrigin, amount: Money, cashAccount: LedgerAccount, kind: JournalKind = .paymentReceived,
        explicit: [RequestedAllocation], unknownInvoices: Set<String> = [], spreadRest: Bool = true
    ) throws(BooksRejection) -> PaymentApplicationResult {
        precondition(amount.isPositive)
        let currency = amount.currency
        // 1. Check every explicit allocation before touching anything.
        var seen: Set<String> = []
        var explicitTotal = Money.zero(currency)
        for request in explicit {
            guard seen.insert(request.invoiceID).inserted else {
                throw BooksRejection("duplicate_allocation", "invoice \(request.invoiceID) is allocated twice")
            }
            guard request.amount.currency == currency else {
                throw .currencyMismatch("allocation to \(request.invoiceID) is in \(request.amount.currency), the payment in \(currency)")
            }
            guard request.amount.isPositive else { throw BooksRejection("schema_violation", "allocation to \(request.invoiceID) is zero") }
            explicitTotal += request.amount
            if unknownInvoices.contains(request.invoiceID) { continue }
            guard let invoice = invoices[request.invoiceID] else {
                preconditionFailure("invoice \(request.invoiceID) neither loaded nor unknown")
            }
            guard invoice.currency == currency else {
                throw .currencyMismatch("invoice \(invoice.id) is in \(invoice.currency), the payment in \(currency)")
            }
            guard !invoice.status.isFinal else {
                throw .invalidState("invoice \(invoice.id) is \(invoice.status.rawValue); no money can be applied to it")
            }
            guard request.amount <= invoice.balance else {
                throw BooksRejection("amount_exceeds_balance", "allocation of \(request.amount.decimalString) to \(invoice.id) exceeds its balance \(invoice.balance.decimalString)")
            }
        }
        guard explicitTotal <= amount else {
            throw BooksRejection("allocations_exceed_payment", "allocations total \(explicitTotal.decimalString) but the payment is \(amount.decimalString) \(currency)")
        }
        // 2. Move the money.
        var allocations: [Allocation] = []
        // Where each invoice's allocation is: a payment spread over thousands of invoices must
        // not search the list for every one of them.
        var allocationIndex: [String: Int] = [:]
        var reservedLots: [CreditLot] = []
        for request in explicit {
            if unknownInvoices.contains(request.invoiceID) {
                reservedLots.append(CreditLot(id: nil, origin: origin, original: request.amount, remaining: request.amount, reservedForInvoice: request.invoiceID))
                continue
            }
            applyMoney(request.amount, from: origin, to: request.invoiceID)
            allocationIndex[request.invoiceID] = allocations.count
            allocations.append(Allocation(invoiceID: request.invoiceID, amount: request.amount, invoiceBalance: invoices[request.invoiceID]!.balance))
        }
        var rest = amount - explicitTotal
        if spreadRest {
            for invoice in openInvoicesOldestFirst(in: currency) {
                guard rest.isPositive else { break }
                let take = Money.min(rest, invoice.balance)
                applyMoney(take, from: origin, to: invoice.id)
                rest -= take
                if let index = allocationIndex[invoice.id] {
                    let previous = allocations[index]
                    allocations[index] = Allocation(invoiceID: invoice.id, amount: previous.amount + take, invoiceBalance: invoices[invoice.id]!.balance)
                } else {
                    allocationIndex[invoice.id] = allocations.count
                    allocations.append(Allocation(invoiceID: invoice.id, amount: take, invoiceBalance: invoices[invoice.id]!.balance))
                }
            }
        }
        let reservedTotal = reservedLots.reduce(Money.zero(currency)) { $0 + $1.remaining }
        let unapplied = rest + reservedTotal
        // 3. One balanced entry: cash in; receivables and credit out.
        var lines: [JournalLine] = [.debit(cashAccount, amount)]
        var appliedPerInvoice: [(String, Money)] = []
        for allocation in allocations { appliedPerInvoice.append((allocation.invoiceID, allocation.amount)) }
        for (invoiceID, money) in appliedPerInvoice { lines.append(.credit(.receivable, money, invoice: invoiceID)) }
        if unapplied.isPositive { lines.append(.credit(.unappliedCredit, unapplied)) }
        post(kind, currency, reference: origin.id, lines)
        appendLots(reservedLots)
        if rest.isPositive { appendLots([CreditLot(id: nil, origin: origin, original: rest, remaining: rest, reservedForInvoice: nil)]) }
        return PaymentApplicationResult(allocations: allocations, unapplied: unapplied)
    }

    /// Open invoices of one currency in the order money is spread over them.
    public func openInvoicesOldestFirst(in currency: Currency) -> [Invoice] {
        invoices.values
            .filter { $0.currency == currency && $0.status.isOpen && $0.balance.isPositive }
            .sorted { ($0.dueDate, $0.issueDate, $0.id) < ($1.dueDate, $1.issueDate, $1.id) }
    }

    /// Takes money of a payment back (SPEC: refunds and reversals): first what of it is still
    /// credit (newest lot first), then its applications in exactly the reverse order they were
    /// made; those invoices reopen. Money taken from a written-off invoice grows its write-off.
    /// The caller checks `amount` does not exceed what the payment still has.
    /// Returns the invoices reopened with the amount taken from each.
    @discardableResult
    public mutating func takeBack(_ amount: Money, of origin: MoneyOrigin, kind: TakeBackKind, reference: String) -> [Allocation] {
        precondition(amount.isPositive)
        let currency = amount.currency
        var left = amount
        var fromCredit = Money.zero(currency)
        for index in lots.indices.reversed() where left.isPositive {
            guard lots[index].origin == origin, lots[index].remaining.isPositive else { continue }
            let take = Money.min(lots[index].remaining, left)
            lots[index].remaining -= take
            left -= take
            fromCredit += take
        }
        var reopened: [Allocation] = []
        var fromWriteOff = Money.zero(currency)
        for index in applications.indices.reversed() where left.isPositive {
            guard applications[index].origin == origin, applications[index].standing.isPositive else { continue }
            let take = Money.min(applications[index].standing, left)
            applications[index].unwound += take
            left -= take
            let invoiceID = applications[index].invoiceID
            guard var invoice = invoices[invoiceID] else { preconditionFailure("invoice \(invoiceID) of an application not loaded") }
            if invoice.status == .writtenOff {
                invoice.growWriteOff(take)
                fromWriteOff += take
            } else {
                invoice.unapply(take)
            }
            invoices[invoiceID] = invoice
            reopened.append(Allocation(invoiceID: invoiceID, amount: take, invoiceBalance: invoice.balance))
        }
        precondition(left.isZero, "payment \(origin.id) has \(amount - left) of \(amount) to take back")
        var lines: [JournalLine] = []
        if fromCredit.isPositive { lines.append(.debit(.unappliedCredit, fromCredit)) }
        for allocation in reopened where invoices[allocation.invoiceID]?.status != .writtenOff {
            lines.append(.debit(.receivable, allocation.amount, invoice: allocation.invoiceID))
        }
        if fromWriteOff.isPositive { lines.append(.debit(.writeOff, fromWriteOff)) }
        lines.append(.credit(kind.account, amount))
        post(kind.journalKind, currency, reference: reference, lines)
        return reopened
    }

    /// Money of `origin` still held by us: its credit plus its standing applications.
    public func standing(of origin: MoneyOrigin, in currency: Currency) -> Money {
        let credit = lots.filter { $0.origin == origin }.reduce(Money.zero(currency)) { $0 + $1.remaining }
        return applications.filter { $0.origin == origin }.reduce(credit) { $0 + $1.standing }
    }
}
