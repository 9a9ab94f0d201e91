/// Descriptive labels of the message contract: an open vocabulary (SPEC section 2, "Values").
///
/// A label only describes money (how it was paid, why it came back, how a dispute ended); it never
/// decides where money goes, so a message is never refused for a label alone. The schema bounds it
/// (`common.json#/$defs/label`: 1 to 64 characters, no control or invisible formatting characters).
/// Each label type keeps the text exactly as sent in `rawValue`, has static members for the values we
/// know (source-compatible with the closed enums these types replace), and normalises known values
/// (case, `-`, ` ` and `.` as `_`, synonyms) into a small `family`. An unknown label has no family; the
/// daemon counts it in a metric by field name only, never by value (a label is attacker-controlled
/// text: as a metric dimension it would be a cardinality attack).
public protocol OpenLabel: RawRepresentable<String>, Hashable, Sendable, CustomStringConvertible {
    associatedtype Family: RawRepresentable<String> & Hashable & Sendable
    init(rawValue: String)
    /// The normalised family of a known label; nil for a label we do not know.
    var family: Family? { get }
}

extension OpenLabel {
    public var description: String { rawValue }
    public var isKnown: Bool { family != nil }
    /// The lookup key of a label: ASCII lower-cased, surrounding blanks removed, `-`, ` ` and `.` as `_`.
    /// Only for looking up; the label itself stays as sent.
    public var normalisedKey: String { LabelKey.normalised(rawValue) }
}

public enum LabelKey {
    public static func normalised(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "A"..."Z": scalars.append(Unicode.Scalar(scalar.value + 0x20)!)
            case " ", "-", ".": scalars.append("_")
            default: scalars.append(scalar)
            }
        }
        var key = String(scalars)
        while key.hasPrefix("_") { key.removeFirst() }
        while key.hasSuffix("_") { key.removeLast() }
        return key
    }

    /// Builds a key → family table from "family: key key key" groups.
    static func table<Family: RawRepresentable<String>>(_ groups: [(Family, String)]) -> [String: Family] {
        var table: [String: Family] = [:]
        for (family, keys) in groups {
            for key in keys.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                precondition(table[String(key)] == nil, "label key \(key) listed twice")
                table[String(key)] = family
            }
        }
        return table
    }
}

// MARK: payment method

/// What a payment method is, whatever a gateway calls it.
public enum PaymentMethodFamily: String, Sendable, Hashable, CaseIterable {
    case card
    case debitCard = "debit_card"
    /// The payee pulls the money from a bank account: ACH debit, SEPA/Bacs/BECS direct debit.
    case bankDebit = "bank_debit"
    /// The payer pushes the money: wire, credit transfer, bank redirects (iDEAL, giropay, Sofort, ...).
    case bankTransfer = "bank_transfer"
    /// A stored-value or tokenised wallet: PayPal, Apple Pay, Google Pay, Link, Venmo, ...
    case wallet
    /// Cash, and vouchers paid in cash (Boleto, OXXO, Konbini, Multibanco).
    case cash
    case check
    case buyNowPayLater = "buy_now_pay_later"
    case other
}

/// `method` of `payment.succeeded`, `payment.pending`, `payment.failed` (and `payment.confirmed` out).
public struct PaymentMethod: OpenLabel {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public var family: PaymentMethodFamily? { PaymentMethod.families[normalisedKey] }

    /// The key of the journal's clearing account for this method (`cash:<key>`): the normalised label
    /// when it is known, else `other`. A bounded set, so a publisher cannot create ledger accounts at
    /// will; the ten labels of the former closed list keep their accounts (`cash:card`, `cash:ach`, ...).
    public var clearingAccountKey: String { family == nil ? "other" : normalisedKey }

