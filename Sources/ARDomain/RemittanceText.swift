/// Normal forms for comparing what a payer wrote with what we issued (SPEC section 3, rule 2:
/// "normalised: case, spaces, dashes, leading zeros").
///
/// ASCII only, on purpose: migration 0004_reconciliation.sql computes the same keys in generated
/// columns of `invoices` (`number_key`, `number_loose_key`, `reference_key`), and a locale-dependent
/// upper-casing would make the two disagree. A test in the integration suite checks they agree.
public enum MatchKey {
    /// ASCII letters (upper-cased) and digits only: "inv-2024/0042" → "INV20240042".
    public static func strict(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if let upper = asciiUpperAlphanumeric(scalar) { out.append(upper) }
        }
        return String(out)
    }

    /// Like `strict`, with every run of digits stripped of its leading zeros (one zero kept for a
    /// run of zeros): "INV-2024-0042" → "INV202442", "inv 00042" → "INV42", "A-000" → "A0".
    /// A run of digits ends at anything that is not a digit (a letter, a dash, a space).
    public static func loose(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var inDigits = false
        var significant = false  // the current run of digits has written a non-zero digit
        var zeros = 0            // leading zeros of the current run not written
        func endRun() {
            if inDigits && !significant && zeros > 0 { out.append("0") }
            inDigits = false
        }
        for scalar in text.unicodeScalars {
            if isDigit(scalar) {
                if !inDigits { inDigits = true; significant = false; zeros = 0 }
                if !significant && scalar == "0" { zeros += 1; continue }
                significant = true
                out.append(scalar)
                continue
            }
            endRun()
            if let upper = asciiUpperAlphanumeric(scalar) { out.append(upper) }
        }
        endRun()
        return String(out)
    }

    /// An account number for look-ups: ASCII upper case, no whitespace (the IBAN print form
    /// "DE89 3704 0044 0532 0130 00" → "DE89370400440532013000").
    public static func account(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars where !(scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r") {
            if scalar.value >= 0x61 && scalar.value <= 0x7A {
                out.append(Unicode.Scalar(scalar.value - 0x20)!)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= 0x30 && scalar.value <= 0x39 }
    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 0x41 && scalar.value <= 0x5A) || (scalar.value >= 0x61 && scalar.value <= 0x7A)
    }

    static func asciiUpperAlphanumeric(_ scalar: Unicode.Scalar) -> Unicode.Scalar? {
        if isDigit(scalar) || (scalar.value >= 0x41 && scalar.value <= 0x5A) { return scalar }
        if scalar.value >= 0x61 && scalar.value <= 0x7A { return Unicode.Scalar(scalar.value - 0x20) }
        return nil
    }
}

/// ISO 7064 MOD 97-10 over letters and digits (A = 10 … Z = 35), the check of both ISO 11649
/// creditor references and IBANs.
public enum Mod97 {
    /// The remainder of the number the upper-case alphanumerics spell; nil for any other character.
    public static func remainder(_ scalars: some Sequence<Unicode.Scalar>) -> Int? {
        var remainder = 0
        for scalar in scalars {
            if MatchKey.isDigit(scalar) {
                remainder = (remainder * 10 + Int(scalar.value - 0x30)) % 97
            } else if scalar.value >= 0x41 && scalar.value <= 0x5A {
                remainder = (remainder * 100 + Int(scalar.value - 0x41) + 10) % 97
            } else {
                return nil
            }
        }
        return remainder
    }

    /// True when the first four characters moved to the end give remainder 1 (both formats work so).
    static func checks(_ compact: [Unicode.Scalar]) -> Bool {
        guard compact.count > 4 else { return false }
        return remainder(compact[4...] + compact[0..<4]) == 1
    }
}

/// ISO 11649 structured creditor references: "RF" + two check digits + 1 to 21 letters or digits.
public enum CreditorReference {
    /// Whether `reference` (electronic form, upper case, no spaces) is an RF reference whose
    /// check digits are right.
    public static func isValid(_ reference: String) -> Bool {
        let scalars = Array(reference.unicodeScalars)
        guard scalars.count >= 5, scalars.count <= 25, scalars[0] == "R", scalars[1] == "F",
              MatchKey.isDigit(scalars[2]), MatchKey.isDigit(scalars[3]) else { return false }
        return Mod97.checks(scalars)
    }

