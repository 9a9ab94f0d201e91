import ARDomain
import Foundation

/// Bounds on what the decoder accepts, from configuration.
public struct DecodingLimits: Sendable, Hashable {
    /// Larger bodies are `body_too_large` without being parsed. The default leaves room for the
    /// largest statement file `schemas/common.json` allows in `data_base64` (16,000,000 chars).
    public var maximumBodyBytes: Int
    /// Deeper JSON is `too_deep`. Our messages nest at most 5 levels.
    public var maximumDepth: Int

    public init(maximumBodyBytes: Int = 16 * 1024 * 1024, maximumDepth: Int = 32) {
        self.maximumBodyBytes = maximumBodyBytes
        self.maximumDepth = maximumDepth
    }
}

/// Turns an inbound message body into a typed command, or a rejection with a stable code.
///
/// The checks run in this order, each yielding one code (STYLE: a flat, ordered list):
/// 1. size → `body_too_large`
/// 2. strict JSON (`JSONParser`) → `not_json`, or `too_deep` past `DecodingLimits.maximumDepth`
/// 3. card data scan (`CardDataScan`) → `card_data_present`; before the schema, so a card number
///    is never described (or echoed) as an ordinary schema violation
/// 4. `schemas/envelope.json` → `not_cloudevent`
/// 5. an inbound schema exists for `type` → else `unknown_type` (outbound types too)
/// 6. `schemas/<type>.json` → the `x-rejection` code of the failure that ranks first in
///    `RejectionCode.schemaPrecedence` (`amount_not_string` > `unknown_currency` >
///    `wrong_minor_digits`), then any other annotated code, then `schema_violation`; ties go to
///    the first failure in schema order
/// 7. typed decoding → `duplicate_allocation` for an invoice allocated twice in one message;
///    any other failure here means the schema accepted what the types cannot hold, which is a
///    bug the tests look for (reported as `schema_violation`, never a crash)
///
/// The schemas are the embedded copies of `schemas/*.json` (`EmbeddedSchemas`), compiled once
/// when the decoder is made.
public struct InboundDecoder: Sendable {
    public let validator: SchemaValidator
    let inboundTypes: Set<String>

    /// Compiles the embedded schemas. Throws only if `schemas/` is broken, which tests catch.
    public init() throws(SchemaCompileError) {
        try self.init(schemaDocuments: EmbeddedSchemas.documents)
    }

    public init(schemaDocuments: [String: String]) throws(SchemaCompileError) {
        validator = try SchemaValidator(documents: schemaDocuments)
        var types: Set<String> = []
        for (name, text) in schemaDocuments {
            let document: JSONValue
            do {
                document = try JSONParser(maximumDepth: 64).parse(text)
            } catch {
                // The validator parsed the same text a moment ago with the same parser.
                preconditionFailure("schema \(name) parsed by the validator but not here: \(error)")
            }
            if document["x-direction"] == .string("inbound") { types.insert(String(name.dropLast(".json".count))) }
        }
        inboundTypes = types
    }

    /// The inbound types with a schema (`x-direction: inbound`).
    public var knownInboundTypes: Set<String> { inboundTypes }

    public func decode(body: [UInt8], limits: DecodingLimits = DecodingLimits()) -> Result<InboundMessage, Rejection> {
        guard body.count <= limits.maximumBodyBytes else {
            return .failure(Rejection(code: .bodyTooLarge, detail: "The body is \(body.count) bytes; at most \(limits.maximumBodyBytes) are accepted."))
        }
        let document: JSONValue
        do {
            document = try JSONParser(maximumDepth: limits.maximumDepth).parse(body)
        } catch {
            if case .tooDeep = error.reason {
                return .failure(Rejection(code: .tooDeep, detail: "The JSON nests deeper than \(limits.maximumDepth) levels."))
            }
            return .failure(Rejection(code: .notJSON, detail: "The body is not JSON: \(error.description)."))
        }
        if let path = CardDataScan.firstCardData(in: document) {
            return .failure(Rejection(code: .cardDataPresent,
                                      detail: "\(path): card data (card number, security code, track data or expiry) is not accepted; send the gateway's token."))
        }
        // Fast path: a known type whose schema (which includes the envelope) accepts the
        // message. Only a failing message pays for finding out which check it failed first.
        let type = document["type"]?.stringValue ?? ""
        let knownType = inboundTypes.contains(type)
        if !knownType || !validator.isValid(document, against: type + ".json") {
            if !validator.isValid(document, against: "envelope.json") {
                let failures = validator.validate(document, against: "envelope.json")
                let first = failures.first.map { "\($0.fieldPath): \($0.message)" } ?? "not a CloudEvents 1.0 event"
                return .failure(Rejection(code: .notCloudEvent, detail: "Not a CloudEvents 1.0 structured-mode event: \(first)."))
            }
            guard knownType else {
                return .failure(Rejection(code: .unknownType, detail: "type \"\(type.prefix(128))\" is not an inbound message type."))
            }
            let failures = validator.validate(document, against: type + ".json")
            guard let chosen = InboundDecoder.primaryFailure(failures) else {
                preconditionFailure("validator disagrees with itself on \(type).json")
            }
            return .failure(Rejection(code: chosen.rejection, detail: InboundDecoder.explain(chosen, in: document)))
        }
        do {
            let envelope = try TypedReader.envelope(document)
            let command = try TypedReader.command(type: type, document: document)
            return .success(InboundMessage(envelope: envelope, command: command))
        } catch {
            return .failure(error)
        }
    }