    // The former closed list (source compatibility: `PaymentMethod.card` etc.).
    public static let card = PaymentMethod(rawValue: "card")
    public static let debitCard = PaymentMethod(rawValue: "debit_card")
    public static let ach = PaymentMethod(rawValue: "ach")
    public static let sepaDebit = PaymentMethod(rawValue: "sepa_debit")
    public static let wallet = PaymentMethod(rawValue: "wallet")
    public static let bankTransfer = PaymentMethod(rawValue: "bank_transfer")
    public static let wire = PaymentMethod(rawValue: "wire")
    public static let check = PaymentMethod(rawValue: "check")
    public static let cash = PaymentMethod(rawValue: "cash")
    public static let other = PaymentMethod(rawValue: "other")
    // Labels gateways send (Stripe, Adyen, PayPal/Braintree, Square, GoCardless, Mollie, Checkout.com, ...).
    public static let achDebit = PaymentMethod(rawValue: "ach_debit")
    public static let usBankAccount = PaymentMethod(rawValue: "us_bank_account")
    public static let bacsDebit = PaymentMethod(rawValue: "bacs_debit")
    public static let becsDebit = PaymentMethod(rawValue: "au_becs_debit")
    public static let paypal = PaymentMethod(rawValue: "paypal")
    public static let link = PaymentMethod(rawValue: "link")
    public static let applePay = PaymentMethod(rawValue: "apple_pay")
    public static let googlePay = PaymentMethod(rawValue: "google_pay")
    public static let venmo = PaymentMethod(rawValue: "venmo")
    public static let klarna = PaymentMethod(rawValue: "klarna")
    public static let afterpayClearpay = PaymentMethod(rawValue: "afterpay_clearpay")
    public static let affirm = PaymentMethod(rawValue: "affirm")
    public static let giropay = PaymentMethod(rawValue: "giropay")
    public static let ideal = PaymentMethod(rawValue: "ideal")
    public static let bancontact = PaymentMethod(rawValue: "bancontact")
    public static let sofort = PaymentMethod(rawValue: "sofort")
    public static let eps = PaymentMethod(rawValue: "eps")
    public static let p24 = PaymentMethod(rawValue: "p24")
    public static let pix = PaymentMethod(rawValue: "pix")
    public static let boleto = PaymentMethod(rawValue: "boleto")

    static let families: [String: PaymentMethodFamily] = LabelKey.table([
        (.card, """
            card card_present credit_card creditcard credit scheme kr_card cartes_bancaires cb jcb amex visa mastercard mc \
            discover diners unionpay
            """),
        (.debitCard, "debit_card debitcard debit interac_present interac_debit bancontact bcmc maestro eftpos girocard dankort carte_bancaire mada knet"),
        (.bankDebit, """
            ach ach_debit us_bank_account bank_account echeck e_check sepa_debit sepa_direct_debit sepadirectdebit directdebit \
            direct_debit sepa_core sepa_cor1 bacs_debit bacs becs_debit au_becs_debit becs becs_nz nz_bank_account acss_debit pad \
            lastschrift elv autogiro betalingsservice mandate
            """),
        (.bankTransfer, """
            bank_transfer banktransfer wire wire_transfer swift ach_credit_transfer ach_credit sepa_credit_transfer sepa_transfer \
            sepa_instant credit_transfer customer_balance giropay ideal sofort sofortbanking directebanking klarna_paynow eps p24 \
            przelewy24 blik trustly pix fpx paynow promptpay upi open_banking pay_by_bank paybybank instant_bank_transfer \
            faster_payments interac interac_e_transfer zelle mybank dotpay bank_redirect online_banking onlinebanking \
            onlinebanking_pl ebanking_fi kbc cbc belfius
            """),
        (.wallet, """
            wallet paypal paypal_account link apple_pay applepay apple_pay_card google_pay googlepay paywithgoogle google_pay_card \
            android_pay android_pay_card samsung_pay samsung_pay_card venmo venmo_account amazon_pay cashapp cash_app alipay \
            alipay_hk wechat_pay wechatpay wechatpayqr mobilepay vipps swish twint grabpay grabpay_sg kakao_pay naver_pay payco \
            paypay revolut_pay satispay payconiq mb_way mbway bcmc_mobile gcash ovo dana touchngo click_to_pay masterpass \
            masterpass_card visa_checkout visa_checkout_card square_account skrill neteller paysera paylib lydia
            """),
        (.cash, "cash boleto boletobancario oxxo konbini multibanco paysafecard pay_at_store cash_on_delivery cod"),
        (.check, "check cheque"),
        (.buyNowPayLater, """
            klarna klarna_account afterpay_clearpay afterpay afterpaytouch clearpay affirm zip zip_pay sezzle paypal_pay_later \
            pay_upon_invoice paylater pay_later buy_now_pay_later riverty atome alma scalapay billie paybright humm laybuy tabby \
            tamara in3
            """),
        (.other, "other unknown external local_payment giftcard gift_card voucher crypto"),
    ])
}

