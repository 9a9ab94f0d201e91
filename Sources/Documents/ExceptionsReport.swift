import ARDomain

/// One open reconciliation exception as the report needs it (the Store's `OpenException`, mapped
/// by the caller so this module stays free of SQL).
public struct OpenExceptionLine: Sendable, Equatable {
    public let entryID: String
    public let account: String
    public let amount: Money
    /// The bank's booking date; when the bank gave none, the day the credit was received.
    public let bookedOn: BusinessDate
    public let reason: String
    public let candidateCustomers: [String]

    public init(entryID: String, account: String, amount: Money, bookedOn: BusinessDate, reason: String, candidateCustomers: [String]) {
        self.entryID = entryID
        self.account = account
        self.amount = amount
        self.bookedOn = bookedOn
        self.reason = reason
        self.candidateCustomers = candidateCustomers
    }
}

/// The AR team's exception queue (SPEC section 5, "open exceptions"): per currency, counts and
/// amounts by reason and age, then every open exception oldest first.
public enum ExceptionsReport {
    /// Age buckets in days since the booking, as of the report day: what is new, what is this
    /// week's work, what is overdue for an answer.
    public static let ageLabels = ["0-2 days", "3-7", "8-30", "31+"]
    static let ageKeys = ["days_0_2", "days_3_7", "days_8_30", "days_over_30"]

    public static func bucket(ageDays: Int) -> Int {
        switch ageDays {
        case ..<3: return 0
        case 3...7: return 1
        case 8...30: return 2
        default: return 3
        }
    }

    public static func document(_ lines: [OpenExceptionLine], asOf: BusinessDate, generatedAt: Instant) -> ReportDocument {
        let currencies = Set(lines.map(\.amount.currency)).sorted()
        var sections: [ReportDocument.Section] = []
        for currency in currencies {
            let mine = lines.filter { $0.amount.currency == currency }
            let reasons = Set(mine.map(\.reason)).sorted()
            var summary: [[String]] = []
            var columnTotals = Array(repeating: (count: 0, amount: Money.zero(currency)), count: ageLabels.count)
            for reason in reasons {
                var cells = Array(repeating: (count: 0, amount: Money.zero(currency)), count: ageLabels.count)
                for line in mine where line.reason == reason {
                    let index = bucket(ageDays: asOf.days(since: line.bookedOn))
                    cells[index].count += 1
                    cells[index].amount += line.amount
                    columnTotals[index].count += 1
                    columnTotals[index].amount += line.amount
                }
                summary.append(row(reason, cells))
            }
            summary.append(row("TOTAL", columnTotals))
            var columns = [ReportDocument.Column("Reason", key: "reason")]
            for (label, key) in zip(ageLabels + ["Total"], ageKeys + ["total"]) {
                columns += [ReportDocument.Column("\(label) (n)", key: key + "_count", isAmount: true), ReportDocument.Column(label, key: key, isAmount: true)]
            }
            let chart = ReportDocument.Chart(caption: "Open exceptions by age, \(currency.code)", bars: zip(ageLabels, columnTotals).map {
                ($0, $1.amount.minorUnits, "\($1.count) · \($1.amount.decimalString)")
            })
            sections.append(.init(id: currency.code + "-summary", heading: "Open exceptions \(currency.code): by reason and age",
                                  note: "Number of bank credits (n) and their amount. Age in days since the booking, as of \(asOf).",
                                  columns: columns, rows: summary, hasTotal: true, chart: chart))
            let detail = mine.sorted { ($0.bookedOn, $0.entryID) < ($1.bookedOn, $1.entryID) }.map { line in
                [line.entryID, line.account, line.bookedOn.description, String(asOf.days(since: line.bookedOn)), line.reason,
                 line.candidateCustomers.prefix(5).joined(separator: " ") + (line.candidateCustomers.count > 5 ? " …" : ""),
                 line.amount.decimalString]
            }
            sections.append(.init(id: currency.code + "-entries", heading: "Open exceptions \(currency.code): oldest first",
                                  note: "`receivablesd reconcile explain ENTRY_ID` shows why each one is here.",
                                  columns: [.init("Entry", key: "entry_id"), .init("Account", key: "account"), .init("Booked", key: "booking_date"),
                                            .init("Age (days)", key: "age_days", isAmount: true), .init("Reason", key: "reason"),
                                            .init("Candidates", key: "candidates"), .init("Amount", key: "amount", isAmount: true)],
                                  rows: detail, hasTotal: false))
        }
        return ReportDocument(kind: "exceptions", title: "Open reconciliation exceptions", asOf: asOf, generatedAt: generatedAt, sections: sections)
    }

    private static func row(_ label: String, _ cells: [(count: Int, amount: Money)]) -> [String] {
        let currency = cells[0].amount.currency
        let count = cells.reduce(0) { $0 + $1.count }
        let amount = cells.reduce(Money.zero(currency)) { $0 + $1.amount }
        return [label] + (cells + [(count, amount)]).flatMap { [String($0.count), $0.amount.decimalString] }
    }
}
