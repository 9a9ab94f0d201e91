import ARDomain

/// The CloudEvents attributes of a message (SPEC section 2, "Envelope").
public struct CloudEventEnvelope: Sendable, Hashable {
    public let specversion: String
    public let id: String
    public let source: String
    public let type: String
    public let time: Instant
    /// By convention the customer id.
    public let subject: String?
    public let datacontenttype: String?
    public let dataschema: String?
    /// Extension attributes by name (`format` of `bank.statement.received`, tracing ids, ...).
    public let extensions: [String: CloudEventExtensionValue]

    public init(specversion: String = "1.0", id: String, source: String, type: String, time: Instant, subject: String? = nil,
                datacontenttype: String? = nil, dataschema: String? = nil, extensions: [String: CloudEventExtensionValue] = [:]) {
        self.specversion = specversion
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self.subject = subject
        self.datacontenttype = datacontenttype
        self.dataschema = dataschema
        self.extensions = extensions
    }
}

/// The value of a CloudEvents extension attribute; `envelope.json` allows exactly these.
public enum CloudEventExtensionValue: Sendable, Hashable {
    case string(String)
    case bool(Bool)
    case integer(Int32)
}

/// A decoded inbound message: the envelope (for de-duplication by `source` + `id`) and the command.
public struct InboundMessage: Sendable, Hashable {
    public let envelope: CloudEventEnvelope
    public let command: InboundCommand
}

/// One case per inbound type of SPEC section 2, each with its typed data.
public enum InboundCommand: Sendable, Hashable {
    case customerUpserted(CustomerUpserted)
    case invoiceIssued(InvoiceIssued)
    case invoiceAdjusted(InvoiceAdjusted)
    case invoiceVoided(InvoiceVoided)
    case invoiceWrittenOff(InvoiceWrittenOff)
    case creditNoteIssued(CreditNoteIssued)
    case paymentSucceeded(PaymentSucceeded)
    case paymentPending(PaymentPending)
    case paymentFailed(PaymentFailed)
    case paymentRefunded(PaymentRefunded)
    case paymentReversed(PaymentReversed)
    case bankCreditReceived(BankCreditReceived)
    case bankStatementReceived(BankStatementReceived)
    case disputeOpened(DisputeOpened)
    case disputeResolved(DisputeResolved)
    case promiseToPayRecorded(PromiseToPayRecorded)
    case reconciliationResolved(ReconciliationResolved)
    case accountSummaryRequested(AccountSummaryRequested)
    case statementRequested(StatementRequested)
    case paymentHistoryRequested(PaymentHistoryRequested)

    /// The CloudEvents `type` of every inbound command, as in `schemas/<type>.json`.
    public static let inboundTypes: [String] = [
        "customer.upserted", "invoice.issued", "invoice.adjusted", "invoice.voided", "invoice.written_off",
        "credit_note.issued", "payment.succeeded", "payment.pending", "payment.failed", "payment.refunded",
        "payment.reversed", "bank.credit.received", "bank.statement.received", "dispute.opened", "dispute.resolved",
        "promise_to_pay.recorded", "reconciliation.resolved", "account.summary.requested", "statement.requested",
        "payment_history.requested",
    ]
}

/// A decimal amount whose currency is not in the message (`invoice.adjusted`,
/// `payment.refunded`, `payment.reversed` may omit `currency`: it is the invoice's or payment's).
/// The schema checked its shape (no sign, ≤ 12 integer and ≤ 4 fraction digits); the number of
/// fraction digits is checked when the currency is known, by `money(in:)`.
public struct DecimalAmount: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) { self.text = text }
    public var description: String { text }

    /// The amount in `currency`; `.tooManyFractionDigits` maps to `wrong_minor_digits`.
    public func money(in currency: Currency) throws(MoneyParseError) -> Money {
        try Money.parse(text, currency: currency)
    }
}

public enum BankStatementFormat: String, Sendable, Hashable, CaseIterable {
    case camt053 = "camt.053", camt054 = "camt.054", bai2, mt940
}

// `PaymentMethod`, `ReversalReason`, `DisputeOutcome` and `CardBrand` are open labels: Labels.swift.
// `BankStatementFormat` stays closed: it decides how the file's money is read (SPEC section 2).

/// What may be said about a card: never its number.
public struct CardSummary: Sendable, Hashable {
    public let token: String
    public let brand: CardBrand
    public let last4: String
}

/// An explicit allocation of a payment (or bank credit) to one invoice.
public struct Allocation: Sendable, Hashable {
    public let invoiceID: String
    public let amount: Money
}

public struct CustomerUpserted: Sendable, Hashable {
    public let customerID: String
    public let name: String
    public let email: String?
    public let locale: String?
    public let timeZone: String?
    public let dunningPolicy: String?
    /// Empty when the message has none.
    public let bankAccounts: [String]
}

