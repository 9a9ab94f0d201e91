import ARDomain
import PostgresClient

/// The sums behind `receivablesd report aging|dso|unapplied`, read from the journal as known
/// now and booked on or before the end of the as-of day (UTC), so they agree with statements.
extension Store {
    /// Every entry known now (committed: reports read outside any transaction of their own
    /// writes) and booked on or before the day $1.
    static func bookedByDate(joining joins: String = "") -> String { """
        FROM journal_entries e
        JOIN journal_lines l ON l.entry_id = e.entry_id
        \(joins)
        WHERE \(bookedOn) <= $1::date
        """
    }
    static let bookedOn = "(COALESCE(e.booked_at, e.posted_at) AT TIME ZONE 'UTC')::date"
    static let bookedByDate = bookedByDate()

    /// Receivable by customer, currency and bucket at the end of `asOf`, largest total first.
    public func agingByCustomer(asOf: BusinessDate) throws(PostgresError) -> [CustomerAging] {
        // Grouped by days past due clipped to 0...91: every bucket boundary stays distinguishable
        // and AgingBuckets keeps the one bucketing rule.
        let rows = try db.query("""
            WITH balances AS (
                SELECT l.customer_id, e.currency, l.invoice_id, sum(l.debit_minor - l.credit_minor) AS balance
                \(Store.bookedByDate) AND l.account = 'receivable' AND l.invoice_id IS NOT NULL
                GROUP BY l.customer_id, e.currency, l.invoice_id HAVING sum(l.debit_minor - l.credit_minor) <> 0)
            SELECT b.customer_id, cu.name, b.currency, least(greatest($1::date - i.due_date, 0), 91) AS days, sum(b.balance)::bigint AS balance
            FROM balances b JOIN invoices i ON i.invoice_id = b.invoice_id JOIN customers cu ON cu.customer_id = b.customer_id
            GROUP BY b.customer_id, cu.name, b.currency, days
            ORDER BY b.customer_id, b.currency
            """, [.text(asOf.description)])
        var result: [String: CustomerAging] = [:]
        var order: [String] = []
        for row in rows.all {
            let key = row.requiredString("customer_id") + "\u{1F}" + row.requiredString("currency")
            var buckets = result[key]?.buckets ?? AgingBuckets()
            buckets.add(row.requiredInt64("balance"), daysPastDue: Int(row.requiredInt64("days")))
            if result[key] == nil { order.append(key) }
            result[key] = CustomerAging(customerID: row.requiredString("customer_id"), customerName: row.requiredString("name"),
                                        currency: Store.currency(row), buckets: buckets)
        }
        return order.compactMap { result[$0] }.sorted {
            ($0.currency, -$0.buckets.total, $0.customerID) < ($1.currency, -$1.buckets.total, $1.customerID)
        }
    }

    /// Receivable per currency at the end of `asOf`, and invoiced sales per countback period.
    public func daysSalesOutstanding(asOf: BusinessDate) throws(PostgresError) -> [(currency: Currency, result: DaysSalesOutstanding.Result)] {
        let periods = DaysSalesOutstanding.periods(asOf: asOf)
        guard let oldest = periods.last?.first else { return [] }
        let receivable = try db.query("""
            SELECT e.currency, sum(l.debit_minor - l.credit_minor)::bigint AS receivable
            \(Store.bookedByDate) AND l.account = 'receivable' GROUP BY e.currency
            """, [.text(asOf.description)])
        // Sales are dated by the invoice's issue date, not by when the invoice reached us: a billing
        // system that sends September's invoices in December has September sales (countback DSO).
        let sales = try db.query("""
            SELECT e.currency, date_trunc('month', i.issue_date)::date::text AS month,
                   sum(l.debit_minor)::bigint AS sales
            \(Store.bookedByDate(joining: "JOIN invoices i ON i.invoice_id = l.invoice_id")) AND l.account = 'receivable' AND e.kind = 'invoice_issued'
              AND i.issue_date >= $2::date AND i.issue_date <= $1::date
            GROUP BY e.currency, month
            """, [.text(asOf.description), .text(oldest.description)])
        var salesByMonth: [Currency: [BusinessDate: Int64]] = [:]
        for row in sales.all {
            guard let month = BusinessDate(row.requiredString("month")) else { continue }
            salesByMonth[Store.currency(row), default: [:]][month] = row.requiredInt64("sales")
        }
        var currencies = Set(salesByMonth.keys)
        var receivableByCurrency: [Currency: Int64] = [:]
        for row in receivable.all {
            receivableByCurrency[Store.currency(row)] = row.requiredInt64("receivable")
            currencies.insert(Store.currency(row))
        }
        return currencies.sorted().map { currency in
            let perPeriod = periods.map { salesByMonth[currency]?[$0.first] ?? 0 }
            return (currency, DaysSalesOutstanding.countback(receivable: receivableByCurrency[currency] ?? 0, periods: periods, sales: perPeriod))
        }
    }

    /// Unapplied credit by customer, currency and age (first in, first out) at the end of `asOf`.
    public func unappliedByCustomer(asOf: BusinessDate) throws(PostgresError) -> [CustomerAging] {
        let rows = try db.query("""
            SELECT l.customer_id, cu.name, e.currency, \(Store.bookedOn)::text AS booked_on,
                   sum(l.credit_minor - l.debit_minor)::bigint AS change
            \(Store.bookedByDate(joining: "JOIN customers cu ON cu.customer_id = l.customer_id")) AND l.account = 'unapplied_credit'
            GROUP BY l.customer_id, cu.name, e.currency, booked_on
            ORDER BY l.customer_id, e.currency, booked_on
            """, [.text(asOf.description)])
        var result: [CustomerAging] = []
        var changes: [UnappliedAging.Change] = []
        var current: (customer: String, name: String, currency: Currency)?
        func flush() {
            guard let key = current else { return }
            let buckets = UnappliedAging.age(changes, asOf: asOf)
            if buckets.total != 0 { result.append(CustomerAging(customerID: key.customer, customerName: key.name, currency: key.currency, buckets: buckets)) }
            changes = []
        }
        for row in rows.all {
            let customer = row.requiredString("customer_id")
            let currency = Store.currency(row)
            if current?.customer != customer || current?.currency != currency {
                flush()
                current = (customer, row.requiredString("name"), currency)
            }
            guard let date = BusinessDate(row.requiredString("booked_on")) else { continue }
            changes.append(UnappliedAging.Change(bookedOn: date, amount: row.requiredInt64("change")))
        }
        flush()
        return result.sorted { ($0.currency, -$0.buckets.total, $0.customerID) < ($1.currency, -$1.buckets.total, $1.customerID) }
    }
}
