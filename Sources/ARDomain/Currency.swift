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

    /// A currency of ISO 4217 list one, or (with `includingHistorical`) a withdrawn one of list three
    /// with its historical minor unit. Only bank statement parsing asks for historical codes: archives
    /// and old test files are written in DEM, FRF, NLG, ... The books never hold such money:
    /// everything the daemon books comes through `init?(code:)`, whose list equals `common.json`'s.
    public init?(code: String, includingHistorical: Bool) {
        if let active = Currency(code: code) {
            self = active
            return
        }
        guard includingHistorical, let digits = Currency.historicalMinorUnitDigitsByCode[code] else { return nil }
        self.code = code
        self.minorUnitDigits = digits
    }

    /// A withdrawn ISO 4217 code (list three): readable in a bank file, never bookable.
    public var isHistorical: Bool { Currency.minorUnitDigitsByCode[code] == nil }

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

    /// Withdrawn ISO 4217 codes (list three, "historic denominations") with the minor unit they had
    /// while they were current: the euro's legacy currencies (ITL, ESP, BEF, LUF, GRD, PTE had none;
    /// DEM, FRF, NLG, ATS, FIM, IEP had two), later euro joiners, their pegged microstate currencies,
    /// and other codes common in old statements. XEU (the ECU) had no minor unit in ISO 4217; ECU
    /// accounts and statements were kept in hundredths, so it is read with two.
    public static let historicalMinorUnitDigitsByCode: [String: Int] = {
        var table: [String: Int] = [:]
        let zero = "ADP BEF BYB BYR ESP GRD ITL LUF MGF PTE SML TPE TRL VAL"
        let two = """
            ADF ATS AZM BGL CSD CSK CYP DDM DEM EEK FIM FRF GHC HRK IEP LTL LVL MCF MRO MTL MZM NLG PLZ ROL RUR SDD SIT \
            SKK SRG STD SUR TMM VEB VEF XEU YUM ZMK ZWD
            """
        for (codes, digits) in [(zero, 0), (two, 2)] {
            for code in codes.split(separator: " ") {
                precondition(minorUnitDigitsByCode[String(code)] == nil, "\(code) is current, not historical")
                table[String(code)] = digits
            }
        }
        return table
    }()
}
