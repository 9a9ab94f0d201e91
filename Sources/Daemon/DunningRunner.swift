import ARContract
import CoreMetrics
import ARDomain
import Logging
import Metrics
import PostgresClient
import Store

/// What one dunning pass did (logs, `receivablesd dunning tick`, the demo).
public struct DunningPassReport: Sendable {
    public struct SentReminder: Sendable {
        public let eventID: String
        public let eventType: String
        public let customerID: String
        public let level: Int
        public let stepOffsetDays: Int
        public let localDate: BusinessDate
        public let total: Money
        public let invoiceIDs: [String]
    }

    public struct Retry: Sendable {
        public let paymentID: String
        public let attempt: Int
        public let customerID: String
        /// `requested` (payment.retry_requested published) or `cancelled` (nothing left to collect).
        public let outcome: String
        public let eventID: String?
    }

    public let now: Instant
    public var reminders: [SentReminder] = []
    public var retries: [Retry] = []
    /// Invoices whose due step waits (dispute, promise, hold, minimum, reminded today).
    public var waitingInvoices = 0
    public var customers = 0
    /// Customers whose `time_zone` PostgreSQL does not know: their local date is UTC's.
    public var fallbackTimeZones: [(customerID: String, timeZone: String)] = []
}

/// A pass's decision for one customer together with the facts it came from.
public struct DunningExplanation: Sendable {
    public let record: DunningCustomerRecord
    public let policy: DunningPolicy
    public let pass: DunningPass
    public let sentSteps: [SentStepRecord]
    public let retries: [RetryRecord]
    public let recordedWaits: [(wait: RecordedWait, since: String)]
}

/// Runs dunning passes (SPEC section 4, docs/dunning.md): due retries first, then every
/// customer with open invoices through the pure `DunningMachine`.
///
/// Exactly once across instances: facts are read in bulk without locks to find the customers
/// with something to do; each of those is then decided again under its customer lock (the lock
/// every message handler takes) and its reminders are claimed by unique keys in the same
/// transaction as their outbox rows. Due retries are claimed with FOR UPDATE SKIP LOCKED.
public struct DunningRunner: Sendable {
    public let configuration: DaemonConfiguration
    public let logger: Logger
    /// Customers whose facts are loaded per round of queries.
    static let factBatch = 500
    static let retryBatch = 200

    public init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func pass(store: Store, policies: DunningPolicies, now: Instant, progress: () -> Void = {}) throws -> DunningPassReport {
        var report = DunningPassReport(now: now)
        try requestDueRetries(store: store, now: now, report: &report)
        let offsets = Set(policies.policies.values.flatMap { $0.steps.map(\.offsetDays) }).sorted()
        let customerIDs = try store.dunningCustomerIDs(now: now, offsets: offsets)
        var start = 0
        while start < customerIDs.count {
            progress()
            let chunk = Array(customerIDs[start..<min(start + DunningRunner.factBatch, customerIDs.count)])
            start += chunk.count
            for record in try store.dunningFacts(customerIDs: chunk, now: now) {
                report.customers += 1
                if record.zoneIsFallback, let zone = record.timeZone { report.fallbackTimeZones.append((record.customerID, zone)) }
                let (_, decided) = decide(record, policies: policies, now: now)
                if decided.reminders.isEmpty && DunningRunner.waits(of: decided) == record.recordedWaits {
                    report.waitingInvoices += DunningRunner.waitingCount(decided)
                    continue
                }
                let final = try apply(customerID: record.customerID, store: store, policies: policies, now: now, report: &report)
                report.waitingInvoices += final.map(DunningRunner.waitingCount) ?? 0
            }
        }
        for reminder in report.reminders { DaemonMetrics.reminder(type: reminder.eventType) }
        DaemonMetrics.dunningPass(waiting: report.waitingInvoices, retriesRequested: report.retries.filter { $0.outcome == "requested" }.count)
        return report
    }

    /// The customer's facts and pass as of `now`, nothing written (`dunning explain`).
    public func explain(store: Store, policies: DunningPolicies, customerID: String, now: Instant) throws -> DunningExplanation? {
        guard let record = try store.dunningFacts(customerIDs: [customerID], now: now).first else { return nil }
        let (customer, pass) = decide(record, policies: policies, now: now)
        return DunningExplanation(record: record, policy: customer.policy, pass: pass, sentSteps: try store.sentSteps(customerID: customerID),
                                  retries: try store.retries(customerID: customerID), recordedWaits: try store.recordedWaits(customerID: customerID))
    }

