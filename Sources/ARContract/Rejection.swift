/// A stable machine code for why a message can never be processed; it becomes the dead-letter
/// header `x-rejection-reason` (SPEC section 2, "Bad input").
///
/// Add codes freely; never rename or reuse one: operators and dashboards match on them.
public struct RejectionCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    // Decoder, in the order its checks run.
    /// The body exceeds `DecodingLimits.maximumBodyBytes`.
    public static let bodyTooLarge = RejectionCode(rawValue: "body_too_large")
    /// Not RFC 8259 JSON (including duplicate keys and invalid UTF-8).
    public static let notJSON = RejectionCode(rawValue: "not_json")
    /// JSON nested deeper than `DecodingLimits.maximumDepth`.
    public static let tooDeep = RejectionCode(rawValue: "too_deep")
    /// Something that looks like card data (PAN, CVV, track data, expiry) is in the message.
    public static let cardDataPresent = RejectionCode(rawValue: "card_data_present")
    /// JSON, but not a CloudEvents 1.0 structured-mode event (`envelope.json`).
    public static let notCloudEvent = RejectionCode(rawValue: "not_cloudevent")
    /// A `type` with no inbound schema (outbound types arriving inbound included).
    public static let unknownType = RejectionCode(rawValue: "unknown_type")
    /// The type's schema failed on a rule with no more specific code.
    public static let schemaViolation = RejectionCode(rawValue: "schema_violation")
    /// An amount sent as a JSON number (or any non-string).
    public static let amountNotString = RejectionCode(rawValue: "amount_not_string")
    /// A currency code not in ISO 4217 (`Currency.minorUnitDigitsByCode`).
    public static let unknownCurrency = RejectionCode(rawValue: "unknown_currency")
    /// More fraction digits than the currency's minor unit allows.
    public static let wrongMinorDigits = RejectionCode(rawValue: "wrong_minor_digits")

    // Later stages (Daemon, Store, domain decisions).
    public static let forbiddenPublisher = RejectionCode(rawValue: "forbidden_publisher")
    public static let currencyMismatch = RejectionCode(rawValue: "currency_mismatch")
    public static let conflictingDuplicate = RejectionCode(rawValue: "conflicting_duplicate")
    public static let unknownReference = RejectionCode(rawValue: "unknown_reference")
    public static let foreignReference = RejectionCode(rawValue: "foreign_reference")
    public static let invalidState = RejectionCode(rawValue: "invalid_state")
    public static let amountExceedsBalance = RejectionCode(rawValue: "amount_exceeds_balance")
    public static let duplicateAllocation = RejectionCode(rawValue: "duplicate_allocation")
    public static let deliveryLimitExceeded = RejectionCode(rawValue: "delivery_limit_exceeded")

    /// When a message breaks several schema rules, the reported code is the first of these that
    /// any failure carries; failures with another `x-rejection` come next, then plain
    /// `schema_violation`. The most specific, most actionable code wins: a publisher sending
    /// amounts as numbers has one bug to fix, whatever else the message breaks.
    public static let schemaPrecedence: [RejectionCode] = [.amountNotString, .unknownCurrency, .wrongMinorDigits]

    /// Rank for `schemaPrecedence`; lower wins.
    static func schemaRank(_ code: RejectionCode) -> Int {
        if let position = schemaPrecedence.firstIndex(of: code) { return position }
        return code == .schemaViolation ? schemaPrecedence.count + 1 : schemaPrecedence.count
    }
}

/// Why one message was rejected: a code for machines and one sentence for people (the
/// `x-rejection-detail` header). The detail names the field path and never echoes card numbers
/// or long digit strings (see `Rejection.masked`).
public struct Rejection: Error, Hashable, Sendable, CustomStringConvertible {
    public let code: RejectionCode
    public let detail: String

    public init(code: RejectionCode, detail: String) {
        self.code = code
        self.detail = Rejection.masked(detail)
    }

    public var description: String { "\(code.rawValue): \(detail)" }

    /// Replaces every run of 9 or more digits (spaces and dashes between digits count as part of
    /// the run) with `[digits]`, so no PAN, account number or similar can leak into logs and
    /// headers through a detail sentence. Short numbers (amounts up to 8 digits, dates, counts) stay readable.
    public static func masked(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var output = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            guard isDigit(scalars[index]) else {
                output.append(scalars[index])
                index += 1
                continue
            }
            var end = index
            var digitCount = 0
            var lastDigitEnd = index
            while end < scalars.count {
                if isDigit(scalars[end]) {
                    digitCount += 1
                    end += 1
                    lastDigitEnd = end
                } else if (scalars[end] == " " || scalars[end] == "-"), end + 1 < scalars.count, isDigit(scalars[end + 1]) {
                    end += 1
                } else {
                    break
                }
            }
            if digitCount >= 9 {
                output.append(contentsOf: "[digits]".unicodeScalars)
            } else {
                output.append(contentsOf: scalars[index..<lastDigitEnd])
            }
            index = lastDigitEnd
        }
        return String(output)
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= 0x30 && scalar.value <= 0x39 }
}