    /// A sentence an operator can act on. For the money codes it names the amount, its
    /// currency and the digits allowed, instead of the schema's generic wording.
    static func explain(_ failure: SchemaFailure, in document: JSONValue) -> String {
        let tokens = failure.instancePath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            .map { $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~") }
        func value(at path: [String]) -> JSONValue? {
            var current: JSONValue? = document
            for token in path {
                switch current {
                case .object(let object)?: current = object[token]
                case .array(let elements)?: current = Int(token).flatMap { $0 >= 0 && $0 < elements.count ? elements[$0] : nil }
                default: return nil
                }
            }
            return current
        }
        let here = value(at: Array(tokens))
        switch failure.rejection {
        case .unknownCurrency:
            if let code = here?.stringValue {
                return "\(failure.fieldPath): '\(Rejection.masked(String(code.prefix(16))))' is not an ISO 4217 currency code."
            }
        case .wrongMinorDigits:
            // The failing node is the amount or the object holding amount and currency.
            let object = here?.objectValue != nil ? here : value(at: Array(tokens.dropLast()))
            let amount = here?.stringValue ?? object?["amount"]?.stringValue
            let currencyText = object?["currency"]?.stringValue ?? document["data"]?["currency"]?.stringValue
            if let amount, let currencyText, let currency = Currency(code: currencyText) {
                let fraction = amount.split(separator: ".", maxSplits: 1).dropFirst().first?.count ?? 0
                return "\(failure.fieldPath): \(Rejection.masked(String(amount.prefix(24)))) has \(fraction) fraction digit\(fraction == 1 ? "" : "s"); \(currency.code) allows at most \(currency.minorUnitDigits)."
            }
        default:
            break
        }
        return "\(failure.fieldPath): \(failure.message)."
    }

    /// The failure whose code ranks first (`RejectionCode.schemaPrecedence`), the first of
    /// equals in schema order.
    public static func primaryFailure(_ failures: [SchemaFailure]) -> SchemaFailure? {
        var best: SchemaFailure?
        var bestRank = Int.max
        for failure in failures {
            let rank = RejectionCode.schemaRank(failure.rejection)
            if rank < bestRank {
                best = failure
                bestRank = rank
            }
        }
        return best
    }
}

/// Typed decoding of a document the schema has accepted. Every `guard` here restates what the
/// schema guarantees; tripping one is a schema/decoder disagreement (a bug).
enum TypedReader {
    static func bug(_ path: String, _ what: String) -> Rejection {
        Rejection(code: .schemaViolation, detail: "\(path): \(what) (the schema accepted it; decoder and schema disagree).")
    }

    struct Fields {
        let object: JSONObject
        let path: String

        init(_ value: JSONValue?, path: String) throws(Rejection) {
            guard case .object(let object)? = value else { throw bug(path, "is not an object") }
            self.object = object
            self.path = path
        }

        func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

        func optionalString(_ key: String) throws(Rejection) -> String? {
            switch object[key] {
            case nil: return nil
            case .string(let text)?: return text
            default: throw bug(at(key), "is not a string")
            }
        }

        func string(_ key: String) throws(Rejection) -> String {
            guard let text = try optionalString(key) else { throw bug(at(key), "is missing") }
            return text
        }

        func bool(_ key: String) throws(Rejection) -> Bool {
            guard case .bool(let flag)? = object[key] else { throw bug(at(key), "is not a boolean") }
            return flag
        }

