import ARContract
import ARDomain
import ArgumentParser
import Daemon
import Logging
import PostgresClient
import Store

/// `receivablesd dunning tick|explain` (SPEC sections 4 and 6; docs/dunning.md).
struct DunningCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dunning", abstract: "Run dunning passes as of any instant, and explain a customer's dunning.",
        subcommands: [Tick.self, Explain.self])

    /// `--now` / `--until`: RFC 3339 instants.
    static func instant(_ text: String, _ name: String) throws -> Instant {
        guard let instant = Instant(rfc3339: text) else { throw ValidationError("\(name) '\(text)' is not an RFC 3339 instant (e.g. 2026-03-01T09:00:00Z)") }
        return instant
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "receivablesd.dunning")
        logger.logLevel = .warning
        return logger
    }

    struct Tick: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tick",
            abstract: "Run one scheduler pass (reminders, escalations, due payment retries) as of an instant.",
            discussion: """
                Several runs and daemon instances may tick at once: each reminder and retry is claimed once in the database.
                With --until, passes run from --now to --until every --every (a simulated history in one process).
                The events go to the outbox; a running `receivablesd serve` publishes them.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The pass's instant (RFC 3339); default: now.") var now: String?
        @Option(help: "Run passes up to this instant (RFC 3339), inclusive.") var until: String?
        @Option(help: "Time between passes with --until: seconds, or a number with s, m, h or d (default 1h).") var every = "1h"
        @Flag(help: "One JSON object per line: each reminder, escalation and retry, then one line per pass.") var json = false

        func validate() throws {
            if let now { _ = try DunningCommand.instant(now, "--now") }
            if let until {
                _ = try DunningCommand.instant(until, "--until")
                guard now != nil else { throw ValidationError("--until needs --now") }
            }
            guard let step = Tick.seconds(every), step > 0 else { throw ValidationError("--every '\(every)' is not a duration such as 3600, 15m, 1h or 1d") }
        }

        static func seconds(_ text: String) -> Int64? {
            let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            if let unit = text.last.flatMap({ units[$0] }), let value = Int64(text.dropLast()), value <= 36_500 * 86_400 / unit { return value * unit }
            return Int64(text).flatMap { $0 <= 36_500 * 86_400 ? $0 : nil }
        }

        func run() async throws {
            let configuration = try await connection.load()
            let policies = try connection.policies(configuration)
            let store = Store(try await connection.database())
            let runner = DunningRunner(configuration: configuration, logger: DunningCommand.quietLogger)
            let start = try now.map { try DunningCommand.instant($0, "--now") } ?? WallClock.now()
            let end = try until.map { try DunningCommand.instant($0, "--until") } ?? start
            let step = Tick.seconds(every) ?? 3600
            guard end >= start else { throw ValidationError("--until is before --now") }
            let passes = (end.microsecondsSinceEpoch - start.microsecondsSinceEpoch) / (step * 1_000_000) + 1
            guard passes <= 1_000_000 else { throw ValidationError("\(passes) passes: use a larger --every") }
            var instant = start
            var totals = (reminders: 0, escalations: 0, retries: 0)
            while instant <= end {
                let report: DunningPassReport
                do { report = try runner.pass(store: store, policies: policies, now: instant) } catch { throw CommandFailure("dunning pass as of \(instant) failed: \(error)") }
                print(json ? Tick.jsonLines(report) : Tick.text(report), terminator: "")
                totals.reminders += report.reminders.filter { $0.eventType != DunningAction.escalate.rawValue }.count
                totals.escalations += report.reminders.filter { $0.eventType == DunningAction.escalate.rawValue }.count
                totals.retries += report.retries.filter { $0.outcome == "requested" }.count
                instant = instant.adding(seconds: step)
            }
            if !json && passes > 1 {
                print("\(passes) passes: \(totals.reminders) reminder(s), \(totals.escalations) escalation(s), \(totals.retries) retry request(s)")
            }
        }

        static func text(_ report: DunningPassReport) -> String {
            var out = ""
            for reminder in report.reminders {
                out += "\(report.now)  \(reminder.eventType) level \(reminder.level) (\(DunningStep.offsetText(reminder.stepOffsetDays))) to \(reminder.customerID)"
                    + " for \(reminder.localDate): \(reminder.invoiceIDs.joined(separator: ",")) total \(reminder.total.decimalString) \(reminder.total.currency)\n"
            }
            for retry in report.retries {
                out += "\(report.now)  payment \(retry.paymentID) retry \(retry.attempt) \(retry.outcome) (customer \(retry.customerID))\n"
            }
            for (customer, zone) in report.fallbackTimeZones {
                out += "\(report.now)  warning: customer \(customer) has unknown time zone '\(zone)': UTC used\n"
            }
            if !report.reminders.isEmpty || !report.retries.isEmpty || report.fallbackTimeZones.isEmpty == false {
                out += "\(report.now)  pass: \(report.reminders.count) reminder(s), \(report.retries.count) retry change(s), \(report.waitingInvoices) invoice(s) waiting, \(report.customers) customer(s)\n"
            }
            return out
        }

        static func jsonLines(_ report: DunningPassReport) -> String {
            var lines: [JSONValue] = report.reminders.map { reminder in
                .object(JSONObject([
                    ("kind", .string("reminder")), ("pass", .string(report.now.description)), ("id", .string(reminder.eventID)),
                    ("type", .string(reminder.eventType)), ("customer_id", .string(reminder.customerID)), ("level", .number(String(reminder.level))),
                    ("offset_days", .number(String(reminder.stepOffsetDays))), ("local_date", .string(reminder.localDate.description)),
                    ("invoice_ids", .array(reminder.invoiceIDs.map { .string($0) })), ("total", .string(reminder.total.decimalString)),
                    ("currency", .string(reminder.total.currency.code)),
                ]))
            }
            lines += report.retries.map { retry in
                .object(JSONObject([
                    ("kind", .string("retry")), ("pass", .string(report.now.description)), ("payment_id", .string(retry.paymentID)),
                    ("attempt", .number(String(retry.attempt))), ("customer_id", .string(retry.customerID)), ("outcome", .string(retry.outcome)),
                ]))
            }
            lines.append(.object(JSONObject([
                ("kind", .string("pass")), ("pass", .string(report.now.description)), ("reminders", .number(String(report.reminders.count))),
                ("retries", .number(String(report.retries.count))), ("waiting", .number(String(report.waitingInvoices))),
                ("customers", .number(String(report.customers))),
                ("unknown_time_zones", .array(report.fallbackTimeZones.map { .string($0.customerID) })),
            ])))
            return lines.map { JSONSerializer.serializeToString($0) + "\n" }.joined()
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Show a customer's dunning: policy, local date, each open invoice's steps sent, its next step and why it waits.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The customer id.") var customer: String
        @Option(help: "As of this instant (RFC 3339); default: now.") var now: String?

        func validate() throws {
            if let now { _ = try DunningCommand.instant(now, "--now") }
        }

        func run() async throws {
            let configuration = try await connection.load()
            let policies = try connection.policies(configuration)
            let store = Store(try await connection.database())
            let instant = try now.map { try DunningCommand.instant($0, "--now") } ?? WallClock.now()
            let runner = DunningRunner(configuration: configuration, logger: DunningCommand.quietLogger)
            let explanation: DunningExplanation?
            do { explanation = try runner.explain(store: store, policies: policies, customerID: customer, now: instant) } catch {
                throw CommandFailure("\(error)")
            }
            guard let explanation else { throw CommandFailure("no customer \(customer) is known") }
            print(Explain.render(explanation, now: instant))
        }

        static func render(_ e: DunningExplanation, now: Instant) -> String {
            let record = e.record
            var out = "customer \(record.customerID) (\(record.name))\n"
            let policyNote = record.policyName.map { $0 == e.policy.name ? "" : " (asked for '\($0)', which is not defined: default used)" } ?? " (default)"
            out += "policy \(e.policy.name)\(policyNote): " + e.policy.steps.enumerated().map { index, step in
                "L\(index + 1) \(DunningStep.offsetText(step.offsetDays)) \(step.action.rawValue)"
            }.joined(separator: ", ") + "; grace \(e.policy.graceDays) d; retries after \(e.policy.retryDelaysDays.map(String.init).joined(separator: ", ")) d"
            out += e.policy.minimumBalance.isEmpty ? "\n" : "; minimum " + e.policy.minimumBalance.values.sorted { $0.currency < $1.currency }
                .map { "\($0.decimalString) \($0.currency)" }.joined(separator: ", ") + "\n"
            let zoneNote = record.zoneIsFallback ? " (time_zone '\(record.timeZone ?? "")' is unknown: UTC used)" : ""
            out += "time zone \(record.zone)\(zoneNote); local date \(record.localDate) as of \(now)\n"
            for hold in record.holds { out += "customer hold: \(hold.reason) \(hold.reference)\(hold.currency.map { " (\($0) only)" } ?? "")\n" }
            for payment in record.paymentsInFlight {
                let covers = payment.invoiceIDs.isEmpty ? "all \(payment.currency) invoices" : payment.invoiceIDs.joined(separator: ",")
                switch payment.kind {
                case .pending: out += "payment \(payment.paymentID) pending for \(covers)\n"
                case .retry(let attempt, let notBefore, let requested):
                    out += "payment \(payment.paymentID) retry \(attempt) \(requested ? "requested" : "scheduled"), not before \(notBefore), for \(covers)\n"
                }
            }
            let sent = Dictionary(grouping: e.sentSteps, by: \.invoiceID)
            let since = Dictionary(e.recordedWaits.map { ("\($0.wait.invoiceID)\u{1F}\($0.wait.reason)\u{1F}\($0.wait.reference)", $0.since) },
                                   uniquingKeysWith: { first, _ in first })
            var rows: [[String]] = []
            var reasons: [String] = []
            for invoice in record.invoices {
                let state = e.pass.state(of: invoice.id)
                let history = (sent[invoice.id] ?? []).map { "L\($0.level) \($0.localDate)" }.joined(separator: ", ")
                rows.append([invoice.id, invoice.number, "\(invoice.balance.decimalString) \(invoice.currency)", invoice.dueDate.description,
                             String(record.localDate.days(since: invoice.dueDate)), history.isEmpty ? "-" : history, state.map(Explain.describe) ?? "-",
                             Explain.pauses(invoice, record: record, graceDays: e.policy.graceDays)])
                if case .waiting(_, let waits)? = state {
                    for wait in waits {
                        let first = since["\(invoice.id)\u{1F}\(wait.code)\u{1F}\(wait.reference)"].map { " (since \($0))" } ?? ""
                        reasons.append("  \(invoice.id): \(wait.code): \(wait.detail)\(first)")
                    }
                }
            }
            out += record.invoices.isEmpty ? "no open invoices\n"
                : Table.render(["INVOICE", "NUMBER", "BALANCE", "DUE", "DAYS", "SENT", "DUNNING", "PAUSED OR HELD BY"], rows) + "\n"
            if !reasons.isEmpty { out += "why they wait:\n" + reasons.joined(separator: "\n") + "\n" }
            let retries = e.retries.filter { $0.state != "scheduled" && $0.state != "requested" }
            for retry in retries.suffix(10) {
                out += "retry history: payment \(retry.paymentID) attempt \(retry.attempt) \(retry.state)\(retry.stateReason.map { " (\($0))" } ?? "")\n"
            }
            return out.hasSuffix("\n") ? String(out.dropLast()) : out
        }

        /// What pauses or holds the invoice now, whether or not a step is due.
        static func pauses(_ invoice: DunningInvoice, record: DunningCustomerRecord, graceDays: Int) -> String {
            var notes = invoice.openDisputeIDs.sorted().map { "dispute \($0)" }
            if let promised = invoice.promisedDates.max() {
                let until = promised.adding(days: graceDays)
                notes.append(record.localDate <= until ? "promise by \(promised) (paused through \(until))" : "promise by \(promised) broken")
            }
            for payment in record.paymentsInFlight where payment.invoiceIDs.isEmpty ? payment.currency == invoice.currency : payment.invoiceIDs.contains(invoice.id) {
                switch payment.kind {
                case .pending: notes.append("pending \(payment.paymentID)")
                case .retry(let attempt, _, let requested): notes.append("retry \(attempt) of \(payment.paymentID)\(requested ? " (requested)" : "")")
                }
            }
            return notes.isEmpty ? "-" : notes.joined(separator: "; ")
        }

        static func describe(_ state: InvoiceDunningState) -> String {
            func step(_ s: ScheduledStep) -> String { "L\(s.level) \(DunningStep.offsetText(s.step.offsetDays)) \(s.step.action.rawValue)" }
            switch state {
            case .stopped(let status): return "stopped (\(status.rawValue))"
            case .notYetDue(let next): return "next \(step(next)) on \(next.date)"
            case .upToDate(_, let next): return next.map { "up to date; next \(step($0)) on \($0.date)" } ?? "up to date; last step sent"
            case .waiting(let due, let waits): return "WAITING \(step(due)): " + waits.map(\.code).joined(separator: ", ")
            case .sending(let due): return "due now: \(step(due))"
            }
        }
    }
}