    /// What the reference carries after "RFnn" (creditors often put the invoice number there).
    public static func body(of reference: String) -> String { String(reference.dropFirst(4)) }

    /// RF-shaped (RF + two digits + more) but not necessarily valid: worth a note when it fails.
    static func looksLikeOne(_ compact: String) -> Bool {
        let scalars = Array(compact.unicodeScalars)
        return scalars.count >= 5 && scalars.count <= 25 && scalars[0] == "R" && scalars[1] == "F"
            && MatchKey.isDigit(scalars[2]) && MatchKey.isDigit(scalars[3])
    }
}

/// IBAN check (ISO 13616): a country with an IBAN, that country's exact length, MOD 97 = 1.
///
/// Used to keep account numbers out of invoice-number mentions. The MOD 97 check alone is not
/// enough there: one text in 97 passes it by chance once a word is joined on ("RE24167900270
/// danke" did), and the invoice number inside is then lost. Requiring a known country and its
/// length makes that rare; an IBAN of a country missing here only stays a mention that matches
/// no invoice, which costs nothing.
public enum IBAN {
    public static func isValid(_ compact: String) -> Bool {
        let scalars = Array(compact.unicodeScalars)
        guard scalars.count >= 15, scalars.count <= 34, MatchKey.isLetter(scalars[0]), MatchKey.isLetter(scalars[1]),
              MatchKey.isDigit(scalars[2]), MatchKey.isDigit(scalars[3]),
              let length = lengths[String(String.UnicodeScalarView(scalars[0..<2]))], length == scalars.count else { return false }
        return Mod97.checks(scalars)
    }

    /// IBAN length per country: the SWIFT IBAN registry, plus the national formats banks accept
    /// that are not (yet) registered (several African countries and Iran).
    public static let lengths: [String: Int] = [
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
        "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
        "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
        "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
        "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
        "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
        "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
        "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
        "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
        // not in the registry, in use
        "AO": 25, "BF": 28, "BJ": 28, "CF": 27, "CG": 27, "CI": 28, "CM": 27, "CV": 25, "DZ": 26, "GA": 27,
        "GQ": 27, "GW": 25, "IR": 26, "KM": 27, "MA": 28, "MG": 27, "ML": 28, "MZ": 25, "NE": 28, "SN": 28,
        "TD": 27, "TG": 28,
    ]
}

/// Where a piece of payer text came from.
public enum TextSource: String, Sendable, Hashable, Comparable {
    case structuredReference = "structured_reference"
    case endToEndID = "end_to_end_id"
    case remittance = "remittance_info"

    var order: Int {
        switch self {
        case .structuredReference: 0
        case .endToEndID: 1
        case .remittance: 2
        }
    }
    public static func < (a: TextSource, b: TextSource) -> Bool { a.order < b.order }
}

/// What the payer's texts say, as reconciliation needs it: candidate references and invoice
/// numbers (with amounts written next to them), ISO 11649 references, and words that may be a
/// gateway payout id. Pure and deterministic; bounded (`maximumMentions`).
///
/// The rules that keep look-alikes out:
/// - a mention is one or more *whole* runs of letters and digits joined only by spaces, dashes,
///   underscores, slashes, `#` or dots between letters: never a piece of a longer run, so
///   "INV-12" is not found in "XINV-123" or in "DE89…12…";
/// - runs that form a valid IBAN (electronic or print form) or a valid RF reference are not
///   mentions; neither are amounts and dates (digits joined by `.`, `,` or `'`);
/// - a mention has a digit, at least 3 characters, and at least 5 when it is digits only.
public struct RemittanceScan: Hashable, Sendable {
    public struct Mention: Hashable, Sendable {
        /// `MatchKey.strict` of the mention.
        public let strict: String
        /// `MatchKey.loose` of the mention.
        public let loose: String
        /// As written in the text, for explanations.
        public let text: String
        public let source: TextSource
        /// Position of the first and last run in its text (runs counted from 0), so an amount
        /// written after it can be associated.
        public let firstRun: Int
        public let lastRun: Int
        /// The mention is the whole field (a structured reference or end-to-end id as a whole).
        public let wholeField: Bool
    }