        func optionalInteger(_ key: String) throws(Rejection) -> Int? {
            switch object[key] {
            case nil: return nil
            case .number(let lexeme)?:
                if let integer = Int(lexeme) { return integer }
                // "2.0" and "2e0" are integers to JSON Schema; bounded by minimum/maximum.
                guard JSONNumber.isIntegral(lexeme) else { throw bug(at(key), "is not an integer") }
                let value = JSONNumber.decompose(lexeme)
                guard value.exponent <= 18 else { throw bug(at(key), "is out of range") }
                var integer = 0
                for position in 0..<value.exponent {
                    integer = integer * 10 + Int(position < value.digits.count ? value.digits[position] : 0)
                }
                return value.negative ? -integer : integer
            default: throw bug(at(key), "is not an integer")
            }
        }

        func optionalCurrency(_ key: String) throws(Rejection) -> Currency? {
            guard let code = try optionalString(key) else { return nil }
            guard let currency = Currency(code: code) else { throw bug(at(key), "is not a known currency") }
            return currency
        }

        func currency(_ key: String) throws(Rejection) -> Currency {
            guard let currency = try optionalCurrency(key) else { throw bug(at(key), "is missing") }
            return currency
        }

        func money(_ key: String, currency: Currency) throws(Rejection) -> Money {
            let text = try string(key)
            do {
                return try Money.parse(text, currency: currency)
            } catch {
                throw bug(at(key), "is not an amount of \(currency.code): \(error)")
            }
        }

        func optionalDate(_ key: String) throws(Rejection) -> BusinessDate? {
            guard let text = try optionalString(key) else { return nil }
            guard let date = BusinessDate(text) else { throw bug(at(key), "is not a date") }
            return date
        }

        func date(_ key: String) throws(Rejection) -> BusinessDate {
            guard let date = try optionalDate(key) else { throw bug(at(key), "is missing") }
            return date
        }

        func optionalInstant(_ key: String) throws(Rejection) -> Instant? {
            guard let text = try optionalString(key) else { return nil }
            guard let instant = Instant(rfc3339: text) else { throw bug(at(key), "is not an RFC 3339 instant") }
            return instant
        }

        func instant(_ key: String) throws(Rejection) -> Instant {
            guard let instant = try optionalInstant(key) else { throw bug(at(key), "is missing") }
            return instant
        }

        func enumeration<Value: RawRepresentable<String>>(_ key: String, as type: Value.Type) throws(Rejection) -> Value {
            guard let value = Value(rawValue: try string(key)) else { throw bug(at(key), "is not an allowed value") }
            return value
        }

        /// An open label (`common.json#/$defs/label`): kept as sent, never refused for its value.
        func label<Label: OpenLabel>(_ key: String, as type: Label.Type) throws(Rejection) -> Label {
            Label(rawValue: try string(key))
        }

        func strings(_ key: String) throws(Rejection) -> [String] {
            guard let value = object[key] else { return [] }
            guard case .array(let elements) = value else { throw bug(at(key), "is not an array") }
            var result: [String] = []
            result.reserveCapacity(elements.count)
            for element in elements {
                guard case .string(let text) = element else { throw bug(at(key), "has a non-string item") }
                result.append(text)
            }
            return result
        }

        /// Allocations in `currency`, rejecting an invoice named twice (`duplicate_allocation`):
        /// JSON Schema cannot say "unique by one field", so this one rule lives here.
        func allocations(_ key: String, currency: Currency) throws(Rejection) -> [Allocation] {
            guard let value = object[key] else { return [] }
            guard case .array(let elements) = value else { throw bug(at(key), "is not an array") }
            var result: [Allocation] = []
            var seen: Set<String> = []
            for (position, element) in elements.enumerated() {
                let item = try Fields(element, path: at(key) + "[\(position)]")
                let invoiceID = try item.string("invoice_id")
                guard seen.insert(invoiceID).inserted else {
                    throw Rejection(code: .duplicateAllocation,
                                    detail: "\(item.at("invoice_id")): invoice \"\(invoiceID.prefix(64))\" is allocated more than once in this message.")
                }
                result.append(Allocation(invoiceID: invoiceID, amount: try item.money("amount", currency: currency)))
            }
            return result
        }
    }

