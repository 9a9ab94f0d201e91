import Daemon
import Partitioning

/// `check-config`'s account of the partitioned topology (docs/partitioning.md).
enum TopologyExplanation {
    static func lines(_ c: DaemonConfiguration, customers: [String]) -> [String] {
        let t = c.topology
        let layout = PartitionLayout(customerPartitions: t.partitions, queuePrefix: t.partitionQueuePrefix)
        let kind = t.workQueueType == "quorum" ? "quorum, delivery limit \(t.deliveryLimit)" : "classic"
        let first = layout.queueName(.customers(0)), last = layout.queueName(.customers(t.partitions - 1))
        var lines = [
            "topology: \(t.inboundExchange) (topic, routing key = type) → \(t.intakeQueue) (\(kind), single active consumer) "
                + "→ router (one instance at a time) → \(t.partitionExchange) (direct) → \(t.partitions) customer partitions "
                + "\(first) … \(last) + \(layout.queueName(.bank)) (\(kind), single active consumer, dead letters to \(t.deadLetterExchange)); "
                + "events=\(t.eventsExchange) dead-letter queue=\(t.deadLetterQueue)",
            "partition key: data.customer_id, else the customer of the invoice/payment id the message names (as routed before), "
                + "else subject, else that id; bank.* and reconciliation.resolved → \(layout.queueName(.bank)); "
                + "partition = SHA-256(key)[0..<8] mod \(t.partitions)",
            "partition consumers: \(c.consumers) thread(s) here; the \(layout.slots.count) partitions are shared equally by the threads of all "
                + "live instances (lease \(c.partitionLeaseMilliseconds / 1000) s), one consumer per partition, applied in the router's order; "
                + "prefetch \(c.prefetch) per partition, router batch \(c.routerBatchSize)",
            "upgrade: the single work queue of older releases (\(t.workQueue)) is unbound, drained into the partitions and deleted when found",
        ]
        for customer in customers {
            lines.append("customer \(customer) → \(layout.queueName(RoutingDecision.customer(customer).slot(in: layout)))")
        }
        return lines
    }
}
