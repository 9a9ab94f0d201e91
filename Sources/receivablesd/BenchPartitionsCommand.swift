import ArgumentParser
import Daemon
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd bench partitions`: one long book into 1, 2, 3 … instances (see
/// `PartitionBenchmark`); messages/s against the one-instance run of the same invocation, and
/// whether every run's books equal one instance's. Exit 1 when they differ.
struct BenchPartitionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions",
        abstract: "Play one book into 1, 2, 3 … instances: throughput ratio to one instance, and whether the books are identical."
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Customers in the book (each with 9–16 messages).") var customers = 400
    @Option(help: "Instance counts to run, the first is the baseline.") var instances = "1,2"
    @Option(help: "Consumer threads per instance.") var consumers = 1
    @Option(help: "Seed of the book (same seed, same book).") var seed: UInt64 = 13
    @Option(help: "Play the whole instance list this many times, interleaved (the figures are medians).") var rounds = 2

    func run() async throws {
        let counts = instances.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...8).contains($0) }), customers > 0, consumers > 0 else {
            throw ValidationError("--instances is a list of 1…8, e.g. 1,2,3; --customers and --consumers positive")
        }
        let configuration = try await connection.load()
        let benchmark = PartitionBenchmark(configuration: configuration, executable: Self.ownPath(), customers: customers, seed: seed,
                                           consumersPerInstance: consumers)
        let runs: [PartitionBenchmark.Run]
        let sequence = Array((0..<max(1, rounds)).map { _ in counts }.joined())
        do { runs = try benchmark.run(instances: sequence) { print("  \($0)") } } catch { throw CommandFailure("bench failed: \(error)") }
        // Medians per instance count: the machine is shared, and rounds interleave the counts so
        // a disturbance hits them alike.
        func median(_ count: Int) -> Double {
            let rates = runs.filter { $0.instances == count }.map(\.perSecond).sorted()
            return rates.isEmpty ? 0 : rates.count % 2 == 1 ? rates[rates.count / 2] : (rates[rates.count / 2 - 1] + rates[rates.count / 2]) / 2
        }
        let base = median(counts[0])
        print("instances   msg/s (median of \(max(1, rounds)))   ratio to \(counts[0]) instance(s)   books vs the first run")
        for count in counts {
            let ratio = base > 0 ? String(Double(Int((median(count) / base * 100).rounded())) / 100) : "-"
            let differing = Set(runs.filter { $0.instances == count }.flatMap(\.differingCustomers)).sorted()
            let books = differing.isEmpty ? "identical" : "DIFFER (\(differing.prefix(5).joined(separator: ", ")))"
            let all = runs.filter { $0.instances == count }.map { String(Int($0.perSecond.rounded())) }.joined(separator: ", ")
            print("\(String(count).leftPadded(9))   \(String(Int(median(count).rounded())).leftPadded(6)) (\(all))   \(ratio.leftPadded(12))   \(books)")
        }
        print("(\(runs.first?.messages ?? 0) messages, \(customers) customers, \(consumers) consumer thread(s) per instance, \(configuration.topology.partitions) partitions)")
        if runs.contains(where: { !$0.differingCustomers.isEmpty }) { throw ExitCode(1) }
    }

    /// This binary: the instances are `<it> serve`.
    static func ownPath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