    static func envelope(_ document: JSONValue) throws(Rejection) -> CloudEventEnvelope {
        let fields = try Fields(document, path: "")
        var extensions: [String: CloudEventExtensionValue] = [:]
        for member in fields.object where !standardAttributes.contains(member.key) {
            switch member.value {
            case .string(let text): extensions[member.key] = .string(text)
            case .bool(let flag): extensions[member.key] = .bool(flag)
            case .number(let lexeme):
                guard let integer = try fields.optionalInteger(member.key), let narrow = Int32(exactly: integer) else {
                    throw bug(member.key, "is not a 32-bit integer (\(lexeme.prefix(24)))")
                }
                extensions[member.key] = .integer(narrow)
            case .null, .array, .object:
                throw bug(member.key, "is not an allowed extension value")
            }
        }
        return CloudEventEnvelope(specversion: try fields.string("specversion"), id: try fields.string("id"),
                                  source: try fields.string("source"), type: try fields.string("type"),
                                  time: try fields.instant("time"), subject: try fields.optionalString("subject"),
                                  datacontenttype: try fields.optionalString("datacontenttype"),
                                  dataschema: try fields.optionalString("dataschema"), extensions: extensions)
    }

    static let standardAttributes: Set<String> = [
        "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema", "data", "data_base64",
    ]

