/// The reminder state machine (SPEC section 4; exact semantics in docs/dunning.md).
///
/// A pass takes one customer's facts at one instant (`DunningCustomer`: open invoices, steps
/// already sent, disputes, promises, payments in flight, customer holds, what was reminded today,
/// the policy, the customer's local date) and returns each invoice's state plus the actions to
/// run: publish a reminder for a group of invoices, record why a due step waits. No I/O and no
/// clock: the edge loads the facts, runs the actions in one transaction and records the steps
/// sent, so the next pass sees them.
///
/// The rule, the same after downtime, a pause, a hold or a reopening: on local date T the step
/// an invoice is due for is the HIGHEST policy step with due date + offset <= T; it is sent if
/// no step at that offset or later was sent for the invoice. Lower steps passed over are never
/// sent, and no step is ever sent twice.

/// Where a customer's reminder for one step and currency goes: at most one per local day.
public struct DunningSlot: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let stepOffsetDays: Int
    public let currency: Currency

    public init(stepOffsetDays: Int, currency: Currency) {
        self.stepOffsetDays = stepOffsetDays
        self.currency = currency
    }

    public static func < (a: DunningSlot, b: DunningSlot) -> Bool {
        (a.stepOffsetDays, a.currency.code) < (b.stepOffsetDays, b.currency.code)
    }

    public var description: String { "\(DunningStep.offsetText(stepOffsetDays)) \(currency)" }
}

/// An open (or just closed) invoice as dunning sees it.
public struct DunningInvoice: Hashable, Sendable {
    public let id: String
    public let number: String
    public let balance: Money
    public let status: InvoiceStatus
    public let dueDate: BusinessDate
    /// Offsets (days) of the steps already sent for this invoice, whatever policy sent them.
    public var sentStepOffsets: Set<Int>
    /// Disputes opened and not resolved.
    public var openDisputeIDs: [String]
    /// Promised dates of the promises to pay that name this invoice.
    public var promisedDates: [BusinessDate]

    public init(id: String, number: String, balance: Money, status: InvoiceStatus, dueDate: BusinessDate,
                sentStepOffsets: Set<Int> = [], openDisputeIDs: [String] = [], promisedDates: [BusinessDate] = []) {
        self.id = id
        self.number = number
        self.balance = balance
        self.status = status
        self.dueDate = dueDate
        self.sentStepOffsets = sentStepOffsets
        self.openDisputeIDs = openDisputeIDs
        self.promisedDates = promisedDates
    }

    public var currency: Currency { balance.currency }
}

/// Money on its way for some of the customer's invoices: reminding them meanwhile is the worst
/// message an AR team can send (SPEC section 4).
public struct PaymentInFlight: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// `payment.pending` not yet settled (`payment.succeeded`) or failed.
        case pending
        /// A retry of a failed payment: scheduled for `notBefore`, or already requested from the
        /// gateway (`requested`) with no outcome yet.
        case retry(attempt: Int, notBefore: Instant, requested: Bool)
    }

    public let paymentID: String
    public let kind: Kind
    public let currency: Currency
    /// The invoices it is for; empty means all of the customer's invoices in `currency`.
    public let invoiceIDs: [String]

    public init(paymentID: String, kind: Kind, currency: Currency, invoiceIDs: [String]) {
        self.paymentID = paymentID
        self.kind = kind
        self.currency = currency
        self.invoiceIDs = invoiceIDs
    }

    func covers(_ invoice: DunningInvoice) -> Bool {
        invoiceIDs.isEmpty ? invoice.currency == currency : invoiceIDs.contains(invoice.id)
    }
}

/// A hold on all of a customer's reminders, with its reason: a bank credit in reconciliation
/// `exception` naming the customer among its candidates (reason `bank_exception`), or any other
/// customer-level reason the edge supplies.
public struct CustomerHold: Hashable, Sendable {
    /// A stable machine code, e.g. `bank_exception`.
    public let reason: String
    /// What holds it (a bank entry id, ...).
    public let reference: String
    /// Only reminders in this currency wait; nil = every currency.
    public let currency: Currency?

    public init(reason: String, reference: String, currency: Currency? = nil) {
        self.reason = reason
        self.reference = reference
        self.currency = currency
    }
}

