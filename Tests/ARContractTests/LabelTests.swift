@testable import ARContract
import ARDomain
import Foundation
import Testing

/// SPEC section 2: descriptive labels are an open vocabulary. Known labels get a family, unknown
/// ones are kept exactly as sent; no label ever turns a valid message into a rejection.
@Suite("Open labels")
struct LabelTests {
    /// Labels real gateways send for `method`, with the family we normalise them to.
    static let gatewayMethods: [(label: String, family: PaymentMethodFamily)] = [
        ("card", .card), ("CARD", .card), ("scheme", .card), ("credit_card", .card), ("creditcard", .card),
        ("debit_card", .debitCard), ("interac_present", .debitCard), ("bancontact", .debitCard), ("bcmc", .debitCard),
        ("ach", .bankDebit), ("ach_debit", .bankDebit), ("us_bank_account", .bankDebit), ("BANK_ACCOUNT", .bankDebit),
        ("sepa_debit", .bankDebit), ("sepadirectdebit", .bankDebit), ("directdebit", .bankDebit), ("bacs_debit", .bankDebit),
        ("au_becs_debit", .bankDebit), ("becs_nz", .bankDebit), ("acss_debit", .bankDebit), ("autogiro", .bankDebit),
        ("wire", .bankTransfer), ("bank_transfer", .bankTransfer), ("banktransfer", .bankTransfer), ("giropay", .bankTransfer),
        ("ideal", .bankTransfer), ("sofort", .bankTransfer), ("directEbanking", .bankTransfer), ("eps", .bankTransfer),
        ("p24", .bankTransfer), ("blik", .bankTransfer), ("pix", .bankTransfer), ("customer_balance", .bankTransfer),
        ("pay_by_bank", .bankTransfer), ("trustly", .bankTransfer),
        ("wallet", .wallet), ("paypal", .wallet), ("paypal_account", .wallet), ("link", .wallet), ("apple_pay", .wallet),
        ("Apple Pay", .wallet), ("applepay", .wallet), ("google_pay", .wallet), ("paywithgoogle", .wallet), ("venmo", .wallet),
        ("venmo_account", .wallet), ("cashapp", .wallet), ("twint", .wallet), ("mobilepay", .wallet), ("swish", .wallet),
        ("klarna", .buyNowPayLater), ("afterpay_clearpay", .buyNowPayLater), ("affirm", .buyNowPayLater), ("zip", .buyNowPayLater),
        ("cash", .cash), ("boleto", .cash), ("oxxo", .cash), ("konbini", .cash), ("check", .check), ("cheque", .check),
        ("other", .other), ("crypto", .other),
    ]

    @Test("gateway labels normalise to their family", arguments: gatewayMethods)
    func methodFamilies(_ method: (label: String, family: PaymentMethodFamily)) {
        let label = PaymentMethod(rawValue: method.label)
        #expect(label.rawValue == method.label, "kept exactly as sent")
        #expect(label.family == method.family, "\(method.label)")
        #expect(label.isKnown)
    }

    @Test func unknownLabelsAreKeptAndHaveNoFamily() {
        for text in ["gateway-specific method 7", "ünïcödé", "x", String(repeating: "z", count: 64), "card2", "pay pal pal"] {
            let label = PaymentMethod(rawValue: text)
            #expect(label.rawValue == text)
            #expect(label.family == nil)
            #expect(label.clearingAccountKey == "other", "an unknown label never names a ledger account")
        }
    }