// MARK: reversal reason

public enum ReversalFamily: String, Sendable, Hashable, CaseIterable {
    /// A card scheme took the money back (dispute, fraud claim).
    case chargeback
    /// A bank returned a debit (ACH return, SEPA/Bacs/BECS return or refusal).
    case bankReturn = "bank_return"
    case other
}

/// `reason` of `payment.reversed`: card-scheme dispute reasons, ACH return codes (R01…R85) and ISO 20022
/// return reasons (AC04, MD06, ...) are all known; anything else is kept as sent.
public struct ReversalReason: OpenLabel {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public var family: ReversalFamily? {
        let key = normalisedKey
        if let known = ReversalReason.families[key] { return known }
        let bytes = Array(key.utf8)
        // ACH return codes R01…R99.
        if bytes.count == 3, bytes[0] == UInt8(ascii: "r"), bytes[1...].allSatisfy(isASCIIDigit) { return .bankReturn }
        // ISO 20022 ExternalReturnReason codes: two letters, two digits (AC04, AM04, MD06, MS03, ...).
        if bytes.count == 4, bytes[0...1].allSatisfy(isASCIILowerLetter), bytes[2...].allSatisfy(isASCIIDigit) { return .bankReturn }
        return nil
    }

    public static let chargeback = ReversalReason(rawValue: "chargeback")
    public static let achReturn = ReversalReason(rawValue: "ach_return")
    public static let sepaReturn = ReversalReason(rawValue: "sepa_return")
    public static let other = ReversalReason(rawValue: "other")
    public static let bacsReturn = ReversalReason(rawValue: "bacs_return")
    public static let fraudulent = ReversalReason(rawValue: "fraudulent")

    static let families: [String: ReversalFamily] = LabelKey.table([
        (.chargeback, """
            chargeback charge_back dispute disputed fraud fraudulent duplicate product_not_received product_unacceptable \
            unrecognized credit_not_processed subscription_canceled subscription_cancelled general customer_initiated \
            incorrect_account_details bank_cannot_process debit_not_authorized notification_of_fraud retrieval inquiry
            """),
        (.bankReturn, """
            ach_return sepa_return bacs_return becs_return direct_debit_return debit_return return returned refused \
            insufficient_funds account_closed no_account invalid_account mandate_cancelled mandate_canceled \
            authorisation_cancelled authorization_revoked payment_stopped refer_to_payer
            """),
        (.other, "other unknown"),
    ])
}

// MARK: dispute outcome

public enum DisputeOutcomeFamily: String, Sendable, Hashable, CaseIterable {
    case customerWon = "customer_won"
    case merchantWon = "merchant_won"
    case withdrawn
    case resolved
}

/// `outcome` of `dispute.resolved`. Dunning resumes whatever the outcome; the family is for reports.
public struct DisputeOutcome: OpenLabel {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public var family: DisputeOutcomeFamily? { DisputeOutcome.families[normalisedKey] }

    public static let customerWon = DisputeOutcome(rawValue: "customer_won")
    public static let merchantWon = DisputeOutcome(rawValue: "merchant_won")
    public static let withdrawn = DisputeOutcome(rawValue: "withdrawn")
    public static let resolved = DisputeOutcome(rawValue: "resolved")

