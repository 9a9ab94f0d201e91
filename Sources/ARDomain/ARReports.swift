/// The AR team's figures (SPEC section 5): aging by customer, DSO, unapplied cash by age.
/// Pure: the Store reads the sums from the journal, these functions shape them.

/// One customer's receivable by bucket in one currency.
public struct CustomerAging: Hashable, Sendable {
    public let customerID: String
    public let customerName: String
    public let currency: Currency
    public let buckets: AgingBuckets
    public init(customerID: String, customerName: String, currency: Currency, buckets: AgingBuckets) {
        self.customerID = customerID
        self.customerName = customerName
        self.currency = currency
        self.buckets = buckets
    }
}

public enum AgingReport {
    /// Totals per currency, currencies in code order.
    public static func totals(_ rows: [CustomerAging]) -> [(currency: Currency, buckets: AgingBuckets)] {
        var totals: [Currency: AgingBuckets] = [:]
        for row in rows { totals[row.currency] = (totals[row.currency] ?? AgingBuckets()) + row.buckets }
        return totals.keys.sorted().map { ($0, totals[$0]!) }
    }
}

/// Days sales outstanding by the countback method.
///
/// Start from the receivable at the end of the as-of day and walk back through calendar months:
/// the month of the as-of date counts from its 1st to the as-of date, earlier months in full.
/// While the receivable left is at least a month's sales (invoiced amounts booked in it), add all
/// of that month's days and subtract its sales; in the month where it is less, add that month's
/// days × (receivable left ÷ its sales) and stop. DSO is reported in hundredths of a day, rounded
/// half up, computed in integers. A receivable not covered by `maximumMonths` of sales is capped.
public enum DaysSalesOutstanding {
    public struct Period: Hashable, Sendable {
        public let first: BusinessDate
        public let last: BusinessDate
        public init(first: BusinessDate, last: BusinessDate) { self.first = first; self.last = last }
        public var days: Int { last.days(since: first) + 1 }
    }

    public struct Result: Hashable, Sendable {
        public let receivable: Int64
        /// DSO × 100.
        public let hundredthsOfDays: Int64
        /// True when the receivable is larger than all the sales of the periods looked at.
        public let capped: Bool
        /// The periods used, newest first, with their sales.
        public let periods: [(period: Period, sales: Int64)]

        public static func == (a: Result, b: Result) -> Bool {
            a.receivable == b.receivable && a.hundredthsOfDays == b.hundredthsOfDays && a.capped == b.capped
                && a.periods.map(\.period) == b.periods.map(\.period) && a.periods.map(\.sales) == b.periods.map(\.sales)
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(receivable); hasher.combine(hundredthsOfDays) }

        /// "48.00"
        public var text: String {
            let whole = hundredthsOfDays / 100
            let fraction = hundredthsOfDays % 100
            return "\(capped ? ">" : "")\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
        }
    }

    public static let maximumMonths = 24

    /// The countback periods for an as-of date, newest first.
    public static func periods(asOf: BusinessDate, count: Int = maximumMonths) -> [Period] {
        var result: [Period] = []
        var last = asOf
        for _ in 0..<count {
            let (year, month, _) = last.components
            guard let first = BusinessDate(year: year, month: month, day: 1) else { break }
            result.append(Period(first: first, last: last))
            last = first.adding(days: -1)
        }
        return result
    }

    /// `sales` gives the sales of each period, in the order of `periods`.
    public static func countback(receivable: Int64, periods: [Period], sales: [Int64]) -> Result {
        precondition(periods.count == sales.count)
        var left = receivable
        var hundredths: Int64 = 0
        var used: [(period: Period, sales: Int64)] = []
        if left <= 0 { return Result(receivable: receivable, hundredthsOfDays: 0, capped: false, periods: []) }
        for (period, sold) in zip(periods, sales) {
            used.append((period, sold))
            let days = Int64(period.days)
            if sold > 0 && left < sold {
                // days × left / sold, in hundredths, rounded half up; days ≤ 31 and left < 10^15 keep it in 64 bits.
                hundredths += (days * left * 200 + sold) / (2 * sold)
                return Result(receivable: receivable, hundredthsOfDays: hundredths, capped: false, periods: used)
            }
            hundredths += days * 100
            left -= sold
        }
        return Result(receivable: receivable, hundredthsOfDays: hundredths, capped: left > 0, periods: used)
    }
}

/// Unapplied cash by age: the credit balance of one customer and currency, aged first in,
/// first out over the journal's unapplied-credit movements (credit arriving makes a dated
/// layer; credit used or refunded consumes the oldest layers first).
public enum UnappliedAging {
    public struct Change: Hashable, Sendable {
        public let bookedOn: BusinessDate
        public let amount: Int64
        public init(bookedOn: BusinessDate, amount: Int64) { self.bookedOn = bookedOn; self.amount = amount }
    }

    /// Buckets of age in days at `asOf`: 0–30, 31–60, 61–90, over 90 (in AgingBuckets' last four
    /// slots; `current` stays 0). Changes must be in booking order.
    public static func age(_ changes: [Change], asOf: BusinessDate) -> AgingBuckets {
        var layers: [(date: BusinessDate, amount: Int64)] = []
        var head = 0
        for change in changes where change.bookedOn <= asOf {
            if change.amount > 0 {
                layers.append((change.bookedOn, change.amount))
                continue
            }
            var used = -change.amount
            while used > 0 && head < layers.count {
                let take = min(used, layers[head].amount)
                layers[head].amount -= take
                used -= take
                if layers[head].amount == 0 { head += 1 }
            }
        }
        var buckets = AgingBuckets()
        for layer in layers[head...] where layer.amount > 0 {
            let age = asOf.days(since: layer.date)
            switch age {
            case ...30: buckets.days1to30 += layer.amount
            case 31...60: buckets.days31to60 += layer.amount
            case 61...90: buckets.days61to90 += layer.amount
            default: buckets.over90 += layer.amount
            }
        }
        return buckets
    }
}
