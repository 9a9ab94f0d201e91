/// Where an invoice stands. `voided` and `written_off` are final.
public enum InvoiceStatus: String, Sendable, CaseIterable, Codable {
    /// Nothing applied yet: balance equals amount.
    case open
    /// Some money applied: 0 < balance < amount.
    case partiallyPaid = "partially_paid"
    /// Balance is zero.
    case paid
    /// Cancelled by the biller; applied money became credit.
    case voided
    /// Remaining balance closed to the write-off account.
    case writtenOff = "written_off"

    public var isFinal: Bool { self == .voided || self == .writtenOff }
    /// Open for payment: money may be applied.
    public var isOpen: Bool { self == .open || self == .partiallyPaid }

    /// SPEC "Money rules": the status of a live invoice follows its balance.
    public static func following(balance: Money, amount: Money) -> InvoiceStatus {
        precondition(!balance.isNegative && balance <= amount, "balance \(balance) outside 0...\(amount)")
        if balance.isZero { return .paid }
        return balance == amount ? .open : .partiallyPaid
    }
}

/// One invoice's state. Its transitions are the methods below; each keeps the invariants
/// 0 <= balance <= amount and status == following(balance, amount) while not final.
public struct Invoice: Hashable, Sendable {
    public let id: String
    public let customerID: String
    public let number: String
    public private(set) var amount: Money
    public private(set) var balance: Money
    public private(set) var status: InvoiceStatus
    public let issueDate: BusinessDate
    public let dueDate: BusinessDate
    public var paymentReference: String?

    public var currency: Currency { amount.currency }
    /// Money applied to this invoice and not taken back.
    public var applied: Money { status == .voided ? .zero(currency) : amount - balance - writtenOffAmount }
    /// The balance closed by a write-off (kept so `applied` stays right after it).
    public private(set) var writtenOffAmount: Money
    /// How many status transitions of this invoice have been committed (0 before it is first stored).
    /// Advanced exactly once per decision that changes the status (`CustomerBooks.changedInvoices`),
    /// stored with the invoice, and the identity of each `invoice.status_changed` (`EventIdentity`).
    public internal(set) var statusSequence: Int64 = 0

    public init(id: String, customerID: String, number: String, amount: Money, issueDate: BusinessDate, dueDate: BusinessDate, paymentReference: String? = nil) {
        precondition(!amount.isNegative)
        self.id = id
        self.customerID = customerID
        self.number = number
        self.amount = amount
        self.balance = amount
        self.status = InvoiceStatus.following(balance: amount, amount: amount)
        self.issueDate = issueDate
        self.dueDate = dueDate
        self.paymentReference = paymentReference
        self.writtenOffAmount = .zero(amount.currency)
    }

    /// Restores a stored invoice exactly as it was persisted.
    public init(id: String, customerID: String, number: String, amount: Money, balance: Money, status: InvoiceStatus,
                issueDate: BusinessDate, dueDate: BusinessDate, paymentReference: String?, writtenOffAmount: Money,
                statusSequence: Int64 = 0) {
        self.id = id
        self.customerID = customerID
        self.number = number
        self.amount = amount
        self.balance = balance
        self.status = status
        self.issueDate = issueDate
        self.dueDate = dueDate
        self.paymentReference = paymentReference
        self.writtenOffAmount = writtenOffAmount
        self.statusSequence = statusSequence
    }

    /// Applies money; the caller never applies more than the balance.
    mutating func apply(_ money: Money) {
        precondition(status.isOpen && money.isPositive && money <= balance, "cannot apply \(money) to \(id) (\(status), balance \(balance))")
        balance -= money
        status = .following(balance: balance, amount: amount)
    }

    /// Takes applied money back (refund, reversal); the invoice reopens.
    mutating func unapply(_ money: Money) {
        precondition(!status.isFinal && money.isPositive && balance + money <= amount, "cannot unapply \(money) from \(id)")
        balance += money
        status = .following(balance: balance, amount: amount)
    }

    /// Records that money applied to this written-off invoice was taken back: the invoice stays
    /// closed and the write-off grows by the same amount (the loss is now larger).
    mutating func growWriteOff(_ money: Money) {
        precondition(status == .writtenOff && money.isPositive)
        writtenOffAmount += money
    }

    /// Sets a new total. Returns the excess of applied money over the new total, which the
    /// caller turns into credit (SPEC: "an excess of payments becomes credit").
    mutating func adjust(to newAmount: Money) -> Money {
        precondition(!status.isFinal && !newAmount.isNegative)
        let appliedBefore = amount - balance
        amount = newAmount
        if newAmount >= appliedBefore {
            balance = newAmount - appliedBefore
            status = .following(balance: balance, amount: amount)
            return .zero(currency)
        }
        balance = .zero(currency)
        status = .following(balance: balance, amount: amount)
        return appliedBefore - newAmount
    }

    /// Cancels the invoice; returns the applied money that becomes credit.
    mutating func void() -> Money {
        precondition(!status.isFinal)
        let appliedBefore = amount - balance
        balance = .zero(currency)
        status = .voided
        return appliedBefore
    }

    /// Closes the remaining balance to write-off; returns the amount written off.
    mutating func writeOff() -> Money {
        precondition(!status.isFinal)
        let remaining = balance
        writtenOffAmount = remaining
        balance = .zero(currency)
        status = .writtenOff
        return remaining
    }
}
