import ARDomain

/// Why an amount written by a bank is not an amount of its currency; turned into a positioned
/// `BankFormatError` by the caller, which knows where the amount was.
enum BankAmountProblem: Error, Sendable {
    case empty
    case malformed
    case tooManyFractionDigits(allowed: Int)
    case outOfRange

    var message: String {
        switch self {
        case .empty: "amount is empty"
        case .malformed: "amount is not a number"
        case .tooManyFractionDigits(let allowed): "amount has more than the currency's \(allowed) decimals"
        case .outOfRange: "amount exceeds \(BankAmount.maximumMajorDigits) integer digits"
        }
    }
}

/// Amount syntaxes of the three formats, parsed straight from bytes into integer minor units.
/// Never a floating-point number: sums stay exact and "0.1 + 0.2" problems cannot happen.
enum BankAmount {
    /// Statements carry whole accounts' balances and file control totals, so they get a wider
    /// bound than one AR document (`Money.maximumMajorDigits`); 15 digits still fit Int64 with
    /// 3 minor digits.
    static let maximumMajorDigits = 15

    /// `1234.56` (camt, separator ".") or `1234,56` / `1234,` (MT940, separator ","): digits, at most one
    /// separator, no sign. Leading zeros are allowed (MT940 pads). Fraction digits beyond the currency's
    /// minor unit are accepted only when they are zeros ("10.500" EUR is exactly 10.50): anything else
    /// would need rounding, and rounding money is the bank's job, not ours.
    static func parseDecimal(
        _ bytes: some Collection<UInt8>, separator: UInt8, currency: Currency
    ) throws(BankAmountProblem) -> Int64 {
        guard !bytes.isEmpty else { throw .empty }
        var integerPart: Int64 = 0
        var integerDigits = 0
        var fraction: Int64 = 0
        var fractionDigits = 0
        var sawSeparator = false
        var sawDigit = false
        let allowed = currency.minorUnitDigits
        for byte in bytes {
            if byte == separator {
                guard !sawSeparator else { throw .malformed }
                sawSeparator = true
                continue
            }
            guard byte >= 0x30, byte <= 0x39 else { throw .malformed }
            sawDigit = true
            let digit = Int64(byte - 0x30)
            if sawSeparator {
                fractionDigits += 1
                if fractionDigits > allowed {
                    guard digit == 0 else { throw .tooManyFractionDigits(allowed: allowed) }
                    // a trailing zero beyond the minor unit: exact, ignore it; but bound the length
                    guard fractionDigits <= 64 else { throw .malformed }
                } else {
                    fraction = fraction * 10 + digit
                }
            } else {
                if integerDigits > 0 || digit != 0 { integerDigits += 1 }
                guard integerDigits <= BankAmount.maximumMajorDigits else { throw .outOfRange }
                integerPart = integerPart * 10 + digit
            }
        }
        guard sawDigit else { throw .malformed }
        let usedFractionDigits = min(fractionDigits, allowed)
        for _ in usedFractionDigits..<allowed { fraction *= 10 }
        return integerPart * currency.minorUnitsPerMajor + fraction
    }

    /// BAI2 amounts: digits with the decimal point implied by the currency's minor unit
    /// ("12345" USD = 123.45), optional leading "+" or "-" (balances may be negative).
    static func parseImplied(_ bytes: some Collection<UInt8>, currency: Currency) throws(BankAmountProblem) -> Int64 {
        guard let first = bytes.first else { throw .empty }
        var negative = false
        var digits = bytes[...]
        if first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { throw .malformed }
        var value: Int64 = 0
        var significant = 0
        for byte in digits {
            guard byte >= 0x30, byte <= 0x39 else { throw .malformed }
            if significant > 0 || byte != 0x30 { significant += 1 }
            guard significant <= BankAmount.maximumMajorDigits + currency.minorUnitDigits else { throw .outOfRange }
            value = value * 10 + Int64(byte - 0x30)
        }
        return negative ? -value : value
    }
}