/// Why a due step is not sent now. Every reason that applies is listed.
public enum DunningWait: Hashable, Sendable {
    /// The invoice is disputed (`dispute.opened` without `dispute.resolved`).
    case disputed(disputeID: String)
    /// A promise to pay covers the invoice through `until` (promised date + grace days).
    case promisedToPay(promisedDate: BusinessDate, until: BusinessDate)
    /// A payment for the invoice is pending (`payment.pending`).
    case paymentPending(paymentID: String)
    /// A retry of a failed payment for the invoice is scheduled, or requested and unanswered.
    case retryScheduled(paymentID: String, attempt: Int, notBefore: Instant)
    /// A customer-level hold (see `CustomerHold`).
    case customerHold(reason: String, reference: String)
    /// The customer's balance in the currency is below the policy's minimum.
    case belowMinimum(balance: Money, minimum: Money)
    /// The customer got this step's reminder in this currency today already: one per local day.
    case remindedToday

    /// Stable machine code (the `dunning_waits.reason` column).
    public var code: String {
        switch self {
        case .disputed: return "disputed"
        case .promisedToPay: return "promise_to_pay"
        case .paymentPending: return "payment_pending"
        case .retryScheduled: return "retry_scheduled"
        case .customerHold(let reason, _): return reason
        case .belowMinimum: return "below_minimum"
        case .remindedToday: return "reminded_today"
        }
    }

    /// What causes it (dispute id, payment id, ...); empty when nothing does.
    public var reference: String {
        switch self {
        case .disputed(let id): return id
        case .promisedToPay(let promised, _): return promised.description
        case .paymentPending(let id): return id
        case .retryScheduled(let id, _, _): return id
        case .customerHold(_, let reference): return reference
        case .belowMinimum(let balance, _): return balance.currency.code
        case .remindedToday: return ""
        }
    }

    /// One sentence for operators (`receivablesd dunning explain`).
    public var detail: String {
        switch self {
        case .disputed(let id): return "disputed (dispute \(id) open)"
        case .promisedToPay(let promised, let until): return "promise to pay by \(promised); paused through \(until) (grace included)"
        case .paymentPending(let id): return "payment \(id) is pending"
        case .retryScheduled(let id, let attempt, let notBefore): return "retry \(attempt) of failed payment \(id) (not before \(notBefore))"
        case .customerHold(let reason, let reference): return "customer held: \(reason) \(reference)"
        case .belowMinimum(let balance, let minimum):
            return "customer balance \(balance.decimalString) \(balance.currency) is below the policy minimum \(minimum.decimalString)"
        case .remindedToday: return "this step's reminder went to the customer today already; the invoice follows on the next local day"
        }
    }
}

/// A policy step for one invoice: its level (1 = the policy's first step) and the local date
/// on which it falls due (due date + offset).
public struct ScheduledStep: Hashable, Sendable {
    public let step: DunningStep
    public let level: Int
    public let date: BusinessDate

    public init(step: DunningStep, level: Int, date: BusinessDate) {
        self.step = step
        self.level = level
        self.date = date
    }
}

/// Where one invoice's dunning stands after a pass.
public enum InvoiceDunningState: Hashable, Sendable {
    /// Paid, voided or written off (or nothing left to pay): no step is sent while it stays so.
    case stopped(InvoiceStatus)
    /// No step is due yet; `next` is the first.
    case notYetDue(next: ScheduledStep)
    /// The highest due step was sent already (or passed over); `next` is the following step,
    /// nil after the last one.
    case upToDate(lastSentOffset: Int, next: ScheduledStep?)
    /// `step` is due but waits, for every reason listed.
    case waiting(ScheduledStep, [DunningWait])
    /// `step` is sent in this pass (in `reminder`'s group).
    case sending(ScheduledStep)
}

/// One line of a reminder: the invoice as it stands on the reminder's local date.
public struct DunningReminderLine: Hashable, Sendable {
    public let invoiceID: String
    public let number: String
    public let balance: Money
    public let dueDate: BusinessDate
    /// Local date − due date: negative before the due date.
    public let daysOverdue: Int
}

/// A reminder (`reminder.*`) or escalation (`dunning.escalated`): one per customer, step, local
/// day and currency (split in parts of at most `maximumInvoices` invoices).
public struct DunningReminder: Hashable, Sendable {
    /// The contract's bound on the invoices of one event (schemas/reminder.*.json).
    public static let maximumInvoices = 1000

