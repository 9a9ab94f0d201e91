import ARDomain
import Foundation
import Testing

@testable import BankFormats

/// Hostile, truncated and corrupted files: each must give one clean, positioned error; never a crash,
/// a hang or a partial result.
@Suite struct RobustnessTests {
    static let camtHead = """
        <?xml version="1.0"?>
        <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt><Id>S</Id>
        <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
        """

    static func camt(entryAmount: String, currency: String = "EUR") -> [UInt8] {
        Array((camtHead + "<Ntry><Amt Ccy=\"\(currency)\">\(entryAmount)</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry></Stmt></BkToCstmrStmt></Document>").utf8)
    }

    @Test func externalEntityIsRefused() {
        let xxe = """
            <?xml version="1.0"?>
            <!DOCTYPE Document [<!ENTITY e SYSTEM "file:///etc/hostname">]>
            <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt><Id>&e;</Id></Stmt></BkToCstmrStmt></Document>
            """
        let error = parseError(Array(xxe.utf8), format: .camt053)
        #expect(error?.message.contains("DOCTYPE") == true)
    }

    @Test func billionLaughsIsRefusedQuickly() {
        var doctype = "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            doctype += "<!ENTITY lol\(level) \"" + String(repeating: "&\(previous);", count: 10) + "\">"
        }
        doctype += "]>"
        let bomb = "<?xml version=\"1.0\"?>" + doctype + "<Document><BkToCstmrStmt><Stmt><Id>&lol9;</Id></Stmt></BkToCstmrStmt></Document>"
        #expect(parseError(Array(bomb.utf8), format: .camt053) != nil)
    }

    @Test func undeclaredEntityIsAnError() {
        let text = Self.camtHead + "<Ntry><Amt Ccy=\"EUR\">&x;</Amt></Ntry></Stmt></BkToCstmrStmt></Document>"
        #expect(parseError(Array(text.utf8)) != nil)
    }

    @Test func deepNestingIsBounded() {
        let text = Self.camtHead + "<Acct>" + String(repeating: "<a>", count: 500) + String(repeating: "</a>", count: 500) + "</Acct></Stmt></BkToCstmrStmt></Document>"
        let error = parseError(Array(text.utf8))
        #expect(error?.message.contains("deeper") == true)
    }

    @Test func truncatedFilesFailInEveryFormat() throws {
        for name in ["camt053_v08_batch_multi.xml", "bai2_multi_group.bai2", "mt940_ing_keywords.sta", "camt054_v04.xml"] {
            let bytes = try fixtureBytes(name)
            for cut in stride(from: bytes.count * 3 / 4, to: bytes.count - 12, by: 37) {
                #expect(parseError(Array(bytes[0..<cut])) != nil, "\(name) cut at \(cut) was accepted")
            }
        }
    }

    @Test(arguments: [
        ("1.001", "decimals"), ("12345678901234567.00", "exceeds"), ("1,00", "not a number"), ("-5.00", "not a number"),
        ("", "amount is empty"), ("1e3", "not a number"),
    ])
    func badCamtAmounts(amount: String, expected: String) throws {
        let error = try #require(parseError(Self.camt(entryAmount: amount)))
        #expect(error.message.contains(expected), "\(error)")
        guard case .element(let path, _) = error.position else {
            Issue.record("no element path in \(error)")
            return
        }
        #expect(path.contains("Ntry[1]"))
    }

    @Test func wrongCurrencyDigits() throws {
        #expect(parseError(Self.camt(entryAmount: "100.5", currency: "JPY"))?.message.contains("decimals") == true)
        #expect(parseError(Self.camt(entryAmount: "1.2345", currency: "KWD")) != nil)
        #expect(parseError(Self.camt(entryAmount: "1.10", currency: "XXX"))?.message.contains("unknown currency") == true)
        // Trailing zeros beyond the minor unit are exact and accepted.
        let statements = try BankFormats.parse(Self.camt(entryAmount: "10.500"))
        #expect(statements[0].entries[0].amount == money("10.50", "EUR"))
    }

    @Test func tenMegabyteLineIsRefusedWithItsLineNumber() {
        var bytes = Array(":20:X\n:25:Y\n".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "A"), count: 10 << 20)
        let error = parseError(bytes, format: .mt940)
        #expect(error?.position == .line(3))
        var bai2 = Array("01,A,B,240101,0000,1,,,2/\n16,".utf8)
        bai2 += [UInt8](repeating: UInt8(ascii: "1"), count: 10 << 20)
        #expect(parseError(bai2, format: .bai2)?.position == .line(2))
    }

    @Test func tenMegabyteXMLTextIsRefused() {
        var bytes = Array((Self.camtHead + "<Ntry><AddtlNtryInf>").utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "A"), count: 10 << 20)
        bytes += Array("</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>".utf8)
        #expect(parseError(bytes)?.message.contains("longer") == true)
    }

    @Test func hugeAndMalformedMT940Amounts() throws {
        let text = String(decoding: try fixtureBytes("mt940_ing_keywords.sta"), as: UTF8.self)
        for (original, replacement, expected) in [
            ("C1,56NTRF", "C99999999999999999,56NTRF", "exceeds"),
            ("C1,56NTRF", "C1,567NTRF", "decimals"),
            ("C1,56NTRF", "C1,5,6NTRF", "not a number"),
            ("C1,56NTRF", "C,NTRF", "not a number"),
            (":60F:C140219EUR", ":60F:C140219XYZ", "unknown currency"),
            (":60F:C140219EUR", ":60F:C140231EUR", "invalid date"),
        ] {
            let error = parseError(Array(text.replacingOccurrences(of: original, with: replacement).utf8))
            #expect(error?.message.contains(expected) == true, "\(replacement): \(String(describing: error))")
        }
    }

    @Test func corruptedBAI2() throws {
        let text = String(decoding: try fixtureBytes("bai2_multi_group.bai2"), as: UTF8.self)
        for (original, replacement, expected) in [
            ("16,175,100000", "16,175,10x000", "not a number"),
            ("16,175,100000,0", "16,175,100000,Q", "funds type"),
            ("16,175,", "16,1A5,", "type code"),
            ("03,2222222222,CAD", "03,2222222222,QQQ", "unknown currency"),
            ("49,7468,4/\n", "", "unexpected record"),
            ("16,175,100000", "16,175,99999999999999999999", "exceeds"),
        ] {
            let error = parseError(Array(text.replacingOccurrences(of: original, with: replacement).utf8))
            #expect(error?.message.contains(expected) == true, "\(replacement): \(String(describing: error))")
        }
    }

    @Test func emptyAndUnknownFiles() {
        #expect(parseError([])?.message == "file is empty")
        #expect(parseError(Array("hello world".utf8)) != nil)
        #expect(parseError(Array("<html></html>".utf8)) != nil)
        #expect(parseError(Array("<html></html>".utf8), format: .camt053) != nil)
        #expect(parseError([0xFF, 0xFE, 0x00, 0x01], format: .mt940) != nil)
        #expect(parseError([0xFF, 0xFE, 0x00, 0x01], format: .bai2) != nil)
    }

    @Test func inputSizeLimit() {
        let limits = BankParseLimits(maximumInputBytes: 10)
        #expect(throws: BankFormatError.self) { try BankFormats.parse(Array("01234567890".utf8), limits: limits) }
    }

    /// Every reproducer the fuzzers found stays here: each must give a clean result (accepted or a
    /// BankFormatError), in every format.
    @Test func regressionInputsNeverCrash() throws {
        for (name, bytes) in try fixtureFiles(in: "regressions") {
            for format in [nil] + BankFormat.allCases {
                do {
                    _ = try BankFormats.parse(bytes, format: format)
                } catch {
                    #expect(!error.message.isEmpty, "\(name)")
                }
            }
        }
    }
}

