import ARContract
import ArgumentParser
import Daemon
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd bench e2e`: payments published at steady rates into 1, 2 … instances, confirmed
/// payments per second and publish → `payment.confirmed` latency, against broker and database
/// baselines of the same run (see `EndToEndBenchmark`). Table on stdout, everything as JSON.
/// Exit 1 when a payment was not confirmed or `verify` fails afterwards.
struct BenchEndToEndCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "End to end: payments/s and publish → payment.confirmed latency at 1 and 2 instances, against same-run broker and database baselines."
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Phases as payments/s offered, 0 = as fast as confirmed (5,000 in flight at most).") var rates = "100,500,0"
    @Option(help: "Seconds per phase.") var seconds = 20
    @Option(help: "Instance counts to run.") var instances = "1,2"
    @Option(help: "Consumer threads per instance (the daemon's default).") var consumers = 2
    @Option(help: "Customers (each with a large open invoice; payments are spread over them).") var customers = 2_000
    @Option(help: "Seed of the traffic (same seed, same messages).") var seed: UInt64 = 7
    @Flag(help: "Mix new invoices and customer updates into the stream (one message in five).") var mixed = false
    @Option(help: "Where the JSON results go.") var output = "bench-e2e.json"

    func run() async throws {
        let counts = instances.split(separator: ",").compactMap { Int($0) }
        let phases = rates.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...8).contains($0) }), !phases.isEmpty, phases.allSatisfy({ $0 >= 0 }),
              seconds > 0, customers > 0, consumers > 0 else {
            throw ValidationError("--instances is a list of 1…8, --rates a list of payments/s (0: unpaced), --seconds, --customers and --consumers positive")
        }
        let configuration = try await connection.load()
        let benchmark = EndToEndBenchmark(configuration: configuration, executable: BenchPartitionsCommand.ownPath(), customers: customers,
                                          seed: seed, seconds: seconds, rates: phases, consumersPerInstance: consumers, mixed: mixed)
        let report: EndToEndBenchmark.Report
        do { report = try benchmark.run(instances: counts) { print("  \($0)") } } catch { throw CommandFailure("bench failed: \(error)") }

        let base = report.baselines
        print("")
        print("baselines (\(base.messages) payments of \(base.bodyBytes) bytes, same run):")
        print("  broker   publish+confirm → consume → ack   \(Int(base.brokerPerSecond))/s   p50 \(base.brokerLatency.p50) ms  p99 \(base.brokerLatency.p99) ms")
        print("  database one INSERT per message, \(base.databaseBatch)/commit   \(Int(base.databasePerSecond))/s")
        print("")
        print("instances  offered/s  confirmed/s  ×lower baseline  ×broker  p50 ms  p99 ms  p99.9 ms  max ms  RSS MiB start→warm→end (max)  CPU ms/1k")
        var oneInstance: [Int: Double] = [:]
        var failed = false
        for run in report.runs {
            for phase in run.phases {
                if run.instances == counts[0] { oneInstance[phase.offeredPerSecond] = phase.confirmedPerSecond }
                let offered = phase.offeredPerSecond > 0 ? String(phase.offeredPerSecond) : "max"
                let cells = [
                    String(run.instances).leftPadded(9), offered.leftPadded(9), String(Int(phase.confirmedPerSecond)).leftPadded(11),
                    Self.ratio(phase.confirmedPerSecond, base.lower).leftPadded(15), Self.ratio(phase.confirmedPerSecond, base.brokerPerSecond).leftPadded(7),
                    String(phase.latency.p50).leftPadded(6), String(phase.latency.p99).leftPadded(6), String(phase.latency.p999).leftPadded(8),
                    String(phase.latency.maximum).leftPadded(6),
                    "\(phase.residentStartKiB / 1024)→\(phase.residentWarmKiB / 1024)→\(phase.residentEndKiB / 1024) (\(phase.residentMaxKiB / 1024))".leftPadded(29),
                    String(Int(phase.cpuMillisecondsPerThousand)).leftPadded(9),
                ]
                print(cells.joined(separator: "  "))
                if phase.confirmed < phase.published { failed = true; print("  !! \(phase.published - phase.confirmed) payments not confirmed") }
            }
            if !run.verifyViolations.isEmpty { failed = true; print("  !! verify: \(run.verifyViolations.prefix(5).joined(separator: "; "))") }
            if run.deadLetters > 0 { failed = true; print("  !! \(run.deadLetters) dead letters") }
        }
        print("")
        print("CPU ms per 1,000 payments (where a payment's CPU goes; 2 cores give 2,000 ms per second)")
        print("instances  offered/s    daemon  PostgreSQL  RabbitMQ  load generator     total")
        for run in report.runs {
            for phase in run.phases {
                let parts = [phase.cpuMillisecondsPerThousand, phase.postgresCPUPerThousand, phase.brokerCPUPerThousand, phase.generatorCPUPerThousand]
                let total = parts.allSatisfy { $0 != nil } ? parts.compactMap { $0 }.reduce(0, +) : nil
                let cells = [String(run.instances).leftPadded(9), (phase.offeredPerSecond > 0 ? String(phase.offeredPerSecond) : "max").leftPadded(9)]
                    + [parts[0], parts[1], parts[2]].map { ($0.map { String(Int($0)) } ?? "?").leftPadded(8) }
                    + [(parts[3].map { String(Int($0)) } ?? "?").leftPadded(14), (total.map { String(Int($0)) } ?? "?").leftPadded(8)]
                print(cells.joined(separator: "  "))
            }
        }
        for run in report.runs where run.instances != counts[0] {
            for phase in run.phases where phase.offeredPerSecond == 0 {
                print("\(run.instances) instances unpaced: \(Self.ratio(phase.confirmedPerSecond, oneInstance[0] ?? 0)) × \(counts[0]) instance(s)")
            }
        }
        print("verify after every run: \(report.runs.allSatisfy { $0.verifyViolations.isEmpty } ? "passes" : "FAILS")")
        try Self.json(report, seed: seed, seconds: seconds, mixed: mixed, consumers: consumers).write(to: output)
        print("results: \(output)")
        if failed { throw ExitCode(1) }
    }

    static func ratio(_ value: Double, _ base: Double) -> String {
        base > 0 ? String(Double(Int((value / base * 100).rounded())) / 100) : "-"
    }

    static func json(_ report: EndToEndBenchmark.Report, seed: UInt64, seconds: Int, mixed: Bool, consumers: Int) -> String {
        func number(_ value: some Numeric & LosslessStringConvertible) -> JSONValue { .number(String(value)) }
        func ratioValue(_ value: Double, _ base: Double) -> JSONValue { base > 0 ? .number(ratio(value, base)) : .null }
        func object(_ fields: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(fields)) }
        func latency(_ l: LatencySummary) -> JSONValue {
            object([("samples", number(l.samples)), ("p50_ms", number(l.p50)), ("p99_ms", number(l.p99)), ("p999_ms", number(l.p999)),
                    ("max_ms", number(l.maximum))])
        }
        let base = report.baselines
        let runs: [JSONValue] = report.runs.map { run in
            let phases: [JSONValue] = run.phases.map { p in
                object([
                    ("offered_per_second", number(p.offeredPerSecond)), ("seconds", number(p.seconds)), ("published", number(p.published)),
                    ("confirmed", number(p.confirmed)), ("other_messages", number(p.otherMessages)),
                    ("confirmed_per_second", number(Int(p.confirmedPerSecond))), ("latency", latency(p.latency)), ("latency_until_applied", latency(p.untilApplied)), ("latency_after_applied", latency(p.afterApplied)),
                    ("p99_ms_by_second", .array(p.p99BySecond.map { number($0) })),
                    ("postgres_cpu_ms_per_thousand", p.postgresCPUPerThousand.map { number(Int($0)) } ?? .null),
                    ("broker_cpu_ms_per_thousand", p.brokerCPUPerThousand.map { number(Int($0)) } ?? .null),
                    ("load_generator_cpu_ms_per_thousand", p.generatorCPUPerThousand.map { number(Int($0)) } ?? .null),
                    ("ratio_to_lower_baseline", ratioValue(p.confirmedPerSecond, base.lower)),
                    ("ratio_to_broker", ratioValue(p.confirmedPerSecond, base.brokerPerSecond)),
                    ("resident_kib", object([("start", number(p.residentStartKiB)), ("warm", number(p.residentWarmKiB)),
                                             ("end", number(p.residentEndKiB)), ("max", number(p.residentMaxKiB)),
                                             ("samples", .array(p.residentSamplesKiB.map { number($0) }))])),
                    ("cpu_ms_per_thousand", number(Int(p.cpuMillisecondsPerThousand))),
                ])
            }
            return object([("instances", number(run.instances)), ("phases", .array(phases)),
                           ("verify_violations", .array(run.verifyViolations.map(JSONValue.string))), ("dead_letters", number(run.deadLetters))])
        }
        let document = object([
            ("seed", number(seed)), ("seconds_per_phase", number(seconds)), ("mixed", .bool(mixed)), ("consumers_per_instance", number(consumers)),
            ("baselines", object([("messages", number(base.messages)), ("body_bytes", number(base.bodyBytes)),
                                  ("broker_per_second", number(Int(base.brokerPerSecond))), ("broker_latency", latency(base.brokerLatency)),
                                  ("database_per_second", number(Int(base.databasePerSecond))), ("database_batch", number(base.databaseBatch))])),
            ("runs", .array(runs)),
        ])
        return JSONSerializer.serializeToString(document) + "\n"
    }
}

extension String {
    func write(to path: String) throws {
        guard let file = fopen(path, "w") else { throw CommandFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(file) }
        fputs(self, file)
    }
}
