import Foundation
import Testing

/// `receivablesd bank parse` on statements as banks write them (issue 14): read with a warning
/// where the file is fine but cannot be fully checked, refused with the line where an entry would
/// be lost.
@Suite struct BankParseBankDialectTests {
    func parse(_ text: String, _ arguments: [String] = []) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runBankParse(text, arguments)
    }

    @Test func deutscheMarkIsReadWithItsMinorUnitAndFlagged() async throws {
        let result = try await parse("""
            :20:9812310001
            :25:50070010/0123456789
            :28C:252/1
            :60F:C981230DEM48250,00
            :61:981231C12760,50NTRFNONREF//98365K1
            :86:051?00UEBERWEISUNG?20RECHNUNG 98-1107
            :62F:C981231DEM61010,50
            -
            """)
        #expect(result.status == 0, "\(result.stderr)")
        let entry = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(entry?["currency"] as? String == "DEM" && entry?["amount"] as? String == "12760.50")
        #expect(result.stderr.contains("DEM is a withdrawn ISO 4217 currency"), "\(result.stderr)")
    }

    @Test func noClosingBalanceAtTheEndIsReadWithAWarningAndRefusedWhenChecked() async throws {
        let text = """
            :20:STARTUMS
            :25:37040044/0532013000
            :28C:0
            :60F:C240311EUR2134,19
            :61:2403110311CR1190,00N051NONREF
            :86:166?00GUTSCHR. UEBERWEISUNG?20EREF+RE-2024-0117
            """
        let read = try await parse(text)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.split(separator: "\n").count == 1)
        #expect(read.stderr.contains("no closing balance"), "\(read.stderr)")
        let refused = try await parse(text, ["--balance-check", "error"])
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.contains("line 1") && refused.stderr.contains("closing balance"), "\(refused.stderr)")
    }

    @Test func anUnknownTagWhereAnEntryBelongsIsRefusedWithItsLine() async throws {
        let result = try await parse("""
            :20:STMT1
            :25:NL91ABNA0417164300
            :28C:1/1
            :60F:C240101EUR100,00
            :61:240101C10,00NTRFNONREF
            :86:one
            :16:240101C20,00NTRFNONREF
            :86:two
            :62F:C240101EUR130,00
            -
            """, ["--balance-check", "off"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty, "a refused file prints no entries")
        #expect(result.stderr.contains("line 7") && result.stderr.contains(":16:"), "\(result.stderr)")
    }
}
