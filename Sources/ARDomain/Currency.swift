/// An ISO 4217 alphabetic currency code together with its number of minor-unit digits.
///
/// Only currencies in `Currency.minorUnitDigitsByCode` exist: a code not in the table is
/// `unknown_currency` at the boundary, never guessed.
public struct Currency: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let code: String
    public let minorUnitDigits: Int

    public init?(code: String) {
        guard let digits = Currency.minorUnitDigitsByCode[code] else { return nil }
        self.code = code
        self.minorUnitDigits = digits
    }

    public var description: String { code }
    public static func < (a: Currency, b: Currency) -> Bool { a.code < b.code }

    /// 10^minorUnitDigits: minor units in one major unit.
    public var minorUnitsPerMajor: Int64 {
        var factor: Int64 = 1
        for _ in 0..<minorUnitDigits { factor *= 10 }
        return factor
    }

    /// ISO 4217 active codes (list one, 2024) with their minor units. Funds codes and
    /// precious metals (XAU, XDR, ...) have no minor unit and are not money we invoice in.
    public static let minorUnitDigitsByCode: [String: Int] = {
        var table: [String: Int] = [:]
        let zero = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
        let three = "BHD IQD JOD KWD LYD OMR TND"
        let four = "CLF UYW"
        let two = """
            AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP \
            BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR \
            FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW \
            KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN \
            NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD \
            SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU \
            UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
            """
        for (codes, digits) in [(zero, 0), (two, 2), (three, 3), (four, 4)] {
            for code in codes.split(separator: " ") { table[String(code)] = digits }
        }
        return table
    }()
}