public struct InvoiceIssued: Sendable, Hashable {
    public let invoiceID: String
    public let customerID: String
    public let number: String
    public let amount: Money
    public let issueDate: BusinessDate
    public let dueDate: BusinessDate
    public let paymentReference: String?
    public let poNumber: String?
    public let documentURL: String?
}

public struct InvoiceAdjusted: Sendable, Hashable {
    public let invoiceID: String
    /// The invoice's new total; may be zero.
    public let newTotal: DecimalAmount
    public let reason: String
    /// When present, must equal the invoice's currency (`currency_mismatch`).
    public let currency: Currency?
}

public struct InvoiceVoided: Sendable, Hashable {
    public let invoiceID: String
    public let reason: String
}

public struct InvoiceWrittenOff: Sendable, Hashable {
    public let invoiceID: String
    public let reason: String
}

public struct CreditNoteIssued: Sendable, Hashable {
    public let creditNoteID: String
    public let customerID: String
    public let amount: Money
    public let invoiceID: String?
}

public struct PaymentSucceeded: Sendable, Hashable {
    public let paymentID: String
    public let customerID: String
    public let amount: Money
    public let method: PaymentMethod
    public let receivedAt: Instant
    /// Empty when the message has none; invoice ids are unique (`duplicate_allocation`).
    public let allocations: [Allocation]
    public let gatewayReference: String?
    public let payoutID: String?
    public let card: CardSummary?
}

public struct PaymentPending: Sendable, Hashable {
    public let paymentID: String
    public let customerID: String
    public let amount: Money
    public let method: PaymentMethod
    public let initiatedAt: Instant
    public let invoiceIDs: [String]
    public let expectedSettlementDate: BusinessDate?
}

public struct PaymentFailed: Sendable, Hashable {
    public let paymentID: String
    public let customerID: String
    public let amount: Money
    public let method: PaymentMethod
    public let failureCode: String
    public let retryable: Bool
    public let invoiceIDs: [String]
    public let attempt: Int?
}

public struct PaymentRefunded: Sendable, Hashable {
    public let paymentID: String
    public let amount: DecimalAmount
    public let refundID: String
    public let currency: Currency?
    public let reason: String?
}

public struct PaymentReversed: Sendable, Hashable {
    public let paymentID: String
    public let amount: DecimalAmount
    public let reason: ReversalReason
    public let currency: Currency?
    public let reversalID: String?
}

public struct BankCreditReceived: Sendable, Hashable {
    public let entryID: String
    public let account: String
    public let amount: Money
    public let bookingDate: BusinessDate
    public let valueDate: BusinessDate?
    public let debtorName: String?
    public let debtorAccount: String?
    public let endToEndID: String?
    public let remittanceInfo: String?
    public let structuredReference: String?
    /// The bank's own reference for the booking (camt `AcctSvcrRef`, MT940/BAI2 bank reference);
    /// with `account`, what recognises the same booking in a later statement. Nil: `entryID` is it.
    public let bankReference: String?
}

public struct BankStatementReceived: Sendable, Hashable {
    public let format: BankStatementFormat
    /// The statement file, decoded from `data_base64`.
    public let file: [UInt8]
}

public struct DisputeOpened: Sendable, Hashable {
    public let disputeID: String
    public let invoiceID: String
    public let reason: String
}

public struct DisputeResolved: Sendable, Hashable {
    public let disputeID: String
    public let invoiceID: String
    public let outcome: DisputeOutcome
}

public struct PromiseToPayRecorded: Sendable, Hashable {
    public let invoiceIDs: [String]
    public let promisedDate: BusinessDate
    public let amount: Money?
}

public struct ReconciliationResolved: Sendable, Hashable {
    public enum Resolution: Sendable, Hashable {
        /// Apply the bank entry to these invoices (unique invoice ids).
        case allocate([Allocation])
        /// Put the whole entry on this customer's unapplied credit.
        case creditCustomer(customerID: String)
        /// Not customer money (internal transfer, ...): mark the entry ignored.
        case ignore
    }

    public let entryID: String
    public let resolution: Resolution
    public let note: String?
}

public struct AccountSummaryRequested: Sendable, Hashable {
    public let customerID: String
}

public struct StatementRequested: Sendable, Hashable {
    public let customerID: String
    public let from: BusinessDate
    public let to: BusinessDate
    public let asKnownAt: Instant?
    /// json (nil), csv or html: the reply then carries the rendered document too.
    public let format: String?

    public init(customerID: String, from: BusinessDate, to: BusinessDate, asKnownAt: Instant?, format: String?) {
        self.customerID = customerID
        self.from = from
        self.to = to
        self.asKnownAt = asKnownAt
        self.format = format
    }
}

public struct PaymentHistoryRequested: Sendable, Hashable {
    public let customerID: String
    public let from: BusinessDate?
    public let to: BusinessDate?
    public let limit: Int?
    public let cursor: String?
    /// Only payments applied to this invoice (which must be the customer's).
    public let invoiceID: String?
}
