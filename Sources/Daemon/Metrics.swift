import CoreMetrics
import Metrics
import Prometheus

/// The daemon's metrics (swift-metrics API, exported by swift-prometheus on /metrics).
/// Names follow Prometheus conventions: `_total` counters, `_seconds` durations.
enum DaemonMetrics {
    static func message(type: String, outcome: String) {
        Counter(label: "receivablesd_messages_total", dimensions: [("type", type), ("outcome", outcome)]).increment()
    }

    static func rejection(reason: String) {
        Counter(label: "receivablesd_rejections_total", dimensions: [("reason", reason)]).increment()
    }

    /// A descriptive label we do not know (SPEC section 2): counted by field name only, never by
    /// value, which is publisher-controlled text (a dimension per value would be a cardinality attack).
    static func unknownLabel(field: String) {
        Counter(label: "receivablesd_unknown_labels_total", dimensions: [("field", field)]).increment()
    }

    static func processing(nanoseconds: Int64, messages: Int) {
        let timer = Timer(label: "receivablesd_processing_duration_seconds")
        for _ in 0..<messages { timer.recordNanoseconds(nanoseconds) }
    }

    static func published(type: String, count: Int = 1) {
        Counter(label: "receivablesd_events_published_total", dimensions: [("type", type)]).increment(by: count)
    }

    static func outbox(backlog: Int64, oldestAgeSeconds: Double) {
        Gauge(label: "receivablesd_outbox_backlog").record(backlog)
        Gauge(label: "receivablesd_outbox_oldest_age_seconds").record(oldestAgeSeconds)
    }

    static func held(count: Int64, oldestAgeSeconds: Int64) {
        Gauge(label: "receivablesd_held_messages").record(count)
        Gauge(label: "receivablesd_held_oldest_age_seconds").record(oldestAgeSeconds)
    }

    static func connection(_ component: String, worker: String, up: Bool) {
        Gauge(label: "receivablesd_connection_up", dimensions: [("component", component), ("worker", worker)]).record(up ? 1 : 0)
    }

    static func reminder(type: String) {
        Counter(label: "receivablesd_reminders_sent_total", dimensions: [("type", type)]).increment()
    }

    static func reconciliation(outcome: String) {
        Counter(label: "receivablesd_reconciliation_total", dimensions: [("outcome", outcome)]).increment()
    }

    /// Creates the series that may stay at zero for a long time, so dashboards see them at once.
    static func registerSeries() {
        Counter(label: "receivablesd_reminders_sent_total", dimensions: [("type", "reminder.due")]).increment(by: 0)
        for outcome in ["matched", "partially_matched", "exception", "ignored"] {
            Counter(label: "receivablesd_reconciliation_total", dimensions: [("outcome", outcome)]).increment(by: 0)
        }
        for field in ["method", "card.brand", "reason", "outcome"] {
            Counter(label: "receivablesd_unknown_labels_total", dimensions: [("field", field)]).increment(by: 0)
        }
        outbox(backlog: 0, oldestAgeSeconds: 0)
        held(count: 0, oldestAgeSeconds: 0)
    }
}