    static let families: [String: DisputeOutcomeFamily] = LabelKey.table([
        (.customerWon, "customer_won customer_favour customer_favor lost merchant_lost accepted refunded charge_refunded credited credit_issued"),
        (.merchantWon, "merchant_won merchant_favour merchant_favor won customer_lost rejected denied upheld"),
        (.withdrawn, "withdrawn cancelled canceled warning_closed closed_by_customer dropped"),
        (.resolved, "resolved closed settled agreed partially_accepted partial compromise"),
    ])
}

// MARK: card brand

/// The card scheme a brand label names.
public enum CardScheme: String, Sendable, Hashable, CaseIterable {
    case visa, mastercard, amex, discover, jcb, diners, unionpay, maestro
    case cartesBancaires = "cartes_bancaires"
    case interac, eftpos, elo, hipercard, rupay, mir, dankort, girocard, troy, verve, uatp, bccard, other
}

/// `card.brand` of `payment.succeeded`.
public struct CardBrand: OpenLabel {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public var family: CardScheme? { CardBrand.schemes[normalisedKey] }

    public static let visa = CardBrand(rawValue: "visa")
    public static let mastercard = CardBrand(rawValue: "mastercard")
    public static let amex = CardBrand(rawValue: "amex")
    public static let discover = CardBrand(rawValue: "discover")
    public static let jcb = CardBrand(rawValue: "jcb")
    public static let diners = CardBrand(rawValue: "diners")
    public static let unionpay = CardBrand(rawValue: "unionpay")
    public static let maestro = CardBrand(rawValue: "maestro")
    public static let other = CardBrand(rawValue: "other")

    static let schemes: [String: CardScheme] = LabelKey.table([
        (.visa, "visa visa_electron electron visa_debit vpay"),
        (.mastercard, "mastercard master_card mc master mastercard_debit"),
        (.amex, "amex american_express americanexpress"),
        (.discover, "discover discover_global"),
        (.jcb, "jcb"),
        (.diners, "diners diners_club dinersclub"),
        (.unionpay, "unionpay union_pay china_unionpay cup"),
        (.maestro, "maestro"),
        (.cartesBancaires, "cartes_bancaires cartesbancaires carte_bancaire cb"),
        (.interac, "interac"),
        (.eftpos, "eftpos eftpos_au eftpos_australia"),
        (.elo, "elo"),
        (.hipercard, "hipercard"),
        (.rupay, "rupay"),
        (.mir, "mir"),
        (.dankort, "dankort"),
        (.girocard, "girocard"),
        (.troy, "troy"),
        (.verve, "verve"),
        (.uatp, "uatp"),
        (.bccard, "bc_card bccard"),
        (.other, "other unknown"),
    ])
}

// MARK: unknown labels in a command

extension InboundCommand {
    /// The label fields of this command whose value we do not know, by field name only (for the
    /// `receivablesd_unknown_labels_total{field=…}` metric).
    public var unknownLabelFields: [String] {
        switch self {
        case .paymentSucceeded(let command):
            return (command.method.isKnown ? [] : ["method"]) + (command.card.map { $0.brand.isKnown ? [] : ["card.brand"] } ?? [])
        case .paymentPending(let command): return command.method.isKnown ? [] : ["method"]
        case .paymentFailed(let command): return command.method.isKnown ? [] : ["method"]
        case .paymentReversed(let command): return command.reason.isKnown ? [] : ["reason"]
        case .disputeResolved(let command): return command.outcome.isKnown ? [] : ["outcome"]
        case .customerUpserted, .invoiceIssued, .invoiceAdjusted, .invoiceVoided, .invoiceWrittenOff, .creditNoteIssued,
             .paymentRefunded, .bankCreditReceived, .bankStatementReceived, .disputeOpened, .promiseToPayRecorded,
             .reconciliationResolved, .accountSummaryRequested, .statementRequested, .paymentHistoryRequested:
            return []
        }
    }
}

private func isASCIIDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
private func isASCIILowerLetter(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