@Suite struct UnitTests {
    @Test func detection() {
        #expect(BankFormats.detectFormat(prefix: Array("\u{FEFF}\r\n01,A,B".utf8)) == .bai2)
        #expect(BankFormats.detectFormat(prefix: Array("{1:F01X}{2:O940}{4:\r\n:20:X".utf8)) == .mt940)
        #expect(BankFormats.detectFormat(prefix: Array("ABNANL2A\r\n940\r\nABNANL2A\r\n:20:ABN\r\n".utf8)) == .mt940)
        #expect(BankFormats.detectFormat(prefix: Array("<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.04'>".utf8)) == .camt053)
        #expect(BankFormats.detectFormat(prefix: Array("<x:Document xmlns:x='y'><x:BkToCstmrDbtCdtNtfctn>".utf8)) == .camt054)
        #expect(BankFormats.detectFormat(prefix: Array("PDF-1.4".utf8)) == nil)
    }

    @Test func creditorReferences() {
        #expect(CreditorReference.isValidRF("RF18539007547034"))
        #expect(!CreditorReference.isValidRF("RF19539007547034"))
        #expect(CreditorReference.firstRF(in: "pay RF18 5390 0754 7034 thanks") == "RF18539007547034")
        #expect(CreditorReference.firstRF(in: "ref:rf18539007547034.") == "RF18539007547034")
        #expect(CreditorReference.firstRF(in: "SURF18539007547034") == nil)
    }

    @Test func sha256KnownAnswers() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA256Digest.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256Digest.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(hex(SHA256Digest.hash(long)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func digestRuleIsStable() {
        var identity = EntryIdentity()
        let amount = money("10.00", "EUR")
        let first = identity.digestID(
            format: .mt940, account: "A", amount: amount, creditDebit: .credit, bookingDate: date("2024-01-02"),
            valueDate: date("2024-01-02"), transactionCode: "NTRF", customerReference: nil, remittanceInfo: "x")
        let second = identity.digestID(
            format: .mt940, account: "A", amount: amount, creditDebit: .credit, bookingDate: date("2024-01-02"),
            valueDate: date("2024-01-02"), transactionCode: "NTRF", customerReference: nil, remittanceInfo: "x")
        #expect(first != second)
        // Pinned: changing the rule would re-identify every stored booking.
        #expect(first == "sha256:" + String(SHA256Hex.of("mt940\u{1F}A\u{1F}EUR\u{1F}credit\u{1F}1000\u{1F}2024-01-02\u{1F}2024-01-02\u{1F}NTRF\u{1F}\u{1F}x\u{1F}0").prefix(32)))
    }

    @Test(arguments: [
        ("1234,56", UInt8(ascii: ","), "EUR", Int64(123_456)), ("1234,", UInt8(ascii: ","), "EUR", 123_400),
        ("0001,5", UInt8(ascii: ","), "EUR", 150), ("12.345", UInt8(ascii: "."), "KWD", 12_345), ("7", UInt8(ascii: "."), "JPY", 7),
        (",5", UInt8(ascii: ","), "EUR", 50),
    ])
    func decimalAmounts(text: String, separator: UInt8, code: String, expected: Int64) throws {
        #expect(try BankAmount.parseDecimal(text.utf8, separator: separator, currency: Currency(code: code)!) == expected)
    }
}

enum SHA256Hex {
    static func of(_ text: String) -> String { SHA256Digest.hash(Array(text.utf8)).map { String(format: "%02x", $0) }.joined() }
}