    /// An amount written in the text (e.g. "INV-1 100.00, INV-2 50,00").
    public struct WrittenAmount: Hashable, Sendable {
        public let amount: Money
        public let source: TextSource
        public let run: Int
    }

    public var mentions: [Mention] = []
    public var amounts: [WrittenAmount] = []
    /// Valid ISO 11649 references, electronic form, in order of appearance.
    public var creditorReferences: [String] = []
    /// RF-shaped references whose check digits fail (noted, never trusted).
    public var invalidCreditorReferences: [String] = []
    /// Lower-cased words (letters, digits, `_`, `-`, `.`), for payout id look-ups.
    public var words: [String] = []
    /// Valid IBANs found in the text (noted in explanations; excluded from mentions).
    public var ibans: [String] = []
    /// True when the text produced more than `maximumMentions` mentions (the rest ignored).
    public var truncated = false

    public static let maximumMentions = 400
    public static let maximumWords = 100
    /// Longest window of runs considered one mention ("INV 2024 03 0042" is four runs).
    public static let maximumRunsPerMention = 4

    public init() {}

    /// Scans the credit's structured reference, end-to-end id and remittance text.
    public static func scan(structuredReference: String?, endToEndID: String?, remittance: String?, currency: Currency) -> RemittanceScan {
        var scan = RemittanceScan()
        if let text = structuredReference, !text.isEmpty { scan.add(text, source: .structuredReference, currency: currency) }
        if let text = endToEndID, !text.isEmpty, MatchKey.strict(text) != "NOTPROVIDED" {
            scan.add(text, source: .endToEndID, currency: currency)
        }
        if let text = remittance, !text.isEmpty { scan.add(text, source: .remittance, currency: currency) }
        return scan
    }

    /// Every strict key worth looking up (mentions and the bodies of valid RF references).
    public var strictKeys: [String] {
        var keys: [String] = []
        var seen: Set<String> = []
        for key in mentions.map(\.strict) + creditorReferences + creditorReferences.map(CreditorReference.body(of:))
        where !key.isEmpty && seen.insert(key).inserted {
            keys.append(key)
        }
        return keys
    }

    public var looseKeys: [String] {
        var keys: [String] = []
        var seen: Set<String> = []
        for key in mentions.map(\.loose) + creditorReferences.map({ MatchKey.loose(CreditorReference.body(of: $0)) })
        where !key.isEmpty && seen.insert(key).inserted {
            keys.append(key)
        }
        return keys
    }

    // MARK: scanning one text

    private enum CharacterClass { case alphanumeric, soft, numericSeparator, hard }

    private struct Run {
        var text: String          // upper-cased ASCII letters and digits
        var chain: Int            // runs in one chain are joined by soft separators only
        var allDigits: Bool
        var excluded = false      // part of an IBAN, an RF reference, an amount or a date
    }

