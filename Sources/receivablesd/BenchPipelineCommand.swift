import ArgumentParser
import Daemon

/// `receivablesd bench pipeline`: messages per second through the real seam against broker-only
/// and database-only baselines measured in the same run (see `PipelineBenchmark`).
struct BenchPipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Measure messages/s through decode → apply → commit → ack against broker and database baselines."
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Messages per measurement.") var messages = 5_000
    @Option(help: "Messages per database transaction (the pipeline's batch size).") var batchSize = 32
    @Option(help: "Distinct customers the invoices are spread over.") var customers = 200

    func run() async throws {
        guard messages > customers, batchSize > 0, customers > 0 else { throw ValidationError("need messages > customers > 0") }
        let configuration = try await connection.load()
        let benchmark = PipelineBenchmark(configuration: configuration, messages: messages, batchSize: batchSize, customers: customers)
        let figures: PipelineBenchmark.Figures
        do { figures = try benchmark.run { print("  \($0)") } } catch { throw CommandFailure("bench failed: \(error)") }
        func format(_ value: Double) -> String { String(Int(value.rounded())) }
        func ratio(_ value: Double, _ base: Double) -> String {
            base > 0 ? String(Double(Int(value / base * 1000)) / 1000) : "-"
        }
        print("""
            measurement                             msg/s   ratio to broker baseline   ratio to database baseline
            broker baseline (consume + ack)      \(format(figures.brokerPerSecond).leftPadded(8))   1.0                        \(ratio(figures.brokerPerSecond, figures.databasePerSecond))
            database baseline (INSERT, batched)  \(format(figures.databasePerSecond).leftPadded(8))   \(ratio(figures.databasePerSecond, figures.brokerPerSecond).leftPadded(3))                        1.0
            pipeline (batch \(String(batchSize).leftPadded(3)))                  \(format(figures.pipelinePerSecond).leftPadded(8))   \(ratio(figures.pipelinePerSecond, figures.brokerPerSecond).leftPadded(3))                        \(ratio(figures.pipelinePerSecond, figures.databasePerSecond))
            outbox publisher (events, confirms)  \(format(figures.publisherPerSecond).leftPadded(8))   \(ratio(figures.publisherPerSecond, figures.brokerPerSecond).leftPadded(3))                        \(ratio(figures.publisherPerSecond, figures.databasePerSecond))
            (\(figures.messages) messages; invoices also write a journal entry and three events each)
            """)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
