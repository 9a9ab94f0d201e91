import AMQPClient
import ArgumentParser
import Daemon
import Partitioning
import Store

/// `receivablesd partitions`: where the partitioned intake stands (docs/partitioning.md): per
/// partition the numbers routed and applied, the queue's ready messages and consumers, which
/// consumer thread holds it; the members and whether some instance routes.
struct PartitionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "partitions",
                                                    abstract: "Partitions: routed/applied numbers, queue depth, consumers, owners.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let configuration = try await connection.load()
        let store = Store(try await connection.database())
        do {
            let stored = try store.partitionLayout()
            let layout = PartitionLayout(customerPartitions: stored ?? configuration.topology.partitions,
                                         queuePrefix: configuration.topology.partitionQueuePrefix)
            let progress = Dictionary(try store.partitionProgress().map { ($0.queue, $0) }, uniquingKeysWith: { first, _ in first })
            let members = try store.liveMembers(leaseMilliseconds: configuration.partitionLeaseMilliseconds)
            let broker = try AMQPConnection(configuration.broker)
            defer { broker.close() }
            var rows: [[String]] = []
            for queue in layout.slots.map(layout.queueName) {
                let status = try broker.queueStatus(queue)
                let owner = members.first { $0.holds.contains(queue) }?.memberID ?? "-"
                let p = progress[queue]
                rows.append([queue, String(p?.routed ?? 0), String(p?.applied ?? 0), String(p?.backlog ?? 0),
                             status.map { String($0.messageCount) } ?? "missing", status.map { String($0.consumerCount) } ?? "-",
                             String(p?.skipped ?? 0), owner])
            }
            print(Table.render(["PARTITION", "ROUTED", "APPLIED", "BACKLOG", "READY", "CONSUMERS", "SKIPPED", "HELD BY"], rows))
            let intake = try broker.queueStatus(configuration.topology.intakeQueue)
            print("""
                layout: \(layout.customerPartitions) customer partitions + bank\(stored == nil ? " (nothing routed yet)" : "")\
                \(stored != nil && stored != configuration.topology.partitions ? "; configured \(configuration.topology.partitions): changes once the partitions are drained" : "")
                intake \(configuration.topology.intakeQueue): \(intake.map { "\($0.messageCount) ready, \($0.consumerCount) consumer(s)" } ?? "missing"); \
                router: \(try store.routerLockHeld() ? "an instance routes" : "NO instance routes")
                \(members.count) live consumer thread(s): \(members.map { "\($0.memberID) (\($0.holds.count))" }.joined(separator: ", "))
                """)
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}