    func decide(_ record: DunningCustomerRecord, policies: DunningPolicies, now: Instant) -> (DunningCustomer, DunningPass) {
        let customer = DunningCustomer(customerID: record.customerID, policy: policies.policy(named: record.policyName), localDate: record.localDate,
                                       now: now, invoices: record.invoices, paymentsInFlight: record.paymentsInFlight, holds: record.holds,
                                       remindedToday: record.remindedToday)
        return (customer, DunningMachine.pass(customer))
    }

    /// Decides one customer again under its lock and writes the result; nil if it vanished.
    private func apply(customerID: String, store: Store, policies: DunningPolicies, now: Instant,
                       report: inout DunningPassReport) throws -> DunningPass? {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let (pass, sent) = try store.transaction { () throws -> (DunningPass?, [DunningPassReport.SentReminder]) in
                    guard try store.lockCustomer(customerID), let record = try store.dunningFacts(customerIDs: [customerID], now: now).first else {
                        return (nil, [])
                    }
                    let (customer, pass) = decide(record, policies: policies, now: now)
                    var messages: [OutboxMessage] = []
                    var sent: [DunningPassReport.SentReminder] = []
                    for reminder in pass.reminders {
                        let id = DunningEvents.reminderID(reminder)
                        let type = reminder.step.action.rawValue
                        guard try store.claimReminder(reminder, reminderID: id, eventType: type, policy: customer.policy.name, passAt: now) else {
                            continue  // sent by another instance between our read and our lock
                        }
                        messages.append(DunningEvents.reminder(reminder, id: id, configuration: configuration, time: now))
                        sent.append(.init(eventID: id, eventType: type, customerID: customerID, level: reminder.level,
                                          stepOffsetDays: reminder.step.offsetDays, localDate: reminder.localDate, total: reminder.total,
                                          invoiceIDs: reminder.invoices.map(\.invoiceID)))
                    }
                    try store.enqueue(messages)
                    let waits = DunningRunner.waits(of: pass)
                    if waits != record.recordedWaits { try store.replaceWaits(customerID: customerID, waits, now: now) }
                    if !messages.isEmpty { try store.notifyOutbox() }
                    return (pass, sent)
                }
                report.reminders += sent
                for reminder in sent {
                    logger.info("dunning reminder sent", metadata: [
                        "customer": "\(reminder.customerID)", "type": "\(reminder.eventType)", "level": "\(reminder.level)",
                        "local_date": "\(reminder.localDate)", "invoices": "\(reminder.invoiceIDs.count)",
                        "total": "\(reminder.total.decimalString) \(reminder.total.currency)", "id": "\(reminder.eventID)",
                    ])
                }
                return pass
            } catch let error as PostgresError where error.isRetryableConflict && attempt < 5 {
                logger.info("dunning pass conflicted with another transaction; retrying", metadata: ["customer": "\(customerID)"])
                continue
            }
        }
    }

    /// Publishes `payment.retry_requested` for every scheduled retry due at `now`, or cancels it
    /// when every invoice it was for is closed meanwhile.
    private func requestDueRetries(store: Store, now: Instant, report: inout DunningPassReport) throws {
        guard try store.anyRetryDue(now: now) else { return }
        while true {
            let (claimed, done) = try store.transaction { () throws -> (Int, [DunningPassReport.Retry]) in
                let due = try store.claimDueRetries(now: now, limit: DunningRunner.retryBatch)
                var messages: [OutboxMessage] = []
                var done: [DunningPassReport.Retry] = []
                for retry in due {
                    if PaymentRetrySchedule.shouldRequest(invoiceStatuses: retry.invoiceStatuses) {
                        let id = StableID.make(["payment.retry_requested", retry.paymentID, String(retry.attempt)])
                        try store.markRetryRequested(paymentID: retry.paymentID, attempt: retry.attempt, eventID: id, at: now)
                        messages.append(DunningEvents.retryRequested(retry, id: id, configuration: configuration, time: now))
                        done.append(.init(paymentID: retry.paymentID, attempt: retry.attempt, customerID: retry.customerID, outcome: "requested", eventID: id))
                    } else {
                        try store.endRetries(paymentID: retry.paymentID, state: "cancelled", reason: "invoices_closed", attempt: retry.attempt)
                        done.append(.init(paymentID: retry.paymentID, attempt: retry.attempt, customerID: retry.customerID, outcome: "cancelled", eventID: nil))
                    }
                }
                try store.enqueue(messages)
                if !messages.isEmpty { try store.notifyOutbox() }
                return (due.count, done)
            }
            report.retries += done
            for retry in done {
                logger.info("payment retry \(retry.outcome)", metadata: ["payment": "\(retry.paymentID)", "attempt": "\(retry.attempt)",
                                                                       "customer": "\(retry.customerID)"])
            }
            if claimed < DunningRunner.retryBatch { return }
        }
    }

    /// The `dunning_waits` rows a pass implies: one per invoice and reason.
    static func waits(of pass: DunningPass) -> Set<RecordedWait> {
        var result: Set<RecordedWait> = []
        for action in pass.actions {
            guard case .recordWait(let invoiceID, let step, let reasons) = action else { continue }
            for reason in reasons {
                result.insert(RecordedWait(invoiceID: invoiceID, reason: reason.code, reference: reason.reference,
                                           stepOffset: step.step.offsetDays, level: step.level, detail: reason.detail))
            }
        }
        return result
    }

    static func waitingCount(_ pass: DunningPass) -> Int {
        pass.actions.filter { if case .recordWait = $0 { return true } else { return false } }.count
    }
}