    @Test func clearingAccountsStayBoundedAndKeepTheFormerNames() {
        // The ten former enum values keep their journal accounts (cash:card, cash:ach, ...).
        for old in ["card", "debit_card", "ach", "sepa_debit", "wallet", "bank_transfer", "wire", "check", "cash", "other"] {
            #expect(PaymentMethod(rawValue: old).clearingAccountKey == old)
        }
        #expect(PaymentMethod(rawValue: "Apple Pay").clearingAccountKey == "apple_pay")
        #expect(LedgerAccount.cash(PaymentMethod(rawValue: String(repeating: "q", count: 64)).clearingAccountKey).rawValue == "cash:other")
        // Every known key fits the outbound `ledger.entry_posted` account bound (64).
        for key in PaymentMethod.families.keys { #expect(("cash:" + key).count <= 64) }
    }

    @Test func staticMembersMatchTheFormerEnumCases() {
        #expect(PaymentMethod.debitCard.rawValue == "debit_card")
        #expect(PaymentMethod.sepaDebit.family == .bankDebit)
        #expect(ReversalReason.achReturn.rawValue == "ach_return")
        #expect(ReversalReason.chargeback.family == .chargeback)
        #expect(DisputeOutcome.customerWon.rawValue == "customer_won")
        #expect(DisputeOutcome.merchantWon.family == .merchantWon)
        #expect(CardBrand.amex.family == .amex)
        #expect(PaymentMethod(rawValue: "card") == .card, "equal by raw value, so `==` and `switch` on static members work")
    }

    @Test func reversalReasonsIncludeBankReturnCodes() {
        for code in ["R01", "r10", "R85", "AC04", "MD06", "AM04", "MS03", "ach_return", "bacs_return"] {
            #expect(ReversalReason(rawValue: code).family == .bankReturn, "\(code)")
        }
        for code in ["chargeback", "fraudulent", "product_not_received", "Fraud"] {
            #expect(ReversalReason(rawValue: code).family == .chargeback, "\(code)")
        }
        #expect(ReversalReason(rawValue: "R1").family == nil)
        #expect(ReversalReason(rawValue: "ABC12").family == nil)
    }

    @Test func cardBrandsAndDisputeOutcomes() {
        #expect(CardBrand(rawValue: "American Express").family == .amex)
        #expect(CardBrand(rawValue: "cartes_bancaires").family == .cartesBancaires)
        #expect(CardBrand(rawValue: "eftpos_au").family == .eftpos)
        #expect(CardBrand(rawValue: "new scheme").family == nil)
        #expect(DisputeOutcome(rawValue: "won").family == .merchantWon)
        #expect(DisputeOutcome(rawValue: "lost").family == .customerWon)
        #expect(DisputeOutcome(rawValue: "warning_closed").family == .withdrawn)
    }

    /// Decoding keeps every label as sent; the unknown ones are listed by field name only.
    @Test func decoderKeepsLabelsAndReportsUnknownFields() throws {
        func payment(_ method: String, brand: String? = nil) -> [UInt8] {
            let card = brand.map { #","card":{"token":"tok_1","brand":"\#($0)","last4":"4242"}"# } ?? ""
            return Array(#"""
                {"specversion":"1.0","id":"e1","source":"gw","type":"payment.succeeded","time":"2026-03-14T09:26:53Z",
                 "datacontenttype":"application/json","data":{"payment_id":"p1","customer_id":"c1","currency":"USD",
                 "amount":"10.00","method":"\#(method)","received_at":"2026-03-14T09:26:50Z"\#(card)}}
                """#.utf8)
        }
        let decoder = sharedDecoder
        guard case .success(let known) = decoder.decode(body: payment("us_bank_account")),
              case .paymentSucceeded(let knownPayment) = known.command else {
            Issue.record("a known label was refused")
            return
        }
        #expect(knownPayment.method == .usBankAccount)
        #expect(known.command.unknownLabelFields.isEmpty)
        guard case .success(let unknown) = decoder.decode(body: payment("Zahlung per Handy", brand: "new scheme")),
              case .paymentSucceeded(let unknownPayment) = unknown.command else {
            Issue.record("an unknown label was refused")
            return
        }
        #expect(unknownPayment.method.rawValue == "Zahlung per Handy")
        #expect(unknownPayment.card?.brand.rawValue == "new scheme")
        #expect(unknown.command.unknownLabelFields == ["method", "card.brand"])
        // Bounded and printable: a control character, an invisible character or 65 characters is a schema violation.
        for bad in ["card\\u0007", "\\u200bcard", String(repeating: "m", count: 65), ""] {
            guard case .failure(let rejection) = decoder.decode(body: payment(bad)) else {
                Issue.record("\(bad.debugDescription) was accepted")
                continue
            }
            #expect(rejection.code == .schemaViolation)
        }
    }
}
