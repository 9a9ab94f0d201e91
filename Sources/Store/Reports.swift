import ARDomain
import PostgresClient

/// The portal's account summary (SPEC section 2, `account.summary.requested`).
public struct AccountSummary: Sendable {
    public struct CurrencyPosition: Sendable {
        public let currency: Currency
        /// Sum of open invoices' balances.
        public let balance: Money
        /// Unapplied credit, reported beside the balance, never netted into it.
        public let unappliedCredit: Money
        /// Payments on their way (payment.pending not yet settled or failed).
        public let pending: Money
        /// Part of `balance` that is past due.
        public let overdue: Money
    }

    public struct OpenInvoice: Sendable {
        public let invoice: Invoice
        /// Level of the highest dunning step sent for the invoice (1 = the policy's first
        /// step), 0 when none was sent.
        public let dunningLevel: Int
        public let pendingPayment: Bool
        /// An open dispute pauses its dunning.
        public let disputed: Bool
        /// The latest promised date of the promises to pay that name it.
        public let promisedDate: BusinessDate?
    }

    public let customerID: String
    public let customerName: String
    /// The customer's date now, in its time zone (days overdue, overdue amounts).
    public let today: BusinessDate
    /// The customer's dunning policy name as stored (nil: the default policy).
    public let dunningPolicy: String?
    public let positions: [CurrencyPosition]
    /// Open and partially paid invoices, earliest due first.
    public let openInvoices: [OpenInvoice]
}

extension Store {
    /// Everything the portal shows on the account page, read in one snapshot.
    public func accountSummary(customerID: String) throws(PostgresError) -> AccountSummary? {
        guard let customer = try db.query("SELECT name, dunning_policy FROM customers WHERE customer_id = $1", [.text(customerID)]).first else { return nil }
        let invoiceRows = try db.query("""
            \(Store.invoiceColumns) FROM invoices
            WHERE customer_id = $1 AND status IN ('open', 'partially_paid')
            ORDER BY due_date, issue_date, invoice_id
            """, [.text(customerID)])
        let invoices = invoiceRows.all.map(Store.invoice(from:))
        let creditRows = try db.query("""
            SELECT currency, sum(remaining_minor)::bigint AS credit FROM credit_lots
            WHERE customer_id = $1 AND remaining_minor > 0 GROUP BY currency
            """, [.text(customerID)])
        var credit: [Currency: Money] = [:]
        for row in creditRows.all {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            credit[currency] = Money(minorUnits: row.requiredInt64("credit"), currency: currency)
        }
        let pendingByCurrency = try pendingPayments(customerID: customerID)
        let today = try customerLocalDate(customerID: customerID)
        let dunning = try dunningStatus(invoiceIDs: invoices.map(\.id))
        var currencies = Set(invoices.map(\.currency)).union(credit.keys)
        currencies.formUnion(pendingByCurrency.totals.keys)
        let positions = currencies.sorted().map { currency -> AccountSummary.CurrencyPosition in
            let open = invoices.filter { $0.currency == currency }
            let balance = open.reduce(Money.zero(currency)) { $0 + $1.balance }
            let overdue = open.filter { $0.dueDate < today }.reduce(Money.zero(currency)) { $0 + $1.balance }
            return .init(currency: currency, balance: balance, unappliedCredit: credit[currency] ?? .zero(currency),
                         pending: pendingByCurrency.totals[currency] ?? .zero(currency), overdue: overdue)
        }
        return AccountSummary(customerID: customerID, customerName: customer.requiredString("name"), today: today,
                              dunningPolicy: customer.string("dunning_policy"), positions: positions,
                              openInvoices: invoices.map { invoice in
            let status = dunning[invoice.id]
            return .init(invoice: invoice, dunningLevel: status?.level ?? 0, pendingPayment: pendingByCurrency.invoices.contains(invoice.id),
                         disputed: status?.disputed ?? false, promisedDate: status?.promisedDate)
        })
    }

    /// The database's current date in UTC (the one clock all instances share).
    public func currentDate() throws(PostgresError) -> BusinessDate {
        let text = try db.query("SELECT (now() AT TIME ZONE 'UTC')::date::text AS today").first?.requiredString("today") ?? ""
        guard let date = BusinessDate(text) else { preconditionFailure("database date \(text) unreadable") }
        return date
    }

    /// Pending payments per currency and the invoices they name (none until payments exist).
    func pendingPayments(customerID: String) throws(PostgresError) -> (totals: [Currency: Money], invoices: Set<String>) {
        let present = try db.query("SELECT to_regclass('pending_payments') IS NOT NULL AS present").first?.bool("present") ?? false
        guard present else { return ([:], []) }
        var totals: [Currency: Money] = [:]
        var invoices: Set<String> = []
        let rows = try db.query("""
            SELECT currency, amount_minor, invoice_ids::text AS invoice_ids FROM pending_payments
            WHERE customer_id = $1 AND state = 'pending'
            """, [.text(customerID)])
        for row in rows.all {
            guard let currency = Currency(code: row.requiredString("currency")) else { continue }
            totals[currency, default: .zero(currency)] += Money(minorUnits: row.requiredInt64("amount_minor"), currency: currency)
            let list = row.requiredString("invoice_ids").trimmingBraces()
            for id in list.split(separator: ",") where !id.isEmpty { invoices.insert(String(id).trimmingQuotes()) }
        }
        return (totals, invoices)
    }
}

extension String {
    func trimmingBraces() -> String {
        var text = self
        if text.hasPrefix("{") { text.removeFirst() }
        if text.hasSuffix("}") { text.removeLast() }
        return text
    }
    func trimmingQuotes() -> String {
        var text = self
        if text.hasPrefix("\"") { text.removeFirst() }
        if text.hasSuffix("\"") { text.removeLast() }
        return text
    }
}
