import AMQPClient
import PostgresClient

/// Names of the broker objects (SPEC section 2: defaults; all configurable).
public struct TopologyNames: Sendable, Equatable {
    public var inboundExchange = "ar.inbound"
    public var eventsExchange = "ar.events"
    public var deadLetterExchange = "ar.dead-letter"
    /// The single work queue of releases before the partitioned intake: drained into the
    /// partitions and deleted on upgrade (docs/partitioning.md).
    public var workQueue = "ar.inbound.work"
    /// Bound to the inbound exchange like the old work queue; one router at a time reads it.
    public var intakeQueue = "ar.inbound.intake"
    /// Direct exchange the router publishes to, routing key = partition queue name.
    public var partitionExchange = "ar.partitions"
    /// Partition queues are `<prefix>.00` … `<prefix>.<P-1>` and `<prefix>.bank`.
    public var partitionQueuePrefix = "ar.inbound.part"
    /// P: customer partitions (a change is applied by the router after the old layout drained).
    public var partitions = 16
    public var deadLetterQueue = "ar.dead-letter"
    /// quorum (default: replicated, delivery limit dead-letters a poison message) or classic.
    public var workQueueType = "quorum"
    /// Deliveries of one message before the broker dead-letters it as poison (quorum only).
    public var deliveryLimit = 20

    public init() {}
}

/// Which AMQP users may publish which inbound types (SPEC section 2, "Publishers are
/// authenticated by the broker"). A pattern is a type or a prefix ending in `.*`.
public struct PublisherPolicy: Sendable, Equatable {
    public var allowed: [String: [String]]

    public init(allowed: [String: [String]]) { self.allowed = allowed }

    public static let standard = PublisherPolicy(allowed: [
        "billing": ["customer.upserted", "invoice.*", "credit_note.issued"],
        "gateway": ["payment.*"],
        "bank": ["bank.*"],
        "portal": ["account.summary.requested", "statement.requested", "payment_history.requested", "dispute.*", "promise_to_pay.recorded"],
        "arteam": ["reconciliation.resolved", "dispute.*", "promise_to_pay.recorded"],
    ])

    /// A type (`invoice.issued`), a prefix (`invoice.*`) or `*`.
    static func isValidPattern(_ pattern: String) -> Bool {
        let body = pattern.hasSuffix(".*") ? String(pattern.dropLast(2)) : pattern
        return pattern == "*" || (!body.isEmpty && body.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "." || $0 == "_" })
    }

    public func permits(user: String?, type: String) -> Bool {
        guard let user, let patterns = allowed[user] else { return false }
        return patterns.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasSuffix(".*") { return type.hasPrefix(String(pattern.dropLast(1))) }
            return pattern == type
        }
    }
}

/// Everything `receivablesd serve` needs, after defaults, file, environment and credentials.
public struct DaemonConfiguration: Sendable {
    public var database: PostgresConfiguration
    public var broker: AMQPConfiguration
    public var topology = TopologyNames()
    public var publishers = PublisherPolicy.standard
    /// CloudEvents `source` of everything we publish.
    public var eventSource = "receivablesd"
    /// Consumer threads; 2 overlap one thread's waits with the other's work (1.7-2.1x one on 2 cores, bench e2e).
    public var consumers = 2
    public var prefetch: UInt16 = 256
    /// A consumer thread not heard from for this long is gone; its partitions move.
    public var partitionLeaseMilliseconds = 6_000
    /// Intake messages routed per transaction (also bounds what one repeated publish can reorder,
    /// which the order guard's window, `prefetch`, must cover).
    public var routerBatchSize = 32
    /// Messages applied per database transaction at most (the batching seam; 1 = one per
    /// transaction). Under light load batches are as small as what is waiting, down to one.
    public var batchSize = 256
    /// How long a batch that found more than one message waiting may wait to fill up.
    public var batchLingerMilliseconds = 2
    public var maximumBodyBytes = 1_048_576
    public var maximumJSONDepth = 32
    /// How long a message may wait for what it needs before it is dead-lettered (SPEC section 7).
    public var holdSeconds: Int64 = 7 * 24 * 3600
    public var housekeepingIntervalSeconds = 5
    public var outboxBatchSize = 256
    public var httpHost = "127.0.0.1"
    public var httpPort: Int?
    public var logLevel = "info"
    /// Queues a request may name in `reply_to`: server-named and direct reply-to queues and the
    /// portal's own. Anything else (our work queue, another system's queue) is refused, so a
    /// request cannot make the daemon write into queues it was not meant to.
    public var replyQueuePrefixes = ["amq.gen-", "amq.rabbitmq.reply-to", "portal."]
    /// Signs payment-history cursors; the same on every instance (credential file `cursor-secret`).
    /// Absent: the secret migration 0006 stored in the database is used.
    public var cursorSecret: String?
    /// Dunning policies (YAML); the built-in standard policy when absent.
    public var policiesFile: String?
    /// Reconciliation tolerances and oldest-first policies (reloadable).
    public var reconciliation = ReconciliationSettings.builtIn
    /// Seconds between the daemon's own dunning passes; 0 disables them (`dunning tick` still works).
    public var dunningIntervalSeconds = 60
    /// `payment.failed` codes never retried (lower case; compared case-insensitively).
    public var hardDeclineCodes: Set<String> = DaemonConfiguration.standardHardDeclineCodes

    /// Card declines that no retry can fix, and ACH (Rxx) / SEPA (ACxx, MDxx) returns that mean
    /// the account or the mandate is gone (config/receivablesd.yaml lists them).
    public static let standardHardDeclineCodes: Set<String> = [
        "stolen_card", "lost_card", "pickup_card", "fraudulent", "restricted_card", "card_not_supported", "invalid_account",
        "account_closed", "no_account", "authorization_revoked", "r02", "r03", "r04", "r07", "r08", "r10", "r16", "r20", "r29",
        "ac04", "ac06", "md01", "md07",
    ]

    public init(database: PostgresConfiguration, broker: AMQPConfiguration) {
        self.database = database
        self.broker = broker
    }
}