    public let customerID: String
    public let step: DunningStep
    public let level: Int
    public let localDate: BusinessDate
    public let currency: Currency
    /// 0, or the part number when a group is larger than `maximumInvoices`.
    public let part: Int
    /// Earliest due first, then by invoice id.
    public let invoices: [DunningReminderLine]

    public var slot: DunningSlot { DunningSlot(stepOffsetDays: step.offsetDays, currency: currency) }
    public var total: Money { invoices.reduce(.zero(currency)) { $0 + $1.balance } }
}

/// What the edge does with a pass.
public enum DunningPassAction: Hashable, Sendable {
    /// Publish the reminder and record its step as sent for each of its invoices, in the
    /// transaction that writes the event (the claim).
    case publishReminder(DunningReminder)
    /// Record (queryable, `dunning explain`) that the invoice's due `step` waits, and why.
    case recordWait(invoiceID: String, step: ScheduledStep, reasons: [DunningWait])
}

/// The facts of one customer at one instant.
public struct DunningCustomer: Hashable, Sendable {
    public let customerID: String
    public let policy: DunningPolicy
    /// The customer's calendar date at `now` in its time zone (computed at the edge).
    public let localDate: BusinessDate
    public let now: Instant
    /// The customer's invoices (open ones at least: the minimum balance is their sum).
    public var invoices: [DunningInvoice]
    public var paymentsInFlight: [PaymentInFlight]
    public var holds: [CustomerHold]
    /// Slots the customer was reminded in on `localDate` already.
    public var remindedToday: Set<DunningSlot>

    public init(customerID: String, policy: DunningPolicy, localDate: BusinessDate, now: Instant, invoices: [DunningInvoice],
                paymentsInFlight: [PaymentInFlight] = [], holds: [CustomerHold] = [], remindedToday: Set<DunningSlot> = []) {
        self.customerID = customerID
        self.policy = policy
        self.localDate = localDate
        self.now = now
        self.invoices = invoices
        self.paymentsInFlight = paymentsInFlight
        self.holds = holds
        self.remindedToday = remindedToday
    }
}

/// The result of a pass: each invoice's state (in input order) and the actions.
public struct DunningPass: Hashable, Sendable {
    public struct Decision: Hashable, Sendable {
        public let invoiceID: String
        public let state: InvoiceDunningState
    }

    public let decisions: [Decision]
    public let actions: [DunningPassAction]

    public var reminders: [DunningReminder] {
        actions.compactMap { if case .publishReminder(let reminder) = $0 { return reminder } else { return nil } }
    }

    public func state(of invoiceID: String) -> InvoiceDunningState? { decisions.first { $0.invoiceID == invoiceID }?.state }
}

public enum DunningMachine {
    /// A retry requested from the gateway keeps holding its invoices this long after its
    /// not-before instant, waiting for the outcome (`payment.succeeded` / `payment.failed`).
    public static let retryOutcomeWaitSeconds: Int64 = 2 * 86_400

    /// One pass over one customer's facts.
    public static func pass(_ customer: DunningCustomer) -> DunningPass {
        let today = customer.localDate
        var balances: [Currency: Money] = [:]
        for invoice in customer.invoices where invoice.status.isOpen {
            balances[invoice.currency, default: .zero(invoice.currency)] += invoice.balance
        }

        var decisions: [DunningPass.Decision] = []
        var waits: [DunningPassAction] = []
        var groups: [DunningSlot: (step: ScheduledStep, invoices: [DunningInvoice])] = [:]
        for invoice in customer.invoices {
            let state = decide(invoice, customer: customer, balances: balances)
            decisions.append(.init(invoiceID: invoice.id, state: state))
            switch state {
            case .waiting(let step, let reasons):
                waits.append(.recordWait(invoiceID: invoice.id, step: step, reasons: reasons))
            case .sending(let step):
                let slot = DunningSlot(stepOffsetDays: step.step.offsetDays, currency: invoice.currency)
                groups[slot, default: (step, [])].invoices.append(invoice)
            case .stopped, .notYetDue, .upToDate:
                break
            }
        }

        var reminders: [DunningPassAction] = []
        for slot in groups.keys.sorted() {
            guard let group = groups[slot] else { continue }
            let ordered = group.invoices.sorted { ($0.dueDate, $0.id) < ($1.dueDate, $1.id) }
            let lines = ordered.map { invoice in
                DunningReminderLine(invoiceID: invoice.id, number: invoice.number, balance: invoice.balance, dueDate: invoice.dueDate,
                                    daysOverdue: today.days(since: invoice.dueDate))
            }
            var part = 0
            var start = 0
            while start < lines.count {
                let end = min(start + DunningReminder.maximumInvoices, lines.count)
                reminders.append(.publishReminder(DunningReminder(
                    customerID: customer.customerID, step: group.step.step, level: group.step.level, localDate: today,
                    currency: slot.currency, part: part, invoices: Array(lines[start..<end]))))
                part += 1
                start = end
            }
        }
        return DunningPass(decisions: decisions, actions: reminders + waits)
    }

