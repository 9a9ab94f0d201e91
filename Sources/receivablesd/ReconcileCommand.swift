import ARContract
import ARDomain
import ArgumentParser
import Store

/// `receivablesd reconcile …`: what reconciliation decided about a bank entry, and why.
struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Explain reconciliation decisions about bank entries.",
        subcommands: [Explain.self]
    )

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Print a bank entry, every decision about it, the rule that fired, and each candidate with its score and why it lost.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The entry id (as in reconciliation.matched / reconciliation.exception).") var entryID: String
        @Flag(help: "Print the stored explanations as JSON lines instead.") var json = false

        func run() async throws {
            let store = Store(try await connection.database())
            let entry: BankEntryRecord?
            let decisions: [DecisionRecord]
            do {
                entry = try store.bankEntry(entryID)
                decisions = entry == nil ? [] : try store.decisions(entryID: entryID)
            } catch { throw CommandFailure("\(error)") }
            guard let entry else { throw CommandFailure("no bank entry \(entryID) is known") }
            if json {
                for decision in decisions { print(decision.explanation) }
                return
            }
            print(ExplainRendering.render(entry, decisions))
        }
    }
}

/// The human text of `reconcile explain`.
enum ExplainRendering {
    static func render(_ entry: BankEntryRecord, _ decisions: [DecisionRecord]) -> String {
        var lines: [String] = []
        let origin = entry.originFormat == "connector" ? "bank.credit.received" : entry.originFormat + (entry.statementID.map { " statement \($0)" } ?? "")
        lines.append("bank entry \(entry.entryID)  (\(origin); first seen in \(entry.source) \(entry.eventID) at \(entry.receivedAt ?? "?"))")
        lines.append("  \(entry.isCredit ? "credit" : "debit") \(entry.amount.decimalString) \(entry.amount.currency) on account \(Masked.account(entry.identity.account))"
                     + (entry.bookingDate.map { ", booked \($0)" } ?? "") + (entry.valueDate.map { ", value \($0)" } ?? "")
                     + (entry.reversal ? ", a reversal" : ""))
        if entry.debtorName != nil || entry.debtorAccount != nil {
            lines.append("  debtor: \(entry.debtorName ?? "(no name)")" + (entry.debtorAccount.map { ", account \(Masked.account($0))" } ?? ""))
        }
        if let text = entry.remittanceInfo { lines.append("  remittance: \"\(Rejection.masked(text))\"") }
        if let text = entry.structuredReference { lines.append("  structured reference: \(text)") }
        if let text = entry.endToEndID { lines.append("  end-to-end id: \(text)") }
        lines.append("  bank reference: \(entry.identity.reference)")
        guard entry.isCredit else {
            lines.append("now: recorded (debits are recorded, not reconciled)")
            return lines.joined(separator: "\n")
        }
        var now = "now: \(entry.state)"
        if let reason = entry.reason { now += " (\(reason))" }
        if let rule = entry.rule { now += " by \(rule)" }
        if let confidence = entry.confidence, entry.state != "exception" { now += ", confidence \(fraction(confidence))" }
        if let customer = entry.customerID { now += ", customer \(customer)" }
        if let payout = entry.payoutID { now += ", payout \(payout)" }
        let digits = entry.amount.currency.minorUnitDigits
        if entry.state == "matched" || entry.state == "partially_matched" {
            now += ": applied \(Money.format(minorUnits: entry.appliedMinor, digits: digits)), to credit \(Money.format(minorUnits: entry.creditMinor, digits: digits)), fees \(Money.format(minorUnits: entry.feesMinor, digits: digits))"
        }
        lines.append(now)
        for (index, decision) in decisions.enumerated() {
            lines.append("")
            lines += render(decision, number: index + 1)
        }
        if decisions.isEmpty { lines.append("(no decision stored)") }
        return lines.joined(separator: "\n")
    }

    static func render(_ decision: DecisionRecord, number: Int) -> [String] {
        var lines: [String] = []
        var head = "decision \(number) (\(decision.kind), \(decision.decidedAt ?? "?"), by \(decision.source) \(decision.eventID)): \(decision.state)"
        if let reason = decision.reason { head += " (\(reason))" }
        if let rule = decision.rule { head += ", rule \(rule)" }
        if let confidence = decision.confidence, decision.state != "exception" { head += ", confidence \(fraction(confidence))" }
        lines.append(head)
        let explanation: JSONValue
        do { explanation = try JSONParser(maximumDepth: 16).parse(Array(decision.explanation.utf8)) } catch {
            // Stored by us as JSON; print it raw rather than fail if it is somehow not.
            lines.append("  " + decision.explanation)
            return lines
        }
        let notes = explanation["notes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !notes.isEmpty {
            lines.append("  evidence and steps:")
            lines += notes.map { "    - " + $0 }
        }
        let candidates = explanation["candidates"]?.arrayValue ?? []
        if candidates.isEmpty {
            lines.append("  candidates: none")
        } else {
            lines.append("  candidates, best first (score 0-100):")
            for candidate in candidates {
                let rank = candidate["rank"].map(text) ?? "?"
                let subject = "\(candidate["subject"]?.stringValue ?? "?") \(candidate["id"]?.stringValue ?? "?")"
                let customer = candidate["customer_id"]?.stringValue.map { " (customer \($0))" } ?? ""
                let won = candidate["won"] == .bool(true)
                let rule = candidate["rule"]?.stringValue ?? "?"
                let score = candidate["score"].map(text) ?? "?"
                lines.append("    \(rank). \(subject)\(customer)  rule \(rule)  score \(score)  \(won ? "WON" : "lost"): \(candidate["why"]?.stringValue ?? "")")
            }
        }
        let allocations = explanation["allocations"]?.arrayValue ?? []
        if !allocations.isEmpty {
            lines.append("  allocations: " + allocations.map { allocation in
                let off = allocation["written_off"]?.stringValue ?? "0"
                return "\(allocation["invoice_id"]?.stringValue ?? "?") \(allocation["paid"]?.stringValue ?? "?")"
                    + (off.allSatisfy { $0 == "0" || $0 == "." } ? "" : " (+\(off) shortfall written off)")
            }.joined(separator: ", "))
        }
        if let credit = explanation["to_credit"]?.stringValue, !credit.allSatisfy({ $0 == "0" || $0 == "." }) {
            lines.append("  to the customer's credit: \(credit)")
        }
        if let fees = explanation["fees"]?.stringValue, !fees.allSatisfy({ $0 == "0" || $0 == "." }) {
            lines.append("  to fees: \(fees)")
        }
        return lines
    }

    static func fraction(_ score: Int) -> String {
        score >= 100 ? "1.00" : "0." + (score < 10 ? "0" : "") + String(score)
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case .number(let lexeme): lexeme
        case .string(let string): string
        default: "?"
        }
    }
}
