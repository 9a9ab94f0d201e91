import ARDomain
import ArgumentParser
import BankFormats
import Foundation

/// `receivablesd bench bank`: parse throughput and peak memory per statement format.
///
/// For each format it writes a large generated statement file, then runs one child process per
/// measurement (itself, re-executed with the hidden `--child` option) so that each reports its own
/// peak RSS (`getrusage` `ru_maxrss`): a baseline that merely reads the bytes and counts line breaks
/// and `<` (the floor any parser pays), and the streaming parse. It prints MB/s for both, their ratio,
/// and peak RSS; the median of `--runs` runs is reported.
struct BenchBankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bank",
        abstract: "Measure bank statement parsing: MB/s against a read baseline, and peak RSS."
    )

    @Option(help: "Size of each generated file in MB.")
    var megabytes: Int = 100

    @Option(help: "Runs per measurement (the median is reported).")
    var runs: Int = 3

    @Option(help: "Directory for the generated files (removed afterwards).")
    var directory: String = NSTemporaryDirectory()

    @Option(help: "Only these formats (comma-separated).")
    var formats: String = "camt.053,camt.054,bai2,mt940"

    @Flag(help: "Keep the generated files (for profiling or cross-checking).")
    var keepFiles = false

    @Option(help: .hidden) var child: String?
    @Option(help: .hidden) var childFormat: String?
    @Option(help: .hidden) var childFile: String?

    func run() throws {
        if let child, let childFormat, let childFile, let format = BankFormat(rawValue: childFormat) {
            try runChild(mode: child, format: format, path: childFile)
            return
        }
        let selected = formats.split(separator: ",").compactMap { BankFormat(rawValue: String($0)) }
        guard !selected.isEmpty, megabytes > 0, runs > 0 else { throw ValidationError("nothing to measure") }
        print("format      size MB  baseline MB/s  parse MB/s  ratio  entries   baseline RSS MB  parse RSS MB")
        for format in selected {
            let path = (directory as NSString).appendingPathComponent("bench-bank-\(getpid())-\(format.rawValue)")
            let entries = try BenchStatementGenerator.write(format: format, bytes: megabytes << 20, path: path)
            defer { if !keepFiles { unlink(path) } }
            var baselines: [ChildReport] = []
            var parses: [ChildReport] = []
            for _ in 0..<runs {
                baselines.append(try spawnChild(mode: "baseline", format: format, path: path))
                parses.append(try spawnChild(mode: "parse", format: format, path: path))
            }
            let baseline = median(baselines)
            let parse = median(parses)
            guard parse.entries == entries else {
                throw ValidationError("\(format.rawValue): parsed \(parse.entries) entries, generated \(entries)")
            }
            let megabytesRead = Double(baseline.bytes) / 1_048_576
            let baselineRate = megabytesRead / baseline.seconds
            let parseRate = megabytesRead / parse.seconds
            print(
                pad(format.rawValue, 10), pad(fixed(megabytesRead, 1), 8), pad(fixed(baselineRate, 0), 14),
                pad(fixed(parseRate, 1), 11), pad(fixed(baselineRate / parseRate, 1) + "x", 6), pad(String(entries), 9),
                pad(fixed(Double(baseline.maxRSSKilobytes) / 1024, 1), 16), pad(fixed(Double(parse.maxRSSKilobytes) / 1024, 1), 13))
        }
    }

    private struct ChildReport: Decodable {
        var seconds: Double
        var bytes: Int
        var entries: Int
        var maxRSSKilobytes: Int
    }

    private func median(_ reports: [ChildReport]) -> ChildReport {
        let sorted = reports.sorted { $0.seconds < $1.seconds }
        var middle = sorted[sorted.count / 2]
        middle.maxRSSKilobytes = reports.map(\.maxRSSKilobytes).max() ?? middle.maxRSSKilobytes
        return middle
    }

    private func spawnChild(mode: String, format: BankFormat, path: String) throws -> ChildReport {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = Array(CommandLine.arguments.dropFirst()) + [
            "--child", mode, "--child-format", format.rawValue, "--child-file", path,
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("child \(mode) \(format.rawValue) exited with \(process.terminationStatus)")
        }
        return try JSONDecoder().decode(ChildReport.self, from: data)
    }

    private func runChild(mode: String, format: BankFormat, path: String) throws {
        let clock = ContinuousClock()
        let start = clock.now
        var bytes = 0
        var entries = 0
        if mode == "baseline" {
            // Read and "tokenise": count line breaks and '<', the least work any of the parsers does.
            let descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else { throw ValidationError("cannot open \(path)") }
            defer { close(descriptor) }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var tokens = 0
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                bytes += count
                buffer.withUnsafeBufferPointer { pointer in
                    for index in 0..<count where pointer[index] == 0x0A || pointer[index] == 0x3C { tokens += 1 }
                }
            }
            entries = tokens >= 0 ? 0 : 1
        } else {
            var attributes = stat()
            guard stat(path, &attributes) == 0 else { throw ValidationError("cannot stat \(path)") }
            bytes = Int(attributes.st_size)
            _ = try BankFileReader.parse(path: path, format: format, onEntry: { _ in entries += 1 }, onStatement: { _ in })
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("{\"seconds\":\(seconds),\"bytes\":\(bytes),\"entries\":\(entries),\"maxRSSKilobytes\":\(usage.ru_maxrss)}")
    }

    private func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// Deterministic statements for the benchmark: realistic field sizes, balances that add up.