    /// The state of one invoice: stopped, not yet due, up to date, waiting or sending.
    static func decide(_ invoice: DunningInvoice, customer: DunningCustomer, balances: [Currency: Money]) -> InvoiceDunningState {
        guard invoice.status.isOpen, invoice.balance.isPositive else { return .stopped(invoice.status) }
        let steps = customer.policy.scheduled(dueDate: invoice.dueDate)
        let today = customer.localDate
        guard let highest = steps.last(where: { $0.date <= today }) else {
            guard let first = steps.first else { preconditionFailure("a policy has at least one step") }
            return .notYetDue(next: first)
        }
        if let lastSent = invoice.sentStepOffsets.max(), lastSent >= highest.step.offsetDays {
            return .upToDate(lastSentOffset: lastSent, next: steps.first { $0.step.offsetDays > lastSent })
        }
        var reasons: [DunningWait] = []
        for dispute in invoice.openDisputeIDs.sorted() { reasons.append(.disputed(disputeID: dispute)) }
        if let promised = invoice.promisedDates.max() {
            let until = promised.adding(days: customer.policy.graceDays)
            if today <= until { reasons.append(.promisedToPay(promisedDate: promised, until: until)) }
        }
        for payment in customer.paymentsInFlight.sorted(by: { $0.paymentID < $1.paymentID }) where payment.covers(invoice) {
            switch payment.kind {
            case .pending:
                reasons.append(.paymentPending(paymentID: payment.paymentID))
            case .retry(let attempt, let notBefore, let requested):
                if !requested || customer.now < notBefore.adding(seconds: retryOutcomeWaitSeconds) {
                    reasons.append(.retryScheduled(paymentID: payment.paymentID, attempt: attempt, notBefore: notBefore))
                }
            }
        }
        for hold in customer.holds.sorted(by: { ($0.reason, $0.reference) < ($1.reason, $1.reference) })
        where hold.currency == nil || hold.currency == invoice.currency {
            reasons.append(.customerHold(reason: hold.reason, reference: hold.reference))
        }
        let balance = balances[invoice.currency] ?? .zero(invoice.currency)
        if let minimum = customer.policy.minimumBalance[invoice.currency], balance < minimum {
            reasons.append(.belowMinimum(balance: balance, minimum: minimum))
        }
        if customer.remindedToday.contains(DunningSlot(stepOffsetDays: highest.step.offsetDays, currency: invoice.currency)) {
            reasons.append(.remindedToday)
        }
        return reasons.isEmpty ? .sending(highest) : .waiting(highest, reasons)
    }
}

extension DunningPolicy {
    /// The policy's steps for an invoice due on `dueDate`, with levels and dates, in order.
    public func scheduled(dueDate: BusinessDate) -> [ScheduledStep] {
        steps.enumerated().map { index, step in ScheduledStep(step: step, level: index + 1, date: dueDate.adding(days: step.offsetDays)) }
    }

    /// The level of the step at `offsetDays` in this policy, if it has one.
    public func level(ofOffset offsetDays: Int) -> Int? {
        steps.firstIndex { $0.offsetDays == offsetDays }.map { $0 + 1 }
    }
}

extension DunningStep {
    /// `-3d`, `+0d`, `+7d`.
    public static func offsetText(_ offsetDays: Int) -> String { (offsetDays < 0 ? "" : "+") + "\(offsetDays)d" }
}
