/// Finds card data in a message before anything else looks at it (PCI DSS: we must never store,
/// log or dead-letter-forward a card number we were not supposed to receive without knowing).
///
/// A message is card data when anywhere in it:
/// - an object key, lower-cased with `_`, `-` and spaces removed, is one of `cardnumber`, `pan`,
///   `primaryaccountnumber`, `cvv`, `cvv2`, `cvc`, `cvc2`, `cid`, `securitycode`,
///   `cardsecuritycode`, `track1`, `track2`, `trackdata`, `track1data`, `track2data`,
///   `magstripe`; or `number` inside an object whose key mentions `card`;
/// - a key naming an expiry (`expiry`, `expiration`, `expirydate`, `expirationdate`, `expdate`,
///   `expmonth`, `expyear`, `cardexpiry`, or `exp` inside a card object) has a number, or a
///   string with a digit, as its value;
/// - a whole string value is 13 to 19 digits, optionally grouped by single spaces or dashes, and
///   passes the Luhn check; or a JSON number is such a digit string.
///
/// Digits inside longer free text (remittance lines) are not scanned: bank references of that
/// length are common there and would dead-letter honest payments.
public enum CardDataScan {
    /// The path of the first card data found (`data.card.number`), or nil. Never the value.
    public static func firstCardData(in value: JSONValue) -> String? {
        scan(value, path: "", insideCard: false)
    }

    static let forbiddenKeys: Set<String> = [
        "cardnumber", "pan", "primaryaccountnumber", "cvv", "cvv2", "cvc", "cvc2", "cid", "securitycode",
        "cardsecuritycode", "track1", "track2", "trackdata", "track1data", "track2data", "magstripe",
    ]
    static let expiryKeys: Set<String> = [
        "expiry", "expiration", "expirydate", "expirationdate", "expdate", "expmonth", "expyear", "cardexpiry",
    ]

    /// Lower-cased, without `_`, `-` and spaces. ASCII only: every key we look for is ASCII, and
    /// a key with other characters cannot equal one of them after removing only those three.
    static func normalizedKey(_ key: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.utf8.count)
        for byte in key.utf8 where byte != UInt8(ascii: "_") && byte != UInt8(ascii: "-") && byte != UInt8(ascii: " ") {
            bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// True when the normalized key contains "card" (`card`, `payment_card`, `cardDetails`).
    static func mentionsCard(_ normalized: String) -> Bool {
        let bytes = Array(normalized.utf8)
        guard bytes.count >= 4 else { return false }
        for start in 0...(bytes.count - 4)
        where bytes[start] == UInt8(ascii: "c") && bytes[start + 1] == UInt8(ascii: "a") && bytes[start + 2] == UInt8(ascii: "r") && bytes[start + 3] == UInt8(ascii: "d") {
            return true
        }
        return false
    }

    static func scan(_ value: JSONValue, path: String, insideCard: Bool) -> String? {
        switch value {
        case .object(let object):
            for member in object {
                let key = normalizedKey(member.key)
                let memberPath = path.isEmpty ? member.key : path + "." + member.key
                if forbiddenKeys.contains(key) || (insideCard && key == "number") { return memberPath }
                if expiryKeys.contains(key) || (insideCard && key == "exp"), carriesDigits(member.value) { return memberPath }
                if let found = scan(member.value, path: memberPath, insideCard: mentionsCard(key)) { return found }
            }
            return nil
        case .array(let elements):
            for (position, element) in elements.enumerated() {
                if let found = scan(element, path: path + "[\(position)]", insideCard: insideCard) { return found }
            }
            return nil
        case .string(let text):
            return looksLikeCardNumber(text) ? (path.isEmpty ? "(message)" : path) : nil
        case .number(let lexeme):
            return looksLikeCardNumber(lexeme) ? (path.isEmpty ? "(message)" : path) : nil
        case .null, .bool:
            return nil
        }
    }

    static func carriesDigits(_ value: JSONValue) -> Bool {
        switch value {
        case .number: return true
        case .string(let text): return text.utf8.contains { $0 >= 0x30 && $0 <= 0x39 }
        case .null, .bool, .array, .object: return false
        }
    }

    /// 13–19 digits, single spaces or dashes allowed between digits, Luhn-valid.
    public static func looksLikeCardNumber(_ text: String) -> Bool {
        let bytes = text.utf8
        guard bytes.count >= 13, bytes.count <= 19 * 2 else { return false }
        var digits: [UInt8] = []
        digits.reserveCapacity(19)
        var previousWasSeparator = true  // no leading separator
        for byte in bytes {
            switch byte {
            case 0x30...0x39:
                digits.append(byte - 0x30)
                if digits.count > 19 { return false }
                previousWasSeparator = false
            case UInt8(ascii: " "), UInt8(ascii: "-"):
                if previousWasSeparator { return false }
                previousWasSeparator = true
            default:
                return false
            }
        }
        guard !previousWasSeparator, digits.count >= 13 else { return false }
        return luhnValid(digits)
    }

    static func luhnValid(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            var value = Int(digit)
            if offset % 2 == 1 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return sum % 10 == 0
    }
}

extension CardDataScan {
    /// The message with every value the scan would flag replaced by "[redacted]": what we keep
    /// and forward of a `card_data_present` rejection, so no card number is ever stored in the
    /// dead-letter table or queue (PCI DSS outranks "body unchanged" for this one reason).
    public static func redacted(_ value: JSONValue) -> JSONValue {
        redact(value, insideCard: false)
    }

    static func redact(_ value: JSONValue, insideCard: Bool) -> JSONValue {
        switch value {
        case .object(let object):
            var members: [(String, JSONValue)] = []
            for member in object {
                let key = normalizedKey(member.key)
                if forbiddenKeys.contains(key) || (insideCard && key == "number")
                    || ((expiryKeys.contains(key) || (insideCard && key == "exp")) && carriesDigits(member.value)) {
                    members.append((member.key, .string("[redacted]")))
                } else {
                    members.append((member.key, redact(member.value, insideCard: mentionsCard(key))))
                }
            }
            return .object(JSONObject(members))
        case .array(let elements):
            return .array(elements.map { redact($0, insideCard: insideCard) })
        case .string(let text):
            return looksLikeCardNumber(text) ? .string("[redacted]") : value
        case .number(let lexeme):
            return looksLikeCardNumber(lexeme) ? .string("[redacted]") : value
        case .null, .bool:
            return value
        }
    }
}
