import AMQPClient
import Logging
import PostgresClient
import Store

/// Publishes committed outbox rows with publisher confirms and marks a row sent only after the
/// broker acked it (SPEC section 7). Several instances may run: rows are claimed with
/// FOR UPDATE SKIP LOCKED, so each is published by one of them at a time.
/// A crash between the broker's ack and our commit republishes the row with the same event id:
/// at-least-once on the wire, de-duplicated by consumers on the id.
// @unchecked Sendable: handed to exactly one thread, which alone touches it from then on.
final class OutboxPublisher: @unchecked Sendable {
    let configuration: DaemonConfiguration
    let stop: StopSignal
    let health: WorkerHealth
    let logger: Logger
    private var database: Store?
    private var broker: AMQPConnection?
    private var backoff = Backoff()
    private var lastBacklogReport: Int64 = 0

    init(configuration: DaemonConfiguration, stop: StopSignal, health: WorkerHealth, logger: Logger) {
        self.configuration = configuration
        self.stop = stop
        self.health = health
        self.logger = logger
    }

    /// Runs until stop is requested and (when draining) the backlog is empty or unreachable.
    func run(drainDeadline: @Sendable () -> Int64?) {
        while true {
            health.turned()
            if stop.isStopping {
                // Drain what the consumers committed before they stopped, within the deadline.
                guard let deadline = drainDeadline(), Monotonic.milliseconds() < deadline else { break }
            }
            do {
                let store = try connectDatabase()
                let channel = try connectBroker()
                let published = try publishBatch(store: store, broker: channel)
                backoff.reset()
                if Monotonic.milliseconds() - lastBacklogReport > 2_000 {
                    lastBacklogReport = Monotonic.milliseconds()
                    let backlog = try store.outboxBacklog()
                    DaemonMetrics.outbox(backlog: backlog.count, oldestAgeSeconds: backlog.oldestAgeSeconds)
                }
                if published == 0 && stop.isStopping { break }
                // A batch short of the limit took everything committed before its claim; what
                // commits later sends a NOTIFY, which the wait returns on at once (delivered when
                // our transaction ended, or already buffered). So no empty claim in between
                // (draining, the loop claims until nothing is left).
                if published < configuration.outboxBatchSize && !stop.isStopping {
                    _ = try store.db.waitForNotifications(timeoutMilliseconds: 200)
                    try channel.idle(timeoutMilliseconds: 0)
                }
            } catch {
                WorkerRecovery.recover(from: error, role: "outbox publisher", consequence: "", logger: logger, backoff: &backoff,
                                       stop: stop, dropConnections: dropConnections)
            }
        }
        broker?.close()
        logger.info("outbox publisher stopped")
    }

    private func connectDatabase() throws(PostgresError) -> Store {
        if let database, database.db.isConnected { return database }
        health.set(database: false)
        let connection = try PostgresConnection(configuration.database)
        let store = Store(connection)
        try store.listenForOutbox()
        try store.useGenericPlans()
        database = store
        health.set(database: true)
        return store
    }

    private func connectBroker() throws(AMQPError) -> AMQPConnection {
        if let broker { return broker }
        health.set(broker: false)
        var settings = configuration.broker
        settings.connectionName = "receivablesd outbox publisher"
        let connection = try AMQPConnection(settings)
        try connection.enableConfirms()
        broker = connection
        health.set(broker: true)
        logger.info("outbox publisher connected")
        return connection
    }

    private func dropConnections() {
        broker?.close()
        broker = nil
        database = nil
        health.set(database: false, broker: false)
    }

    /// Claims, publishes and confirms one batch in one transaction; returns rows published.
    func publishBatch(store: Store, broker: AMQPConnection) throws -> Int {
        try store.transaction {
            let pending = try store.claimOutbox(limit: configuration.outboxBatchSize)
            guard !pending.isEmpty else { return 0 }
            var tagToSeq: [UInt64: Int64] = [:]
            var lastTag: UInt64 = 0
            for row in pending {
                let tag = try broker.publish(exchange: row.message.exchange, routingKey: row.message.routingKey,
                                             body: row.message.body, properties: OutboxPublisher.properties(for: row.message, source: configuration.eventSource))
                tagToSeq[tag] = row.seq
                lastTag = tag
            }
            let outcomes = try broker.awaitConfirms(through: lastTag, timeoutMilliseconds: 30_000)
            let acked = outcomes.filter { $0.value != .nack }.compactMap { tagToSeq[$0.key] }
            try store.markPublished(acked)
            var byType: [String: Int] = [:]
            let ackedSet = Set(acked)
            for row in pending where ackedSet.contains(row.seq) { byType[row.message.type, default: 0] += 1 }
            for (type, count) in byType { DaemonMetrics.published(type: type, count: count) }
            if acked.count < pending.count {
                // Unconfirmed rows stay in the outbox and are retried on a fresh channel.
                throw AMQPError("\(pending.count - acked.count) of \(pending.count) messages not confirmed by the broker")
            }
            return pending.count
        }
    }

    static func properties(for message: OutboxMessage, source: String) -> AMQPProperties {
        var headers: [String: AMQPFieldValue] = [:]
        for (key, value) in message.headers where key != "content-type" { headers[key] = .string(value) }
        return AMQPProperties(
            contentType: message.headers["content-type"] ?? "application/cloudevents+json",
            deliveryMode: 2, correlationID: message.correlationID, messageID: message.eventID,
            type: message.type, appID: source, headers: headers)
    }
}