    private mutating func add(_ text: String, source: TextSource, currency: Currency) {
        let scalars = Array(text.unicodeScalars.prefix(4000))
        // 1. classify and cut into runs of ASCII letters and digits
        var classes: [CharacterClass] = []
        classes.reserveCapacity(scalars.count)
        for (index, scalar) in scalars.enumerated() {
            if MatchKey.asciiUpperAlphanumeric(scalar) != nil {
                classes.append(.alphanumeric)
                continue
            }
            let previousDigit = index > 0 && MatchKey.isDigit(scalars[index - 1])
            let nextDigit = index + 1 < scalars.count && MatchKey.isDigit(scalars[index + 1])
            switch scalar {
            case ".", ",", "'":
                classes.append(previousDigit && nextDigit ? .numericSeparator : (scalar == "." ? .soft : .hard))
            case " ", "\t", "\n", "\r", "-", "_", "/", "#":
                classes.append(.soft)
            default:
                classes.append(.hard)
            }
        }
        var runs: [Run] = []
        var runStart: [Int] = []
        var runEnd: [Int] = []
        var chain = 0
        var hardGap = false  // since the last run: something other than soft separators
        var index = 0
        while index < scalars.count {
            guard classes[index] == .alphanumeric else {
                if classes[index] != .soft { hardGap = true }
                index += 1
                continue
            }
            let start = index
            while index < scalars.count, classes[index] == .alphanumeric { index += 1 }
            var upper = String.UnicodeScalarView()
            var allDigits = true
            for scalar in scalars[start..<index] {
                upper.append(MatchKey.asciiUpperAlphanumeric(scalar)!)
                if !MatchKey.isDigit(scalar) { allDigits = false }
            }
            if hardGap && !runs.isEmpty { chain += 1 }
            hardGap = false
            runs.append(Run(text: String(upper), chain: chain, allDigits: allDigits))
            runStart.append(start)
            runEnd.append(index)
        }
        guard !runs.isEmpty else { return }

        // 2. numbers joined by . , ' (amounts, dates, thousands) are not mentions; amounts are kept
        var cursor = 0
        while cursor < runs.count {
            guard runs[cursor].allDigits else { cursor += 1; continue }
            var last = cursor
            var separators: [Unicode.Scalar] = []
            while last + 1 < runs.count, runs[last + 1].allDigits, runEnd[last] + 1 == runStart[last + 1],
                  classes[runEnd[last]] == .numericSeparator {
                separators.append(scalars[runEnd[last]])
                last += 1
            }
            if last > cursor {
                for position in cursor...last { runs[position].excluded = true }
                if let amount = Self.amount(groups: runs[cursor...last].map(\.text), separators: separators, currency: currency) {
                    amounts.append(WrittenAmount(amount: amount, source: source, run: cursor))
                }
            } else if Self.hasCurrencyMarker(before: cursor, runs: runs, scalars: scalars, runStart: runStart, currency: currency) {
                if let amount = Self.amount(groups: [runs[cursor].text], separators: [], currency: currency) {
                    amounts.append(WrittenAmount(amount: amount, source: source, run: cursor))
                    runs[cursor].excluded = true
                }
            }
            cursor = last + 1
        }

        // 3. IBANs and RF references (electronic or print form) are not mentions. Both use the
        //    same MOD 97 check, so the RF prefix decides which one a run starts.
        for first in runs.indices where !runs[first].excluded {
            let head = Array(runs[first].text.unicodeScalars)
            guard head.count >= 4, MatchKey.isLetter(head[0]), MatchKey.isLetter(head[1]), MatchKey.isDigit(head[2]), MatchKey.isDigit(head[3]) else { continue }
            let creditorReference = head[0] == "R" && head[1] == "F"
            var joined = ""
            var longest: (end: Int, text: String)?
            var shaped: String?  // the longest RF-shaped text, noted if none is valid
            var position = first
            while position < runs.count, runs[position].chain == runs[first].chain, !runs[position].excluded {
                joined += runs[position].text
                if joined.unicodeScalars.count > 34 { break }
                if creditorReference ? CreditorReference.isValid(joined) : IBAN.isValid(joined) { longest = (position, joined) }
                if creditorReference, CreditorReference.looksLikeOne(joined) { shaped = joined }
                position += 1
            }
            if let longest {
                if creditorReference {
                    if !creditorReferences.contains(longest.text) { creditorReferences.append(longest.text) }
                } else if !ibans.contains(longest.text) {
                    ibans.append(longest.text)
                }
                for run in first...longest.end { runs[run].excluded = true }
            } else if let shaped, !invalidCreditorReferences.contains(shaped) {
                invalidCreditorReferences.append(shaped)
            }
        }

        // 4. mentions: windows of whole runs within a chain
        let wholeStrict = runs.map(\.text).joined()
        var known: Set<String> = Set(mentions.filter { $0.source == source }.map { $0.strict + "\u{1F}" + $0.loose })
        for first in runs.indices where !runs[first].excluded {
            var strict = ""
            var loose = ""
            for last in first..<min(runs.count, first + Self.maximumRunsPerMention) {
                guard runs[last].chain == runs[first].chain, !runs[last].excluded else { break }
                strict += runs[last].text
                loose += MatchKey.loose(runs[last].text)
                guard Self.isMentionShaped(strict) else { continue }
                guard mentions.count < Self.maximumMentions else { truncated = true; break }
                guard known.insert(strict + "\u{1F}" + loose).inserted else { continue }
                let asWritten = String(String.UnicodeScalarView(scalars[runStart[first]..<runEnd[last]]))
                mentions.append(Mention(strict: strict, loose: loose, text: asWritten, source: source,
                                        firstRun: first, lastRun: last,
                                        wholeField: source != .remittance && strict == wholeStrict))
            }
        }
        // A structured field is one reference even without digits ("ABCDEF") or across hard characters.
        if source != .remittance, wholeStrict.unicodeScalars.count >= 4, wholeStrict.unicodeScalars.count <= 64,
           !mentions.contains(where: { $0.source == source && $0.wholeField }), !runs.allSatisfy(\.excluded) {
            mentions.append(Mention(strict: wholeStrict, loose: MatchKey.loose(text), text: text, source: source,
                                    firstRun: 0, lastRun: runs.count - 1, wholeField: true))
        }

        // 5. words, for payout ids ("po_1NxYz", "PAYOUT-2024-03-14-01")
        var word = String.UnicodeScalarView()
        func flush() {
            while let last = word.last, last == "." || last == "-" { word.removeLast() }
            if word.count >= 4, word.count <= 128, words.count < Self.maximumWords {
                let lowered = String(word).lowercasedASCII
                if !words.contains(lowered) { words.append(lowered) }
            }
            word = String.UnicodeScalarView()
        }
        for scalar in scalars {
            if MatchKey.asciiUpperAlphanumeric(scalar) != nil || scalar == "_" || scalar == "-" || scalar == "." {
                word.append(scalar)
            } else {
                flush()
            }
        }
        flush()
    }