enum BankTextDecoding {
    /// Text as banks send it: UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 (German MT940
    /// files with umlauts often are). Never fails, never guesses beyond these two.
    static func decode(_ bytes: some Collection<UInt8>) -> String {
        // Fast path (runs for every field): contiguous bytes decoded in one call when they are ASCII.
        let fast: String?? = bytes.withContiguousStorageIfAvailable { buffer -> String? in
            var combined: UInt8 = 0
            for byte in buffer { combined |= byte }
            return combined < 0x80 ? String(decoding: buffer, as: UTF8.self) : String(validating: buffer, as: UTF8.self)
        }
        if let decoded = fast, let text = decoded { return text }
        if fast == nil, let text = String(validating: bytes, as: UTF8.self) { return text }
        return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// Trimmed of blanks and line breaks; nil when nothing is left.
    static func trimmedOrNil(_ text: String) -> String? {
        let trimmed = text.trimmingBlanks()
        return trimmed.isEmpty ? nil : trimmed
    }
}

extension String {
    /// Removes leading and trailing spaces, tabs and line breaks (no Foundation needed). Works on the
    /// UTF-8 view: these are ASCII, and this runs for every field of large files.
    func trimmingBlanks() -> String {
        let view = utf8
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        guard let first = view.first, let last = view.last, isBlank(first) || isBlank(last) else { return self }
        guard let start = view.firstIndex(where: { !isBlank($0) }) else { return "" }
        let end = view.lastIndex(where: { !isBlank($0) })!
        return String(self[start...end])
    }
}

enum BankDateParsing {
    /// `YYYY-MM-DD`, also the date part of an ISO date-time (`2024-03-01T10:00:00+01:00`) or a date with
    /// a zone (`2024-03-01+01:00`), which camt allows.
    static func iso(_ text: String) -> BankDate? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        guard let year = number(bytes[0..<4]), let month = number(bytes[5..<7]), let day = number(bytes[8..<10]) else {
            return nil
        }
        if bytes.count > 10 {
            let next = bytes[10]
            guard next == UInt8(ascii: "T") || next == UInt8(ascii: "+") || next == UInt8(ascii: "-")
                || next == UInt8(ascii: "Z") || next == UInt8(ascii: " ")
            else { return nil }
        }
        return BankDate(year: year, month: month, day: day)
    }

    /// `YYMMDD` (MT940, BAI2). Years 00–79 are 2000–2079, 80–99 are 1980–1999.
    /// `clampingDay`: German banks date interest postings "30 February" (a 30-day-month convention);
    /// such a day (up to 31) becomes the month's last day instead of failing the statement.
    static func yymmdd(_ bytes: some Collection<UInt8>, clampingDay: Bool = false) -> BankDate? {
        let array = Array(bytes)
        guard array.count == 6, let yy = number(array[0..<2]), let month = number(array[2..<4]),
            let day = number(array[4..<6])
        else { return nil }
        let year = yy < 80 ? 2000 + yy : 1900 + yy
        return clampingDay ? clamped(year: year, month: month, day: day) : BankDate(year: year, month: month, day: day)
    }

    static func clamped(year: Int, month: Int, day: Int) -> BankDate? {
        guard (1...31).contains(day) else { return nil }
        var candidate = day
        while candidate >= 28 {
            if let date = BankDate(year: year, month: month, day: candidate) { return date }
            candidate -= 1
        }
        return BankDate(year: year, month: month, day: day)
    }

    /// A non-negative decimal count or date part; nil when empty, not all digits, or longer than 9
    /// digits (no count in these formats needs more; found by fuzzing as an overflow).
    static func number(_ bytes: some Collection<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }
}

/// Currency codes in bank files: ISO 4217's current codes and its withdrawn ones (list three) with
/// their historical minor units, because archives and old test files are written in DEM, FRF,
/// NLG, ITL, ... Parsing such a file is reading, not booking: an entry in a historical currency
/// says `currency.isHistorical`, and the books (which only know current codes) never take it.
enum BankCurrency {
    static func named(_ code: String) -> Currency? { Currency(code: code, includingHistorical: true) }
}
