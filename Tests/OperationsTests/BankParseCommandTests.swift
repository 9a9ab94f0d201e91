import Foundation
import Testing
import TestSupport

/// `receivablesd bank parse` as a user runs it: JSON lines on stdout, a summary on stderr, and
/// what a statement that does not add up does under each --balance-check mode.
@Suite struct BankParseCommandTests {
    static let statement = """
        :20:STMT-1
        :25:NL91ABNA0417164300
        :28C:1/1
        :60F:C260101EUR100,00
        :61:2601020102C250,00NTRFEREF-1//BANK-1
        :86:/EREF/INV-2026-0001/REMI/Invoice INV-2026-0001
        :61:2601030103D40,50NTRFNONREF//BANK-2
        :86:Bank charges
        :62F:C260103EUR%@
        -
        """

    func run(_ closing: String, _ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runBankParse(String(format: Self.statement, closing), arguments)
    }

    @Test func balancedStatementPrintsEntriesAndTotals() async throws {
        let result = try await run("309,50", [])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(first?["amount"] as? String == "250.00" && first?["credit_debit"] as? String == "credit" && first?["currency"] as? String == "EUR")
        #expect(first?["end_to_end_id"] as? String == "INV-2026-0001")
        #expect(result.stderr.contains("EUR: 1 credits 250.00, 1 debits 40.50"), "\(result.stderr)")
        #expect(!result.stderr.contains("warning"))
    }

    @Test func unbalancedStatementWarnsByDefaultAndFailsWhenAskedTo() async throws {
        let warned = try await run("999,99", [])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stdout.split(separator: "\n").count == 2)
        #expect(warned.stderr.contains("warning: statement STMT-1") && warned.stderr.contains("309.50"), "\(warned.stderr)")

        let refused = try await run("999,99", ["--balance-check", "error"])
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty, "a refused file prints no entries")
        #expect(refused.stderr.contains("closing balance") && refused.stderr.contains("line"), "\(refused.stderr)")

        let unchecked = try await run("999,99", ["--balance-check", "off"])
        #expect(unchecked.status == 0 && !unchecked.stderr.contains("warning"), "\(unchecked.stderr)")
    }

    @Test func malformedFileFailsWithOnePositionedError() async throws {
        let result = try await run("309,50X", [])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("line"), "\(result.stderr)")
    }
}

/// `receivablesd bank parse [arguments] FILE` on `text` (written with CRLF line ends, as banks do).
func runBankParse(_ text: String, _ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    guard let binary = ProcessInfo.processInfo.environment["RECEIVABLESD_BIN"] else {
        Issue.record("RECEIVABLESD_BIN is not set: run the tests through `make test`")
        throw CancellationError()
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bank-parse-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/statement.sta"
    try text.replacingOccurrences(of: "\n", with: "\r\n").write(toFile: file, atomically: true, encoding: .utf8)
    let child = try ChildProcess(label: "bank-parse", executable: binary, arguments: ["bank", "parse"] + arguments + [file],
                                 environment: [:], logDirectory: directory)
    let status = await child.wait(timeout: .seconds(30)) ?? -1
    return (status, child.stdout, child.stderr)
}