    static func isMentionShaped(_ strict: String) -> Bool {
        let scalars = strict.unicodeScalars
        guard scalars.count >= 3, scalars.count <= 64 else { return false }
        var digits = 0
        for scalar in scalars where MatchKey.isDigit(scalar) { digits += 1 }
        guard digits > 0 else { return false }
        return digits < scalars.count || digits >= 5
    }

    /// "1.250,00", "1,250.00", "250,00", "125,000" (JPY): the fraction has exactly the currency's
    /// digits. A lone group of digits is an amount only after a currency code or sign ("EUR 1250",
    /// "€1250"); one *before* a code is not ("INV-10 EUR 40,00" names invoice 10).
    static func amount(groups: [String], separators: [Unicode.Scalar], currency: Currency) -> Money? {
        let digits = currency.minorUnitDigits
        var integerGroups = groups
        var fraction = ""
        if digits > 0 {
            if let last = groups.last, groups.count >= 2, last.count == digits, let decimal = separators.last, decimal == "." || decimal == "," {
                fraction = last
                integerGroups = Array(groups.dropLast())
                let thousands = separators.dropLast()
                guard thousands.allSatisfy({ $0 != decimal }), Set(thousands).count <= 1 else { return nil }
            } else if groups.count >= 2 {
                return nil
            }
        }
        if integerGroups.count > 1 {
            guard integerGroups.dropFirst().allSatisfy({ $0.count == 3 }), (1...3).contains(integerGroups[0].count) else { return nil }
            if digits == 0 { guard Set(separators).count == 1 else { return nil } }
        }
        var integer = integerGroups.joined()
        while integer.count > 1, integer.hasPrefix("0") { integer.removeFirst() }
        guard integer.count <= Money.maximumMajorDigits else { return nil }
        let text = fraction.isEmpty ? integer : integer + "." + fraction
        guard let money = try? Money.parse(text, currency: currency), money.isPositive else { return nil }
        return money
    }

    private static func hasCurrencyMarker(before run: Int, runs: [Run], scalars: [Unicode.Scalar], runStart: [Int], currency: Currency) -> Bool {
        let start = runStart[run]
        if start > 0, "€$£¥".unicodeScalars.contains(scalars[start - 1]) { return true }
        if start > 1, scalars[start - 1] == " ", "€$£¥".unicodeScalars.contains(scalars[start - 2]) { return true }
        return run > 0 && runs[run - 1].text == currency.code && runs[run - 1].chain == runs[run].chain
    }
}

extension String {
    /// ASCII lower case (payout ids are compared case-insensitively, in SQL with lower()).
    var lowercasedASCII: String {
        String(String.UnicodeScalarView(unicodeScalars.map { scalar in
            scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(scalar.value + 0x20)! : scalar
        }))
    }
}