enum BenchStatementGenerator {
    /// Writes statements of 1,000 entries each until the file reaches `bytes`; returns the entry count.
    static func write(format: BankFormat, bytes: Int, path: String) throws -> Int {
        guard let file = fopen(path, "w") else { throw ValidationError("cannot create \(path)") }
        var writer = BankStatementWriter(format: format)
        var written = 0
        var entries = 0
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        var writeFailed = false
        func emit(_ text: String) {
            var text = text
            let count = text.withUTF8 { fwrite($0.baseAddress, 1, $0.count, file) }
            if count != text.utf8.count { writeFailed = true }
            written += count
        }
        emit(writer.begin())
        var statementNumber = 0
        while written < bytes, !writeFailed {
            statementNumber += 1
            let statement = makeStatement(number: statementNumber, format: format, seed: &seed)
            entries += statement.entries.count
            emit(writer.write(statement))
        }
        emit(writer.end())
        guard fclose(file) == 0, !writeFailed else { throw ValidationError("cannot write \(path)") }
        return entries
    }

    private static func next(_ seed: inout UInt64) -> UInt64 {
        seed &+= 0x9E37_79B9_7F4A_7C15
        var mixed = seed
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    static func makeStatement(number: Int, format: BankFormat, seed: inout UInt64) -> BankStatement {
        let currency = Currency(code: "EUR")!
        let date = BankDate(year: 2024, month: 1 + number % 12, day: 1 + number % 28)!
        let opening = Money(minorUnits: Int64(next(&seed) % 10_000_000), currency: currency)
        var running = opening
        var entries: [BankEntry] = []
        for index in 0..<1000 {
            let amount = Money(minorUnits: Int64(1 + next(&seed) % 500_000), currency: currency)
            let direction: CreditDebit = next(&seed) % 3 == 0 ? .debit : .credit
            running += direction == .credit ? amount : -amount
            entries.append(
                BankEntry(
                    entryID: "B\(number)X\(index)", statementID: "STMT\(number)", account: "DE89370400440532013000",
                    creditDebit: direction, amount: amount, bookingDate: date, valueDate: date,
                    remittanceInfo: "Invoice INV-\(number)-\(index) customer order \(next(&seed) % 1_000_000) thank you",
                    debtorName: "Customer \(index % 97) GmbH & Co. KG", debtorAccount: "DE02120300000000202051",
                    endToEndID: "E2E\(number)-\(index)"))
        }
        return BankStatement(
            format: format, statementID: "STMT\(number)", sequenceNumber: String(number), account: "DE89370400440532013000",
            currency: currency, openingBalance: BankBalance(amount: opening, date: date),
            closingBalance: BankBalance(amount: running, date: date), entries: entries, entryCount: entries.count)
    }
}
