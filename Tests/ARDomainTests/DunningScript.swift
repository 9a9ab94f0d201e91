import ARDomain

/// One customer's dunning driven by hand, the way the Store and the scheduler drive the machine:
/// facts change between ticks; a tick runs a pass for a local date and records what it sent
/// (steps per invoice, slots per day), exactly as the claims in the database do.
struct DunningScript {
    var policy: DunningPolicy
    var customerID = "C1"
    /// In issue order.
    private(set) var invoiceOrder: [String] = []
    var invoices: [String: DunningInvoice] = [:]
    var amounts: [String: Money] = [:]
    var payments: [PaymentInFlight] = []
    var holds: [CustomerHold] = []
    /// Slots reminded per local date.
    var reminded: [BusinessDate: Set<DunningSlot>] = [:]
    /// Every reminder sent, in order.
    var sent: [DunningReminder] = []
    /// The last pass.
    var last: DunningPass?

    init(policy: DunningPolicy = .standard) { self.policy = policy }

    mutating func issue(_ id: String, _ amount: Money, due: String, number: String? = nil) {
        invoiceOrder.append(id)
        amounts[id] = amount
        invoices[id] = DunningInvoice(id: id, number: number ?? "N-\(id)", balance: amount, status: .open, dueDate: date(due))
    }

    /// Sets the invoice's balance (a payment, a refund); its status follows (SPEC money rules).
    mutating func balance(_ id: String, _ balance: Money) {
        guard let total = amounts[id] else { preconditionFailure("no invoice \(id)") }
        let status: InvoiceStatus = balance.isZero ? .paid : (balance == total ? .open : .partiallyPaid)
        replace(id, balance: balance, status: status)
    }

    mutating func close(_ id: String, _ status: InvoiceStatus) {
        replace(id, balance: .zero(invoices[id]!.currency), status: status)
    }

    private mutating func replace(_ id: String, balance: Money, status: InvoiceStatus) {
        let old = invoices[id]!
        invoices[id] = DunningInvoice(id: id, number: old.number, balance: balance, status: status, dueDate: old.dueDate,
                                      sentStepOffsets: old.sentStepOffsets, openDisputeIDs: old.openDisputeIDs, promisedDates: old.promisedDates)
    }

    mutating func dispute(_ id: String, _ disputeID: String) { invoices[id]!.openDisputeIDs.append(disputeID) }
    mutating func resolve(_ id: String, _ disputeID: String) { invoices[id]!.openDisputeIDs.removeAll { $0 == disputeID } }
    mutating func promise(_ ids: [String], by promised: String) { for id in ids { invoices[id]!.promisedDates.append(date(promised)) } }

    /// Runs a pass on local date `day` (at `now`, default noon UTC of that date) and applies it.
    @discardableResult
    mutating func tick(_ day: String, now: Instant? = nil) -> [DunningReminder] {
        let localDate = date(day)
        let instant = now ?? Instant(secondsSinceEpoch: Int64(localDate.daysSinceEpoch) * 86_400 + 43_200)
        let customer = DunningCustomer(customerID: customerID, policy: policy, localDate: localDate, now: instant,
                                       invoices: invoiceOrder.compactMap { invoices[$0] }, paymentsInFlight: payments, holds: holds,
                                       remindedToday: reminded[localDate] ?? [])
        let pass = DunningMachine.pass(customer)
        last = pass
        for reminder in pass.reminders {
            reminded[localDate, default: []].insert(reminder.slot)
            for line in reminder.invoices { invoices[line.invoiceID]!.sentStepOffsets.insert(reminder.step.offsetDays) }
        }
        sent += pass.reminders
        return pass.reminders
    }

    /// `tick` rendered as one line per reminder: "L3 reminder.overdue I1,I2 200.00 USD".
    mutating func run(_ day: String, now: Instant? = nil) -> [String] {
        tick(day, now: now).map(\.summary)
    }

    /// Ticks every day of [from, to] and returns "date: summary" for each reminder.
    mutating func days(_ from: String, _ to: String) -> [String] {
        var out: [String] = []
        var day = date(from)
        while day <= date(to) {
            out += run(day.description).map { "\(day): \($0)" }
            day = day.adding(days: 1)
        }
        return out
    }

    func state(_ id: String) -> InvoiceDunningState? { last?.state(of: id) }
    func waits(_ id: String) -> [String] {
        if case .waiting(_, let reasons)? = state(id) { return reasons.map(\.code) }
        return []
    }
}

extension DunningReminder {
    var summary: String {
        "L\(level) \(step.action.rawValue) \(invoices.map(\.invoiceID).joined(separator: ",")) \(total.decimalString) \(currency)"
    }
}

extension Instant {
    static func at(_ text: String) -> Instant {
        guard let instant = Instant(rfc3339: text) else { preconditionFailure("test instant \(text)") }
        return instant
    }
}
