/// A calendar date with no time zone (`YYYY-MM-DD`): due dates, issue dates, booking dates.
///
/// Stored as days since 1970-01-01 (proleptic Gregorian) so day arithmetic is integer arithmetic.
public struct BusinessDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
              (1...BusinessDate.daysIn(month: month, year: year)).contains(day) else { return nil }
        daysSinceEpoch = BusinessDate.daysFromCivil(year: year, month: month, day: day)
    }

    /// Parses exactly `YYYY-MM-DD` with a real calendar day; nil otherwise.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = BusinessDate.digits(bytes[0..<4]),
              let month = BusinessDate.digits(bytes[5..<7]),
              let day = BusinessDate.digits(bytes[8..<10]) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    public static func < (a: BusinessDate, b: BusinessDate) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }

    public func adding(days: Int) -> BusinessDate { BusinessDate(daysSinceEpoch: daysSinceEpoch + days) }
    public func days(since other: BusinessDate) -> Int { daysSinceEpoch - other.daysSinceEpoch }

    public var components: (year: Int, month: Int, day: Int) { BusinessDate.civil(fromDays: daysSinceEpoch) }

    public var description: String {
        let (year, month, day) = components
        return BusinessDate.pad(year, 4) + "-" + BusinessDate.pad(month, 2) + "-" + BusinessDate.pad(day, 2)
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    static func digits(_ slice: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in slice {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days algorithms.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (month <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, month, day)
    }
}

/// A point in time as microseconds since the Unix epoch (UTC). Parsed from and rendered as
/// RFC 3339; the domain never reads a clock: "now" is always passed in.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) { self.microsecondsSinceEpoch = microsecondsSinceEpoch }
    public init(secondsSinceEpoch: Int64) { self.microsecondsSinceEpoch = secondsSinceEpoch * 1_000_000 }

    public static func < (a: Instant, b: Instant) -> Bool { a.microsecondsSinceEpoch < b.microsecondsSinceEpoch }

    public func adding(seconds: Int64) -> Instant { Instant(microsecondsSinceEpoch: microsecondsSinceEpoch + seconds * 1_000_000) }

    /// The UTC calendar date of this instant shifted by `offsetSeconds` (a time zone's offset).
    public func date(offsetSeconds: Int = 0) -> BusinessDate {
        // Floor, not truncate: -0.5 s is still 1969-12-31.
        let wholeSeconds = microsecondsSinceEpoch >= 0 ? microsecondsSinceEpoch / 1_000_000 : (microsecondsSinceEpoch - 999_999) / 1_000_000
        let seconds = wholeSeconds + Int64(offsetSeconds)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        return BusinessDate(daysSinceEpoch: Int(days))
    }

    /// Parses RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`/`z` accepted,
    /// leap second 60 accepted as 59 (we never need sub-second leap precision). Nil otherwise.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        guard b.count >= 20, let date = BusinessDate(String(decoding: b[0..<10], as: UTF8.self)),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let hour = BusinessDate.digits(b[11..<13]), let minute = BusinessDate.digits(b[14..<16]),
              let second = BusinessDate.digits(b[17..<19]),
              hour < 24, minute < 60, second <= 60 else { return nil }
        var index = 19
        var micros: Int64 = 0
        if b[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < b.count, b[index] >= 0x30, b[index] <= 0x39 { index += 1 }
            let fraction = b[start..<index]
            // RFC 3339 time-secfrac is "." 1*DIGIT: any length; digits past microseconds are dropped.
            guard !fraction.isEmpty else { return nil }
            var scale: Int64 = 100_000
            for digit in fraction.prefix(6) { micros += Int64(digit - 0x30) * scale; scale /= 10 }
        }
        guard index < b.count else { return nil }
        var offsetSeconds = 0
        switch b[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == b.count else { return nil }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == b.count, b[index + 3] == UInt8(ascii: ":"),
                  let offsetHours = BusinessDate.digits(b[(index + 1)..<(index + 3)]),
                  let offsetMinutes = BusinessDate.digits(b[(index + 4)..<(index + 6)]),
                  offsetHours < 24, offsetMinutes < 60 else { return nil }
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (b[index] == UInt8(ascii: "-") ? -1 : 1)
        default:
            return nil
        }
        let seconds = Int64(date.daysSinceEpoch) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetSeconds)
        microsecondsSinceEpoch = seconds * 1_000_000 + micros
    }

    /// RFC 3339 in UTC with microseconds: `2026-11-23T19:25:47.123456Z`.
    public var description: String {
        let seconds = microsecondsSinceEpoch >= 0 ? microsecondsSinceEpoch / 1_000_000 : (microsecondsSinceEpoch - 999_999) / 1_000_000
        let micros = Int(microsecondsSinceEpoch - seconds * 1_000_000)
        let date = BusinessDate(daysSinceEpoch: Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400))
        let secondOfDay = Int(seconds - Int64(date.daysSinceEpoch) * 86_400)
        return date.description + "T" + BusinessDate.pad(secondOfDay / 3600, 2) + ":" + BusinessDate.pad(secondOfDay / 60 % 60, 2)
            + ":" + BusinessDate.pad(secondOfDay % 60, 2) + "." + BusinessDate.pad(micros, 6) + "Z"
    }
}
