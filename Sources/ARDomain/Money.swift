/// An amount of one currency in integer minor units. Never a floating-point number.
///
/// Arithmetic is overflow-checked and refuses to mix currencies: both are bugs upstream of here,
/// because amounts are bounded at the boundary (`Money.parse`) far below `Int64.max`.
public struct Money: Hashable, Sendable, CustomStringConvertible {
    public let minorUnits: Int64
    public let currency: Currency

    public init(minorUnits: Int64, currency: Currency) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    public static func zero(_ currency: Currency) -> Money { Money(minorUnits: 0, currency: currency) }

    public var isZero: Bool { minorUnits == 0 }
    public var isPositive: Bool { minorUnits > 0 }
    public var isNegative: Bool { minorUnits < 0 }

    public static func + (a: Money, b: Money) -> Money {
        precondition(a.currency == b.currency, "mixed currencies \(a.currency) + \(b.currency)")
        let (sum, overflow) = a.minorUnits.addingReportingOverflow(b.minorUnits)
        precondition(!overflow, "money overflow")
        return Money(minorUnits: sum, currency: a.currency)
    }

    public static func - (a: Money, b: Money) -> Money {
        precondition(a.currency == b.currency, "mixed currencies \(a.currency) - \(b.currency)")
        let (difference, overflow) = a.minorUnits.subtractingReportingOverflow(b.minorUnits)
        precondition(!overflow, "money overflow")
        return Money(minorUnits: difference, currency: a.currency)
    }

    public static prefix func - (a: Money) -> Money { Money(minorUnits: -a.minorUnits, currency: a.currency) }
    public static func += (a: inout Money, b: Money) { a = a + b }
    public static func -= (a: inout Money, b: Money) { a = a - b }

    public static func min(_ a: Money, _ b: Money) -> Money {
        precondition(a.currency == b.currency, "mixed currencies")
        return a.minorUnits <= b.minorUnits ? a : b
    }

    /// Compares amounts of the same currency.
    public static func < (a: Money, b: Money) -> Bool {
        precondition(a.currency == b.currency, "mixed currencies")
        return a.minorUnits < b.minorUnits
    }
    public static func <= (a: Money, b: Money) -> Bool { !(b < a) }
    public static func > (a: Money, b: Money) -> Bool { b < a }
    public static func >= (a: Money, b: Money) -> Bool { !(a < b) }

    /// The decimal string of SPEC section 2: exactly the currency's minor digits ("1250.00",
    /// "1250", "12.500"), a leading "-" when negative.
    public var decimalString: String { Money.format(minorUnits: minorUnits, digits: currency.minorUnitDigits) }
    public var description: String { "\(decimalString) \(currency.code)" }

    public static func format(minorUnits: Int64, digits: Int) -> String {
        let negative = minorUnits < 0
        // magnitude as UInt64 so Int64.min formats too
        let magnitude = minorUnits.magnitude
        var text = String(magnitude)
        if digits > 0 {
            if text.count <= digits { text = String(repeating: "0", count: digits - text.count + 1) + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
        }
        return negative ? "-" + text : text
    }

    /// Splits `self` into parts proportional to `weights` by the largest-remainder method, so the
    /// parts always sum to the whole (used for fee and payout splits).
    public func split(proportionalTo weights: [Int64]) -> [Money] {
        precondition(!weights.isEmpty && weights.allSatisfy { $0 >= 0 })
        let total = weights.reduce(0, +)
        precondition(total > 0)
        var parts: [Int64] = []
        var remainders: [(index: Int, remainder: Int64)] = []
        for (index, weight) in weights.enumerated() {
            let (high, low) = minorUnits.multipliedFullWidth(by: weight)
            let (quotient, remainder) = total.dividingFullWidth((high, low))
            parts.append(quotient)
            remainders.append((index, remainder))
        }
        var left = minorUnits - parts.reduce(0, +)
        let step: Int64 = left >= 0 ? 1 : -1
        for entry in remainders.sorted(by: { ($0.remainder.magnitude, -$0.index) > ($1.remainder.magnitude, -$1.index) }) where left != 0 {
            parts[entry.index] += step
            left -= step
        }
        return parts.map { Money(minorUnits: $0, currency: currency) }
    }
}

/// Why a decimal string is not an amount of a currency. Each case maps to a rejection code.
public enum MoneyParseError: Error, Equatable, Sendable {
    case empty
    case malformed(String)
    case tooManyFractionDigits(allowed: Int, found: Int)
    case outOfRange
    case negativeNotAllowed
}

extension Money {
    /// Largest amount accepted at the boundary: 12 integer digits (just under a trillion major
    /// units, far beyond any invoice). It keeps sums of thousands of the largest amounts (a
    /// customer's balance over all open invoices) inside Int64 for 3-digit currencies, so a
    /// hostile publisher cannot make balance arithmetic overflow.
    public static let maximumMajorDigits = 12

    /// Parses the SPEC's decimal notation: optional "-" (only if `allowNegative`), digits with no
    /// leading zeros, optional "." followed by 1...minorUnitDigits digits. No exponent, no "+",
    /// no spaces, no thousands separators, no trailing ".".
    public static func parse(_ text: String, currency: Currency, allowNegative: Bool = false) throws(MoneyParseError) -> Money {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            guard allowNegative else { throw .negativeNotAllowed }
            negative = true
            index = 1
        }
        let integerStart = index
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        let integerDigits = bytes[integerStart..<index]
        guard !integerDigits.isEmpty else { throw .malformed(text) }
        guard integerDigits.count == 1 || integerDigits.first != UInt8(ascii: "0") else { throw .malformed(text) }
        guard integerDigits.count <= maximumMajorDigits else { throw .outOfRange }
        var fractionDigits: ArraySlice<UInt8> = []
        if index < bytes.count {
            guard bytes[index] == UInt8(ascii: ".") else { throw .malformed(text) }
            index += 1
            let fractionStart = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            fractionDigits = bytes[fractionStart..<index]
            guard !fractionDigits.isEmpty, index == bytes.count else { throw .malformed(text) }
        }
        guard fractionDigits.count <= currency.minorUnitDigits else {
            throw .tooManyFractionDigits(allowed: currency.minorUnitDigits, found: fractionDigits.count)
        }
        // 15 integer digits plus 4 minor digits (CLF, UYW) exceed Int64: accumulate checked, so
        // a hostile amount is `outOfRange`, never a trap.
        var value: Int64 = 0
        func append(_ digit: Int64) throws(MoneyParseError) {
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = shifted.addingReportingOverflow(digit)
            guard !overflowA, !overflowB else { throw .outOfRange }
            value = sum
        }
        for digit in integerDigits { try append(Int64(digit - 0x30)) }
        for position in 0..<currency.minorUnitDigits {
            let digit: Int64 = position < fractionDigits.count ? Int64(fractionDigits[fractionDigits.startIndex + position] - 0x30) : 0
            try append(digit)
        }
        if negative && value == 0 { throw .malformed(text) }  // "-0" is not a form anyone should send
        return Money(minorUnits: negative ? -value : value, currency: currency)
    }
}
