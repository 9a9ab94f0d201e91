import CoreMetrics
import Metrics

/// Per-partition series (docs/partitioning.md, "Observing it"). `partition` is the queue name.
extension DaemonMetrics {
    /// Ready messages in the partition queue and its consumers (passive declare; on a single
    /// active consumer queue RabbitMQ counts the active consumer only).
    static func partitionQueue(_ queue: String, depth: UInt32, consumers: UInt32) {
        Gauge(label: "receivablesd_partition_depth", dimensions: [("partition", queue)]).record(Int64(depth))
        Gauge(label: "receivablesd_partition_consumers", dimensions: [("partition", queue)]).record(Int64(consumers))
    }

    /// Routed and not yet applied (queued plus in flight), from the sequence numbers.
    static func partitionBacklog(_ queue: String, messages: Int64) {
        Gauge(label: "receivablesd_partition_backlog", dimensions: [("partition", queue)]).record(messages)
    }

    /// 1 while a consumer thread of this instance consumes the partition.
    static func partitionOwned(_ queue: String, worker: String, owned: Bool) {
        Gauge(label: "receivablesd_partition_owned", dimensions: [("partition", queue), ("worker", worker)]).record(owned ? 1 : 0)
    }

    /// Age of the oldest message this instance holds for the partition and has not applied yet
    /// (from the routing time; 0 when none).
    static func partitionOldest(_ queue: String, ageSeconds: Int64) {
        Gauge(label: "receivablesd_partition_oldest_age_seconds", dimensions: [("partition", queue)]).record(ageSeconds)
    }

    /// `event`: acquired, released, resubscribed (a gap waited out), gap_accepted, early (a message
    /// that arrived before its predecessor and waited), poison (dead-lettered after too many deliveries).
    static func partitionEvent(_ queue: String, _ event: String, count: Int = 1) {
        Counter(label: "receivablesd_partition_events_total", dimensions: [("partition", queue), ("event", event)]).increment(by: count)
    }

    static func routed(count: Int) {
        Counter(label: "receivablesd_routed_messages_total").increment(by: count)
    }

    /// 1 on the instance whose router reads the intake queue now.
    static func routerActive(_ active: Bool) {
        Gauge(label: "receivablesd_router_active").record(active ? 1 : 0)
    }
}