/// The outbound events of dunning (schemas/reminder.*.json, dunning.escalated.json,
/// payment.retry_requested.json). Ids are stable for the same fact, so a re-run or a second
/// instance can never publish a second id for the same reminder.
enum DunningEvents {
    /// One id per customer, step, local date, currency and part.
    static func reminderID(_ reminder: DunningReminder) -> String {
        StableID.make(["dunning", reminder.customerID, String(reminder.step.offsetDays), reminder.localDate.description,
                       reminder.currency.code, String(reminder.part)])
    }

    static func reminder(_ reminder: DunningReminder, id: String, configuration: DaemonConfiguration, time: Instant) -> OutboxMessage {
        let lines: [JSONValue] = reminder.invoices.map { line in
            .object(JSONObject([
                ("invoice_id", .string(line.invoiceID)), ("number", .string(line.number)), ("balance", .money(line.balance)),
                ("due_date", .string(line.dueDate.description)), ("days_overdue", .number(String(min(max(line.daysOverdue, -3650), 36_500)))),
            ]))
        }
        let data: [(String, JSONValue)] = [
            ("customer_id", .string(reminder.customerID)), ("level", .number(String(reminder.level))), ("invoices", .array(lines)),
            ("total", .money(reminder.total)), ("currency", .string(reminder.currency.code)), ("channel", .string(reminder.step.channel)),
            ("template", .string(reminder.step.template)), ("local_date", .string(reminder.localDate.description)),
        ]
        return message(type: reminder.step.action.rawValue, id: id, subject: reminder.customerID, data, configuration: configuration, time: time)
    }

    static func retryRequested(_ retry: DueRetry, id: String, configuration: DaemonConfiguration, time: Instant) -> OutboxMessage {
        message(type: "payment.retry_requested", id: id, subject: retry.customerID, [
            ("payment_id", .string(retry.paymentID)), ("attempt", .number(String(retry.attempt))),
            ("not_before", .string(retry.notBefore.description)), ("customer_id", .string(retry.customerID)),
        ], configuration: configuration, time: time)
    }

    static func message(type: String, id: String, subject: String, _ data: [(String, JSONValue)], configuration: DaemonConfiguration,
                        time: Instant) -> OutboxMessage {
        let body = EventFactory.encode(id: id, source: configuration.eventSource, type: type, time: time, subject: subject,
                                       data: .object(JSONObject(data)))
        return OutboxMessage(eventID: id, exchange: configuration.topology.eventsExchange, routingKey: type, type: type, body: body)
    }
}

extension DaemonMetrics {
    static func dunningPass(waiting: Int, retriesRequested: Int) {
        Gauge(label: "receivablesd_dunning_waiting_invoices").record(waiting)
        Counter(label: "receivablesd_payment_retries_requested_total").increment(by: retriesRequested)
    }

    static func unknownTimeZone() {
        Counter(label: "receivablesd_unknown_time_zones_total").increment()
    }
}

extension PolicyHolder {
    /// The built-in standard policy (no policies file configured).
    static func builtIn() -> PolicyHolder {
        do { return PolicyHolder(try PolicyLoader.load(nil)) } catch { preconditionFailure("the built-in policies are invalid: \(error)") }
    }
}
