import Foundation
import Testing
import TestSupport

/// The unit file passes systemd's own checks (issue: `systemd-analyze verify` clean and
/// `systemd-analyze security --offline=true` rating "OK" or better), run against a copy whose
/// ExecStart names the binary just built (verify checks that the executable exists).
@Suite struct SystemdUnitTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func unitCopy() throws -> URL {
        let unit = try String(contentsOf: Self.repository.appendingPathComponent("systemd/receivablesd.service"), encoding: .utf8)
        guard let binary = ProcessInfo.processInfo.environment["RECEIVABLESD_BIN"] else {
            Issue.record("RECEIVABLESD_BIN is not set: run the tests through `make test`")
            throw CancellationError()
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = directory.appendingPathComponent("receivablesd.service")
        try unit.replacingOccurrences(of: "ExecStart=/usr/bin/receivablesd", with: "ExecStart=\(binary)")
            .write(to: copy, atomically: true, encoding: .utf8)
        return copy
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func verifyIsClean() throws {
        let unit = try unitCopy()
        let result = try Self.run(["verify", unit.path])
        #expect(result.status == 0, "systemd-analyze verify failed:\n\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify warned:\n\(result.output)")
    }

    @Test func securityRatingIsOKOrBetter() throws {
        let unit = try unitCopy()
        let result = try Self.run(["security", "--offline=true", "--no-pager", unit.path])
        guard let line = result.output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }) else {
            Issue.record("no exposure level in:\n\(result.output)")
            return
        }
        // "→ Overall exposure level for receivablesd.service: 1.2 OK 🙂"
        let rating = ["SAFE", "OK", "MEDIUM", "EXPOSED", "UNSAFE"].first { line.contains(" \($0)") }
        #expect(rating == "SAFE" || rating == "OK", "exposure rating is \(rating ?? "unknown"): \(line)")
    }
}
