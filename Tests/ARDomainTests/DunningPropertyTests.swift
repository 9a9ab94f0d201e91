import ARDomain
import PropertyBased
import Testing
import TestSupport

/// Random 120-day histories of one customer (invoices issued, paid in part or in full, refunded,
/// voided, written off, disputed, promised, pending payments, retries, customer holds, random
/// policies, passes at random times with downtimes of up to 25 days), each pass checked against
/// the invariants of SPEC section 4 and against `Oracle`, an independent statement of the rule
/// in docs/dunning.md. Pin a failure with the seed it prints.
@Suite struct DunningPropertyTests {
    static let cases = 250

    @Test func randomHistoriesKeepEveryInvariantAndAgreeWithTheOracle() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64()) { seed in
            var history = History(seed: seed)
            history.run(days: 120)
        }
    }

    /// The rule, written independently of DunningMachine: the invoices that must be reminded on
    /// `facts.localDate`, each with the offset of its step.
    enum Oracle {
        static func expected(_ facts: DunningCustomer) -> [String: Int] {
            var openBalance: [Currency: Int64] = [:]
            for invoice in facts.invoices where invoice.status == .open || invoice.status == .partiallyPaid {
                openBalance[invoice.currency, default: 0] += invoice.balance.minorUnits
            }
            var result: [String: Int] = [:]
            for invoice in facts.invoices {
                guard invoice.status == .open || invoice.status == .partiallyPaid, invoice.balance.minorUnits > 0 else { continue }
                // Highest step whose date has come: scan from the last step down.
                var due: Int?
                for step in facts.policy.steps.reversed() where invoice.dueDate.daysSinceEpoch + step.offsetDays <= facts.localDate.daysSinceEpoch {
                    due = step.offsetDays
                    break
                }
                guard let offset = due else { continue }
                if invoice.sentStepOffsets.contains(where: { $0 >= offset }) { continue }
                if !invoice.openDisputeIDs.isEmpty { continue }
                if invoice.promisedDates.contains(where: { facts.localDate.daysSinceEpoch <= $0.daysSinceEpoch + facts.policy.graceDays }) { continue }
                let inFlight = facts.paymentsInFlight.contains { payment in
                    let mine = payment.invoiceIDs.isEmpty ? payment.currency == invoice.currency : payment.invoiceIDs.contains(invoice.id)
                    guard mine else { return false }
                    switch payment.kind {
                    case .pending: return true
                    case .retry(_, let notBefore, let requested):
                        return !requested || facts.now.microsecondsSinceEpoch < notBefore.microsecondsSinceEpoch + 2 * 86_400 * 1_000_000
                    }
                }
                if inFlight { continue }
                if facts.holds.contains(where: { $0.currency == nil || $0.currency == invoice.currency }) { continue }
                if let minimum = facts.policy.minimumBalance[invoice.currency], (openBalance[invoice.currency] ?? 0) < minimum.minorUnits { continue }
                if facts.remindedToday.contains(DunningSlot(stepOffsetDays: offset, currency: invoice.currency)) { continue }
                result[invoice.id] = offset
            }
            return result
        }
    }

    struct History {
        var rng: SplitMix
        let seed: UInt64
        var policy: DunningPolicy
        var script: DunningScript
        var everSent: Set<String> = []
        var daySlots: Set<String> = []
        var log: [String] = []
        var counter = 0
        var retriesNotBefore: [String: Instant] = [:]
        let start = date("2026-01-01")

        init(seed: UInt64) {
            self.seed = seed
            rng = SplitMix(state: seed)
            policy = .standard
            script = DunningScript()
            policy = randomPolicy()
            script = DunningScript(policy: policy)
        }

        mutating func randomPolicy() -> DunningPolicy {
            guard rng.chance(60) else { return .standard }
            let count = rng.int(1...6)
            var offsets = Set<Int>()
            while offsets.count < count { offsets.insert(rng.int(-10...60)) }
            let sorted = offsets.sorted()
            let actions: [DunningAction] = [.upcoming, .due, .overdue, .overdue, .finalNotice]
            var steps = sorted.enumerated().map { index, offset in
                DunningStep(offsetDays: offset, action: actions[min(index, actions.count - 1)], channel: "email", template: "t\(index)")
            }
            if rng.chance(50), let last = steps.last {
                steps[steps.count - 1] = DunningStep(offsetDays: last.offsetDays, action: .escalate, channel: "collections", template: "esc")
            }
            let minimum: [Currency: Money] = rng.chance(40) ? [usd: Money(minorUnits: Int64(rng.int(1...20_000)), currency: usd)] : [:]
            do {
                return try DunningPolicy(name: "random", steps: steps, minimumBalance: minimum, graceDays: rng.int(0...5), retryDelaysDays: [1, 3, 7])
            } catch {
                preconditionFailure("generated policy invalid: \(error)")
            }
        }

        var ids: [String] { script.invoiceOrder }
        func open(_ id: String) -> Bool { script.invoices[id].map { $0.status.isOpen } ?? false }

        mutating func events(on day: BusinessDate) {
            let events = rng.int(0...3)
            for _ in 0..<events {
                let roll = rng.int(0...99)
                let pick = rng.pick(ids)
                switch roll {
                case 0..<22 where ids.count < 10:
                    counter += 1
                    let currency = rng.chance(75) ? usd : eur
                    let amount = Money(minorUnits: Int64(rng.int(1...50_000)), currency: currency)
                    let id = "I\(counter)"
                    script.issue(id, amount, due: day.adding(days: rng.int(-20...30)).description)
                    log.append("\(day) issue \(id) \(amount) due \(script.invoices[id]!.dueDate)")
                case 22..<38:
                    guard let id = pick, open(id) else { continue }
                    let invoice = script.invoices[id]!
                    let rest = rng.chance(50) ? Int64(0) : Int64(rng.int(1...Int(max(1, invoice.balance.minorUnits))))
                    let paid = Money(minorUnits: min(rest, invoice.balance.minorUnits), currency: invoice.currency)
                    script.balance(id, paid)
                    log.append("\(day) pay \(id) → \(paid)")
                case 38..<46:
                    guard let id = pick, let invoice = script.invoices[id], invoice.status == .paid || invoice.status == .partiallyPaid else { continue }
                    let amount = script.amounts[id]!
                    let back = Money(minorUnits: min(amount.minorUnits, invoice.balance.minorUnits + Int64(rng.int(1...Int(amount.minorUnits)))), currency: amount.currency)
                    script.balance(id, back)
                    log.append("\(day) refund \(id) → \(back)")
                case 46..<50:
                    guard let id = pick, open(id) else { continue }
                    let status: InvoiceStatus = rng.chance(50) ? .voided : .writtenOff
                    script.close(id, status)
                    log.append("\(day) \(status) \(id)")
                case 50..<60:
                    guard let id = pick, open(id) else { continue }
                    if script.invoices[id]!.openDisputeIDs.isEmpty || rng.chance(20) {
                        counter += 1
                        script.dispute(id, "D\(counter)")
                        log.append("\(day) dispute \(id)")
                    } else {
                        let dispute = script.invoices[id]!.openDisputeIDs[0]
                        script.resolve(id, dispute)
                        log.append("\(day) resolve \(id)")
                    }
                case 60..<68:
                    guard let id = pick, open(id) else { continue }
                    let promised = day.adding(days: rng.int(-2...12))
                    script.promise([id], by: promised.description)
                    log.append("\(day) promise \(id) by \(promised)")
                case 68..<78:
                    counter += 1
                    if !script.payments.isEmpty && rng.chance(50) {
                        script.payments.remove(at: rng.int(0...(script.payments.count - 1)))
                        log.append("\(day) payment in flight ends")
                        continue
                    }
                    let named = rng.chance(70) ? [pick].compactMap { $0 } : []
                    let currency = named.first.flatMap { script.invoices[$0]?.currency } ?? usd
                    let kind: PaymentInFlight.Kind
                    if rng.chance(50) {
                        kind = .pending
                    } else {
                        let notBefore = Instant(secondsSinceEpoch: Int64(day.daysSinceEpoch) * 86_400 + Int64(rng.int(0...200_000)))
                        kind = .retry(attempt: rng.int(2...4), notBefore: notBefore, requested: rng.chance(50))
                    }
                    script.payments.append(PaymentInFlight(paymentID: "P\(counter)", kind: kind, currency: currency, invoiceIDs: named))
                    log.append("\(day) payment in flight \(kind) for \(named)")
                case 78..<83:
                    if script.holds.isEmpty {
                        script.holds = [CustomerHold(reason: "bank_exception", reference: "E\(counter)", currency: rng.chance(50) ? nil : usd)]
                        log.append("\(day) customer hold")
                    } else {
                        script.holds = []
                        log.append("\(day) hold lifted")
                    }
                default:
                    break
                }
            }
        }

        mutating func run(days: Int) {
            var day = start
            var downUntil = start
            for _ in 0..<days {
                events(on: day)
                if day >= downUntil {
                    if rng.chance(4) {
                        downUntil = day.adding(days: rng.int(2...25))  // the daemon is down
                    } else {
                        let passes = rng.int(1...3)
                        let hours = (0..<passes).map { _ in rng.int(0...23) }.sorted()
                        for hour in hours {
                            let now = Instant(secondsSinceEpoch: Int64(day.daysSinceEpoch) * 86_400 + Int64(hour) * 3600)
                            guard check(day: day, now: now) else { return }
                        }
                    }
                }
                day = day.adding(days: 1)
            }
        }

        /// One pass, checked; false after recording an issue.
        mutating func check(day: BusinessDate, now: Instant) -> Bool {
            let facts = DunningCustomer(customerID: "C1", policy: policy, localDate: day, now: now,
                                        invoices: script.invoiceOrder.compactMap { script.invoices[$0] }, paymentsInFlight: script.payments,
                                        holds: script.holds, remindedToday: script.reminded[day] ?? [])
            let expected = Oracle.expected(facts)
            let reminders = script.tick(day.description, now: now)
            var problems: [String] = []
            var seenThisPass: Set<String> = []
            var actual: [String: Int] = [:]
            for reminder in reminders {
                let slotKey = "\(day) \(reminder.step.offsetDays) \(reminder.currency) \(reminder.part)"
                if !daySlots.insert(slotKey).inserted { problems.append("second reminder for \(slotKey)") }
                if reminder.total != reminder.invoices.reduce(.zero(reminder.currency), { $0 + $1.balance }) { problems.append("total of \(reminder.summary)") }
                if reminder.invoices.map({ ($0.dueDate, $0.invoiceID) }).sorted(by: <) .map(\.1) != reminder.invoices.map(\.invoiceID) {
                    problems.append("lines not ordered in \(reminder.summary)")
                }
                if policy.level(ofOffset: reminder.step.offsetDays) != reminder.level { problems.append("level of \(reminder.summary)") }
                for line in reminder.invoices {
                    guard let before = facts.invoices.first(where: { $0.id == line.invoiceID }) else { problems.append("unknown \(line.invoiceID)"); continue }
                    if !seenThisPass.insert(line.invoiceID).inserted { problems.append("\(line.invoiceID) twice in one pass") }
                    if !everSent.insert("\(line.invoiceID) \(reminder.step.offsetDays)").inserted {
                        problems.append("step \(reminder.step.offsetDays) twice for \(line.invoiceID)")
                    }
                    if !before.status.isOpen { problems.append("reminder for \(before.status) \(line.invoiceID)") }
                    if !before.openDisputeIDs.isEmpty { problems.append("reminder for disputed \(line.invoiceID)") }
                    if before.currency != reminder.currency { problems.append("currency mix in \(reminder.summary)") }
                    if line.daysOverdue != day.days(since: before.dueDate) || line.balance != before.balance { problems.append("line \(line)") }
                    actual[line.invoiceID] = reminder.step.offsetDays
                }
            }
            if actual != expected { problems.append("sent \(actual.sorted { $0.key < $1.key }) but the oracle expects \(expected.sorted { $0.key < $1.key })") }
            guard problems.isEmpty else {
                Issue.record("seed \(seed), pass \(now) (local \(day)):\n  \(log.suffix(12).joined(separator: "\n  "))\nproblems:\n  \(problems.joined(separator: "\n  "))")
                return false
            }
            return true
        }
    }
}
