import AMQPClient
import Logging
import PostgresClient
import Store

/// One consumer: owns one AMQP connection and one PostgreSQL connection on its own thread and
/// runs the seam consume → decode → apply → commit → ack (see `MessagePipeline`).
///
/// A transient failure (either side down) is never a rejection: the batch is not acked, the
/// broker connection is closed so the broker requeues it, and both sides are reconnected with
/// backoff, database first, so we do not take messages we cannot store.
// @unchecked Sendable: created on the main thread and handed to exactly one worker thread,
// which alone touches it (and its connections) from then on.
final class ConsumerWorker: @unchecked Sendable {
    let configuration: DaemonConfiguration
    let pipeline: MessagePipeline
    let stop: StopSignal
    let health: WorkerHealth
    let logger: Logger
    private var store: Store?
    private var broker: AMQPConnection?
    private var backoff = Backoff()
    private var lastHousekeeping: Int64 = 0

    init(configuration: DaemonConfiguration, pipeline: MessagePipeline, stop: StopSignal, health: WorkerHealth, logger: Logger) {
        self.configuration = configuration
        self.pipeline = pipeline
        self.stop = stop
        self.health = health
        self.logger = logger
    }

    func run() {
        while !stop.isStopping {
            health.turned()
            do {
                let store = try connectDatabase()
                let broker = try connectBroker()
                guard let first = try broker.nextDelivery(timeoutMilliseconds: 250) else {
                    try housekeeping(store)
                    continue
                }
                var batch = [first]
                while batch.count < configuration.batchSize, let next = try broker.nextDelivery(timeoutMilliseconds: 0) {
                    batch.append(next)
                }
                if let failure = try Self.nonTransientFailure({ () throws(PostgresError) in try pipeline.process(batch, store: store) }) {
                    // Not an outage: one message hits a database error (a bug). Apply the batch
                    // one by one so the others commit; the culprit goes back to the queue, whose
                    // delivery limit dead-letters it if it keeps failing.
                    logger.error("batch failed with a database error; isolating the message", metadata: ["error": "\(failure)"])
                    try isolate(batch, store: store, broker: broker)
                    continue
                }
                // Acked only after the commit above: a crash in between redelivers, and the
                // inbox makes the second application a no-op.
                guard let last = batch.last else { continue }
                try broker.ack(last.deliveryTag, multiple: true)
                backoff.reset()
            } catch let error as PostgresError {
                logger.warning("consumer: database unavailable, messages stay queued", metadata: ["error": "\(error)"])
                dropConnections()
                stop.sleep(milliseconds: backoff.next())
            } catch let error as AMQPError {
                logger.warning("consumer: broker unavailable", metadata: ["error": "\(error)"])
                dropConnections()
                stop.sleep(milliseconds: backoff.next())
            } catch {
                logger.error("consumer: unexpected error, messages stay queued", metadata: ["error": "\(error)"])
                dropConnections()
                stop.sleep(milliseconds: backoff.next())
            }
        }
        // Graceful stop: the last batch was committed and acked; unacked prefetched messages
        // return to the queue when the channel closes.
        broker?.close()
        logger.info("consumer stopped")
    }

    /// Applies each delivery in its own transaction; one that fails with a non-transient
    /// database error is rejected back to the queue (its delivery count grows).
    private func isolate(_ batch: [AMQPDelivery], store: Store, broker: AMQPConnection) throws {
        for delivery in batch {
            if let failure = try Self.nonTransientFailure({ () throws(PostgresError) in try pipeline.process([delivery], store: store) }) {
                logger.error("message failed with a database error; returned to the queue", metadata: ["error": "\(failure)", "routing_key": "\(delivery.routingKey)"])
                try broker.reject(delivery.deliveryTag, requeue: true)
            } else {
                try broker.ack(delivery.deliveryTag)
            }
        }
    }

    /// Runs `body`; returns its error when it is a non-transient database error, rethrows a
    /// transient one (an outage: the caller reconnects), nil on success.
    private static func nonTransientFailure(_ body: () throws(PostgresError) -> Void) throws(PostgresError) -> PostgresError? {
        do {
            try body()
            return nil
        } catch {
            if error.isTransient { throw error }
            return error
        }
    }

    private func connectDatabase() throws(PostgresError) -> Store {
        if let store, store.db.isConnected { return store }
        health.set(database: false)
        let connection = try PostgresConnection(configuration.database)
        let fresh = Store(connection)
        store = fresh
        health.set(database: true)
        return fresh
    }

    private func connectBroker() throws(AMQPError) -> AMQPConnection {
        if let broker { return broker }
        health.set(broker: false)
        var settings = configuration.broker
        settings.connectionName = "receivablesd consumer"
        let connection = try AMQPConnection(settings)
        try Topology.declare(on: connection, configuration.topology, inboundTypes: MessagePipeline.inboundTypes)
        try connection.setPrefetch(configuration.prefetch)
        try connection.consume(queue: configuration.topology.workQueue)
        broker = connection
        health.set(broker: true)
        logger.info("consumer connected", metadata: ["queue": "\(configuration.topology.workQueue)"])
        return connection
    }

    private func dropConnections() {
        broker?.close()
        broker = nil
        store = nil
        health.set(database: false, broker: false)
    }

    /// Work that is not driven by a message: held messages that waited too long.
    private func housekeeping(_ store: Store) throws(PostgresError) {
        let now = Monotonic.milliseconds()
        guard now - lastHousekeeping >= Int64(configuration.housekeepingIntervalSeconds) * 1000 else { return }
        lastHousekeeping = now
        try pipeline.expireHeldMessages(store: store)
    }
}

/// Declares exchanges, the work queue and its bindings, idempotently, on every (re)connect.
enum Topology {
    static func declare(on broker: AMQPConnection, _ names: TopologyNames, inboundTypes: [String]) throws(AMQPError) {
        try broker.declareExchange(names.inboundExchange)
        try broker.declareExchange(names.eventsExchange)
        try broker.declareExchange(names.deadLetterExchange)
        var arguments: [String: AMQPFieldValue] = ["x-dead-letter-exchange": .string(names.deadLetterExchange)]
        if names.workQueueType == "quorum" {
            arguments["x-queue-type"] = .string("quorum")
            arguments["x-delivery-limit"] = .int(Int64(names.deliveryLimit))
        }
        try broker.declareQueue(names.workQueue, durable: true, arguments: arguments)
        // Every inbound type by name (the contract), and "#" so a message of an unknown type
        // still reaches us and is dead-lettered with a reason instead of vanishing unrouted.
        for type in inboundTypes + ["#"] {
            try broker.bindQueue(names.workQueue, exchange: names.inboundExchange, routingKey: type)
        }
        // Dead letters are kept in a queue for operators (`receivablesd dead-letter list`).
        try broker.declareQueue(names.deadLetterQueue, durable: true, arguments: ["x-queue-type": .string("quorum")])
        try broker.bindQueue(names.deadLetterQueue, exchange: names.deadLetterExchange, routingKey: "#")
    }
}