    // swiftlint:disable:next function_body_length cyclomatic_complexity
    static func command(type: String, document: JSONValue) throws(Rejection) -> InboundCommand {
        if type == "bank.statement.received" {
            let envelope = try Fields(document, path: "")
            let format = try envelope.enumeration("format", as: BankStatementFormat.self)
            guard let file = Data(base64Encoded: try envelope.string("data_base64")) else {
                throw bug("data_base64", "is not base64")
            }
            return .bankStatementReceived(BankStatementReceived(format: format, file: [UInt8](file)))
        }
        let data = try Fields(document["data"], path: "data")
        switch type {
        case "customer.upserted":
            return .customerUpserted(CustomerUpserted(
                customerID: try data.string("customer_id"), name: try data.string("name"), email: try data.optionalString("email"),
                locale: try data.optionalString("locale"), timeZone: try data.optionalString("time_zone"),
                dunningPolicy: try data.optionalString("dunning_policy"), bankAccounts: try data.strings("bank_accounts")))
        case "invoice.issued":
            let currency = try data.currency("currency")
            return .invoiceIssued(InvoiceIssued(
                invoiceID: try data.string("invoice_id"), customerID: try data.string("customer_id"), number: try data.string("number"),
                amount: try data.money("amount", currency: currency), issueDate: try data.date("issue_date"),
                dueDate: try data.date("due_date"), paymentReference: try data.optionalString("payment_reference"),
                poNumber: try data.optionalString("po_number"), documentURL: try data.optionalString("document_url")))
        case "invoice.adjusted":
            let currency = try data.optionalCurrency("currency")
            if let currency { _ = try data.money("amount", currency: currency) }
            return .invoiceAdjusted(InvoiceAdjusted(
                invoiceID: try data.string("invoice_id"), newTotal: DecimalAmount(try data.string("amount")),
                reason: try data.string("reason"), currency: currency))
        case "invoice.voided":
            return .invoiceVoided(InvoiceVoided(invoiceID: try data.string("invoice_id"), reason: try data.string("reason")))
        case "invoice.written_off":
            return .invoiceWrittenOff(InvoiceWrittenOff(invoiceID: try data.string("invoice_id"), reason: try data.string("reason")))
        case "credit_note.issued":
            let currency = try data.currency("currency")
            return .creditNoteIssued(CreditNoteIssued(
                creditNoteID: try data.string("credit_note_id"), customerID: try data.string("customer_id"),
                amount: try data.money("amount", currency: currency), invoiceID: try data.optionalString("invoice_id")))
        case "payment.succeeded":
            let currency = try data.currency("currency")
            var card: CardSummary?
            if data.object["card"] != nil {
                let fields = try Fields(data.object["card"], path: data.at("card"))
                card = CardSummary(token: try fields.string("token"), brand: try fields.label("brand", as: CardBrand.self),
                                   last4: try fields.string("last4"))
            }
            return .paymentSucceeded(PaymentSucceeded(
                paymentID: try data.string("payment_id"), customerID: try data.string("customer_id"),
                amount: try data.money("amount", currency: currency), method: try data.label("method", as: PaymentMethod.self),
                receivedAt: try data.instant("received_at"), allocations: try data.allocations("allocations", currency: currency),
                gatewayReference: try data.optionalString("gateway_reference"), payoutID: try data.optionalString("payout_id"), card: card))
        case "payment.pending":
            let currency = try data.currency("currency")
            return .paymentPending(PaymentPending(
                paymentID: try data.string("payment_id"), customerID: try data.string("customer_id"),
                amount: try data.money("amount", currency: currency), method: try data.label("method", as: PaymentMethod.self),
                initiatedAt: try data.instant("initiated_at"), invoiceIDs: try data.strings("invoice_ids"),
                expectedSettlementDate: try data.optionalDate("expected_settlement_date")))
        case "payment.failed":
            let currency = try data.currency("currency")
            return .paymentFailed(PaymentFailed(
                paymentID: try data.string("payment_id"), customerID: try data.string("customer_id"),
                amount: try data.money("amount", currency: currency), method: try data.label("method", as: PaymentMethod.self),
                failureCode: try data.string("failure_code"), retryable: try data.bool("retryable"),
                invoiceIDs: try data.strings("invoice_ids"), attempt: try data.optionalInteger("attempt")))
        case "payment.refunded":
            let currency = try data.optionalCurrency("currency")
            if let currency { _ = try data.money("amount", currency: currency) }
            return .paymentRefunded(PaymentRefunded(
                paymentID: try data.string("payment_id"), amount: DecimalAmount(try data.string("amount")),
                refundID: try data.string("refund_id"), currency: currency, reason: try data.optionalString("reason")))
        case "payment.reversed":
            let currency = try data.optionalCurrency("currency")
            if let currency { _ = try data.money("amount", currency: currency) }
            return .paymentReversed(PaymentReversed(
                paymentID: try data.string("payment_id"), amount: DecimalAmount(try data.string("amount")),
                reason: try data.label("reason", as: ReversalReason.self), currency: currency,
                reversalID: try data.optionalString("reversal_id")))
        case "bank.credit.received":
            let currency = try data.currency("currency")
            return .bankCreditReceived(BankCreditReceived(
                entryID: try data.string("entry_id"), account: try data.string("account"),
                amount: try data.money("amount", currency: currency), bookingDate: try data.date("booking_date"),
                valueDate: try data.optionalDate("value_date"), debtorName: try data.optionalString("debtor_name"),
                debtorAccount: try data.optionalString("debtor_account"), endToEndID: try data.optionalString("end_to_end_id"),
                remittanceInfo: try data.optionalString("remittance_info"),
                structuredReference: try data.optionalString("structured_reference"),
                bankReference: try data.optionalString("bank_reference")))
        case "dispute.opened":
            return .disputeOpened(DisputeOpened(disputeID: try data.string("dispute_id"), invoiceID: try data.string("invoice_id"),
                                                reason: try data.string("reason")))
        case "dispute.resolved":
            return .disputeResolved(DisputeResolved(disputeID: try data.string("dispute_id"), invoiceID: try data.string("invoice_id"),
                                                    outcome: try data.label("outcome", as: DisputeOutcome.self)))
        case "promise_to_pay.recorded":
            var amount: Money?
            if let currency = try data.optionalCurrency("currency") { amount = try data.money("amount", currency: currency) }
            return .promiseToPayRecorded(PromiseToPayRecorded(invoiceIDs: try data.strings("invoice_ids"),
                                                              promisedDate: try data.date("promised_date"), amount: amount))
        case "reconciliation.resolved":
            let resolution: ReconciliationResolved.Resolution
            if let currency = try data.optionalCurrency("currency") {
                resolution = .allocate(try data.allocations("allocations", currency: currency))
            } else if let customerID = try data.optionalString("customer_id") {
                resolution = .creditCustomer(customerID: customerID)
            } else if data.object["ignore"] == .bool(true) {
                resolution = .ignore
            } else {
                throw bug("data", "has no resolution")
            }
            return .reconciliationResolved(ReconciliationResolved(entryID: try data.string("entry_id"), resolution: resolution,
                                                                  note: try data.optionalString("note")))
        case "account.summary.requested":
            return .accountSummaryRequested(AccountSummaryRequested(customerID: try data.string("customer_id")))
        case "statement.requested":
            return .statementRequested(StatementRequested(customerID: try data.string("customer_id"), from: try data.date("from"),
                                                          to: try data.date("to"), asKnownAt: try data.optionalInstant("as_known_at"),
                                                          format: try data.optionalString("format")))
        case "payment_history.requested":
            return .paymentHistoryRequested(PaymentHistoryRequested(
                customerID: try data.string("customer_id"), from: try data.optionalDate("from"), to: try data.optionalDate("to"),
                limit: try data.optionalInteger("limit"), cursor: try data.optionalString("cursor"),
                invoiceID: try data.optionalString("invoice_id")))
        default:
            throw bug("type", "has a schema but no typed decoding (\(type))")
        }
    }
}
