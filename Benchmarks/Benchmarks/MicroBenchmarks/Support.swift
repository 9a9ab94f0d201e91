import ARDomain

/// A repeatable random stream (xorshift64*), so every run measures the same data.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        precondition(seed != 0, "xorshift needs a non-zero state")
        state = seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

let euro = Currency(code: "EUR")!

/// Invoice amounts as a billing system sends them: mostly hundreds to a few thousand euros, a few
/// large ones, in integer cents.
func invoiceAmountMinorUnits(_ random: inout SeededGenerator) -> Int64 {
    switch random.next() % 20 {
    case 0: Int64.random(in: 1_000_000...250_000_000, using: &random)  // 10,000–2,500,000.00
    case 1, 2: Int64.random(in: 100...10_000, using: &random)           // 1.00–100.00
    default: Int64.random(in: 10_000...900_000, using: &random)         // 100.00–9,000.00
    }
}

/// "INV-2026-000042": the number as printed on the invoice (and copied, more or less, by payers).
func invoiceNumber(_ index: Int) -> String {
    let digits = String(index)
    return "INV-2026-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
}

/// An ISO 11649 creditor reference for `body`: "RF" + check digits making the mod-97 remainder 1.
func creditorReference(body: String) -> String {
    let remainder = Mod97.remainder(Array((body + "RF00").unicodeScalars)) ?? 0
    let checkDigits = 98 - remainder
    return "RF" + (checkDigits < 10 ? "0" : "") + String(checkDigits) + body
}
