import AMQPClient
import ARDomain
import Logging
import Partitioning
import PostgresClient
import Store

/// The routing stage (docs/partitioning.md): reads the intake queue, finds each message's
/// customer in its body, and republishes it to that customer's partition queue with the
/// partition's next sequence number.
///
/// Every instance runs one router thread; one at a time routes. The intake queue has no sequence
/// numbers, so its order must never depend on a consumer change going well: on RabbitMQ 3.10 a
/// quorum queue that activates a registered standby consumer delivers fresh messages before the
/// returned ones. So a router subscribes only while it holds the router lock (a PostgreSQL session
/// advisory lock: one holder, freed when its session ends, also on kill -9), and only after the
/// intake queue has had no consumer for `settleMilliseconds` (a previous holder whose database
/// session died may still be subscribed until it notices). A fresh consumer on a queue without
/// consumers receives the returned messages first, in order.
///
/// Per batch, in one transaction: lock the partitions' routed counters, publish every message with
/// its number (publisher confirms, mandatory), then record the id → customer keys and the counters,
/// commit, and only then ack the intake batch. A crash anywhere re-routes the same messages in the
/// same order with the same numbers; the copies are duplicates the consumers' inbox ignores.
// @unchecked Sendable: created on the main thread and handed to exactly one router thread,
// which alone touches it (and its connections) from then on.
final class IntakeRouter: @unchecked Sendable {
    let configuration: DaemonConfiguration
    let stop: StopSignal
    let health: WorkerHealth
    let logger: Logger
    /// How long the intake queue must have had no consumer before a new router subscribes.
    let settleMilliseconds: Int64 = 2_000
    /// Channel 1 declares and inspects (a failed passive declare closes its channel); the intake
    /// and the old work queue are consumed on channels of their own.
    static let intakeChannel: UInt16 = 3
    static let legacyChannel: UInt16 = 2

    private var store: Store?
    private var consumer: AMQPConnection?
    private var publisher: AMQPConnection?
    private var holdsLock = false
    private var subscribed = false
    private var layout: PartitionLayout?
    private var backoff = Backoff()
    private var lastStatusPoll: Int64 = 0
    private var lastLegacyCheck: Int64 = 0
    private var lastPing: Int64 = 0
    private var lastWaitLog: Int64 = 0
    private var intakeIdleSince: Int64?

    init(configuration: DaemonConfiguration, stop: StopSignal, health: WorkerHealth, logger: Logger) {
        self.configuration = configuration
        self.stop = stop
        self.health = health
        self.logger = logger
    }

    var names: TopologyNames { configuration.topology }

    func run() {
        while !stop.isStopping {
            health.turned()
            do {
                let store = try connectDatabase()
                let consumer = try connectConsumer()
                try pollPartitionStatus(store, consumer)
                guard try holdRouterLock(store) else {
                    stop.sleep(milliseconds: 1_000)
                    continue
                }
                guard try subscribed || subscribe(store, consumer) else {
                    stop.sleep(milliseconds: 500)
                    continue
                }
                guard let first = try consumer.nextDelivery(timeoutMilliseconds: 250) else {
                    try whileIdle(store, consumer)
                    continue
                }
                // A delivery of a channel closed meanwhile was requeued by the broker: not ours to route.
                guard first.channel == Self.intakeChannel else { continue }
                var batch = [first]
                while batch.count < configuration.routerBatchSize, let next = try consumer.nextDelivery(timeoutMilliseconds: 0) {
                    if next.channel == Self.intakeChannel { batch.append(next) }
                }
                try route(batch, store: store, publisher: try connectPublisher())
                // Acked only after the routing committed: a crash before re-routes the batch.
                try consumer.ack(batch[batch.count - 1].deliveryTag, multiple: true, channel: Self.intakeChannel)
                backoff.reset()
            } catch {
                WorkerRecovery.recover(from: error, role: "router", consequence: "intake messages stay queued", logger: logger, backoff: &backoff,
                                       stop: stop, dropConnections: dropConnections)
            }
        }
        // The last batch was committed and acked. The broker connection goes first (nothing
        // unacked is left to return), then the session and with it the router lock.
        dropConnections()
        logger.info("router stopped")
    }

    // MARK: the router role

    /// True while this session holds the router lock (taking it when free).
    private func holdRouterLock(_ store: Store) throws(PostgresError) -> Bool {
        if holdsLock { return true }
        guard try store.tryPartitionLock(Store.routerLockKey) else { return false }
        holdsLock = true
        intakeIdleSince = nil
        DaemonMetrics.routerActive(true)
        logger.info("router lock taken; this instance will route the intake queue", metadata: ["queue": "\(names.intakeQueue)"])
        return true
    }

    /// Prepares the layout and the upgrade from the single work queue, then subscribes to the
    /// intake queue once it has been without consumers for `settleMilliseconds`. False: not yet.
    private func subscribe(_ store: Store, _ consumer: AMQPConnection) throws -> Bool {
        guard let layout = try currentLayout(store, consumer) else { return false }
        guard try drainLegacyQueue(store, consumer, layout: layout) else { return false }
        guard let status = try consumer.queueStatus(names.intakeQueue) else {
            try Topology.declare(on: consumer, names, inboundTypes: MessagePipeline.inboundTypes)
            return false
        }
        let now = Monotonic.milliseconds()
        guard status.consumerCount == 0 else {
            intakeIdleSince = nil
            logEvery(5_000, "router: waiting for the previous router's consumer to leave the intake queue",
                     ["queue": "\(names.intakeQueue)", "consumers": "\(status.consumerCount)"])
            return false
        }
        guard let since = intakeIdleSince else { intakeIdleSince = now; return false }
        guard now - since >= settleMilliseconds else { return false }
        // The session (and so the lock) must be alive right before and after subscribing.
        try store.ping()
        try consumer.openChannel(Self.intakeChannel)
        try consumer.setPrefetch(UInt16(min(Int(UInt16.max), configuration.routerBatchSize * 2)), channel: Self.intakeChannel)
        try consumer.consume(queue: names.intakeQueue, channel: Self.intakeChannel)
        try store.ping()
        subscribed = true
        self.layout = layout
        logger.info("intake router active", metadata: ["queue": "\(names.intakeQueue)", "partitions": "\(layout.customerPartitions)",
                                                       "prefix": "\(layout.queuePrefix)"])
        return true
    }

    /// The layout to route with: the one in the database; a configured P that differs is taken
    /// over only when every partition of the old layout is drained (else a customer's earlier
    /// messages could still wait in its old partition while later ones are applied from the new).
    private func currentLayout(_ store: Store, _ consumer: AMQPConnection) throws -> PartitionLayout? {
        let configured = names.partitions
        guard let stored = try store.partitionLayout() else {
            try store.setPartitionLayout(configured)
            let layout = names.layout(partitions: configured)
            try Topology.declarePartitions(on: consumer, names, layout: layout)
            return layout
        }
        if stored != configured {
            let old = names.layout(partitions: stored)
            let queues = Set(old.slots.map(old.queueName))
            let waiting = try store.partitionProgress().filter { queues.contains($0.queue) }.reduce(Int64(0)) { $0 + $1.backlog }
            guard waiting == 0 else {
                logEvery(5_000, "router: changing the number of partitions once the old ones are drained",
                         ["from": "\(stored)", "to": "\(configured)", "messages_left": "\(waiting)"])
                return nil
            }
            try store.setPartitionLayout(configured)
            logger.notice("partitions changed", metadata: ["from": "\(stored)", "to": "\(configured)"])
        }
        let layout = names.layout(partitions: configured)
        try Topology.declarePartitions(on: consumer, names, layout: layout)
        return layout
    }

    // MARK: upgrade from the single work queue

    /// Moves what is left in the old single work queue into the partitions: unbinds it from the
    /// inbound exchange (the intake queue was bound first, so nothing is missed; a message
    /// published in between is in both and the inbox drops the second), waits until no older
    /// receivablesd consumes it, routes its messages (they are older than anything in the
    /// intake queue), then deletes it. True when there is nothing (left) to migrate.
    private func drainLegacyQueue(_ store: Store, _ consumer: AMQPConnection, layout: PartitionLayout) throws -> Bool {
        let legacy = names.workQueue
        guard legacy != names.intakeQueue, let status = try consumer.queueStatus(legacy) else { return true }
        try unbindLegacyQueue(consumer)
        guard status.consumerCount == 0 else {
            logEvery(10_000, "upgrade: an older receivablesd still consumes the old work queue; stop it to finish the upgrade (new messages wait in the intake queue meanwhile)", ["queue": "\(legacy)", "consumers": "\(status.consumerCount)",
                                                                            "messages": "\(status.messageCount)"])
            return false
        }
        let channel = Self.legacyChannel
        try consumer.openChannel(channel)
        try consumer.setPrefetch(UInt16(configuration.routerBatchSize), channel: channel)
        try consumer.consume(queue: legacy, channel: channel)
        self.layout = layout
        var moved = 0
        while !stop.isStopping {
            health.turned()  // a long drain is work, not a wedged loop (watchdog)
            guard let first = try consumer.nextDelivery(timeoutMilliseconds: 500) else {
                guard let left = try consumer.queueStatus(legacy), left.messageCount > 0 else { break }
                continue
            }
            // A delivery of a channel closed meanwhile was requeued by the broker: not ours to route.
            guard first.channel == channel else { continue }
            var batch = [first]
            while batch.count < configuration.routerBatchSize, let next = try consumer.nextDelivery(timeoutMilliseconds: 0) {
                if next.channel == channel { batch.append(next) }
            }
            try route(batch, store: store, publisher: try connectPublisher())
            try consumer.ack(batch[batch.count - 1].deliveryTag, multiple: true, channel: channel)
            moved += batch.count
        }
        try consumer.closeChannel(channel)
        if stop.isStopping { return false }
        // A quorum queue forgets a consumer a moment after its channel closed.
        guard let left = try waitUntilNoConsumer(legacy, consumer) else { return true }
        // Quorum queues refuse queue.delete if-empty: check, then delete. Only an older instance
        // binding it again in between could put a message in; that would be reported here.
        if left.messageCount > 0 || left.consumerCount > 0 {
            return false  // a message or an old consumer arrived after all: the next turn handles it
        }
        let lost = try consumer.deleteQueue(legacy)
        if lost > 0 {
            logger.critical("upgrade: the old work queue received messages while it was deleted; replay them from the publisher",
                            metadata: ["queue": "\(legacy)", "messages": "\(lost)"])
        }
        logger.notice("upgrade: old work queue drained into the partitions and deleted", metadata: ["queue": "\(legacy)", "messages": "\(moved)"])
        return true
    }

    // MARK: routing

    /// Routes one batch; returns after the broker confirmed every publish and the counters committed.
    func route(_ batch: [AMQPDelivery], store: Store, publisher: AMQPConnection) throws {
        guard let layout else { preconditionFailure("routing before the layout is known") }
        let facts = batch.map { RoutingFacts.read(body: $0.body, routingKey: $0.routingKey, maximumBodyBytes: configuration.maximumBodyBytes) }
        try store.transaction {
            let references = facts.flatMap { fact -> [(kind: String, id: String)] in
                [fact.reference, fact.creates].compactMap { $0 }.map { ($0.kind.rawValue, $0.id) }
            }
            let (decisions, remember) = Self.plan(facts, known: try store.partitionKeyCustomers(references))
            let queues = decisions.map { layout.queueName($0.slot(in: layout)) }
            var sequences = try store.lockRoutedSequences(queues)
            let routedAt = WallClock.now().microsecondsSinceEpoch / 1000
            var lastTag: UInt64 = 0
            for (index, delivery) in batch.enumerated() {
                let queue = queues[index]
                let sequence = (sequences[queue] ?? 0) + 1
                sequences[queue] = sequence
                lastTag = try publisher.publish(exchange: names.partitionExchange, routingKey: queue, body: delivery.body,
                                                properties: routedProperties(delivery, sequence: sequence, decision: decisions[index], routedAt: routedAt),
                                                mandatory: true)
            }
            let outcomes = try publisher.awaitConfirms(through: lastTag, timeoutMilliseconds: 30_000)
            let refused = outcomes.filter { $0.value != .ack }.count + (batch.count - outcomes.count)
            guard refused == 0 else {
                // Nothing is recorded; the whole batch is routed again, with the same numbers.
                throw AMQPError("\(refused) of \(batch.count) routed messages not confirmed by the broker (or no partition queue bound)")
            }
            try store.rememberPartitionKeys(remember)
            try store.advanceRoutedSequences(sequences)
        }
        DaemonMetrics.routed(count: batch.count)
    }

    /// Each message's partition decision, in order: a message naming only an invoice or payment
    /// id follows the customer of an earlier message of the same batch that created that id, else
    /// the customer recorded in the database. Returns the new id → customer keys to record.
    static func plan(_ facts: [RoutingFacts], known: [String: String]) -> (decisions: [RoutingDecision], remember: [(kind: String, id: String, customerID: String)]) {
        var created: [String: String] = [:]
        var remember: [(kind: String, id: String, customerID: String)] = []
        var decisions: [RoutingDecision] = []
        for fact in facts {
            let seen = created
            decisions.append(RoutingDecision.decide(fact) { kind, id in seen[kind.rawValue + ":" + id] ?? known[kind.rawValue + ":" + id] })
            if let creates = fact.creates, let customer = fact.customerID {
                let key = creates.kind.rawValue + ":" + creates.id
                if created[key] == nil && known[key] == nil {
                    created[key] = customer
                    remember.append((creates.kind.rawValue, creates.id, customer))
                }
            }
        }
        return (decisions, remember)
    }

    /// The original properties, republished as the daemon's own user (the broker verifies it):
    /// the publisher's verified user, the original routing key, the number and the routing time
    /// go into headers the router always overwrites, so a publisher cannot forge them.
    func routedProperties(_ delivery: AMQPDelivery, sequence: Int64, decision: RoutingDecision, routedAt: Int64) -> AMQPProperties {
        var properties = delivery.properties
        properties.userID = configuration.broker.user
        properties.deliveryMode = 2
        for header in RoutingHeaders.all { properties.headers.removeValue(forKey: header) }
        if let user = delivery.properties.userID { properties.headers[RoutingHeaders.user] = .string(user) }
        properties.headers[RoutingHeaders.routingKey] = .string(delivery.routingKey)
        properties.headers[RoutingHeaders.sequence] = .int(sequence)
        properties.headers[RoutingHeaders.routedAt] = .int(routedAt)
        properties.headers[RoutingHeaders.decision] = .string(decision.label)
        return properties
    }

    // MARK: idle work

    private func whileIdle(_ store: Store, _ consumer: AMQPConnection) throws {
        let now = Monotonic.milliseconds()
        // A session that died must stop this router at once: another instance can take the lock
        // now, and it waits for our consumer to leave.
        if now - lastPing >= 1_000 {
            lastPing = now
            try store.ping()
        }
        // An older receivablesd started again during an upgrade re-creates and re-binds the old
        // work queue: unbind it again, and drain it (through the upgrade path) once it is idle.
        if now - lastLegacyCheck >= 30_000 {
            lastLegacyCheck = now
            if let legacy = try consumer.queueStatus(names.workQueue), names.workQueue != names.intakeQueue {
                try unbindLegacyQueue(consumer)
                if legacy.consumerCount > 0 {
                    logger.error("an older receivablesd consumes the old work queue: customer order is not guaranteed until it stops",
                                 metadata: ["queue": "\(names.workQueue)", "consumers": "\(legacy.consumerCount)"])
                } else if legacy.messageCount > 0 {
                    // Leave the intake (a fresh connection: no deliveries of it stay queued) and
                    // take the upgrade path again; the lock stays ours.
                    self.consumer?.close()
                    self.consumer = nil
                    subscribed = false
                    intakeIdleSince = nil
                }
            }
        }
    }

    /// The queue's status once it has no consumer (at most 10 s; nil when it does not exist).
    private func waitUntilNoConsumer(_ queue: String, _ consumer: AMQPConnection) throws(AMQPError) -> AMQPQueueStatus? {
        var status = try consumer.queueStatus(queue)
        for _ in 0..<100 where (status?.consumerCount ?? 0) > 0 && !stop.isStopping {
            stop.sleep(milliseconds: 100)
            status = try consumer.queueStatus(queue)
        }
        return status
    }

    private func unbindLegacyQueue(_ consumer: AMQPConnection) throws(AMQPError) {
        for type in MessagePipeline.inboundTypes + ["#"] {
            try consumer.unbindQueue(names.workQueue, exchange: names.inboundExchange, routingKey: type)
        }
    }

    /// Depth and consumers of every partition (every instance reports them), backlog from the numbers.
    private func pollPartitionStatus(_ store: Store, _ consumer: AMQPConnection) throws {
        let now = Monotonic.milliseconds()
        guard now - lastStatusPoll >= 5_000 else { return }
        lastStatusPoll = now
        let layout = names.layout(partitions: try store.partitionLayout() ?? names.partitions)
        let progress = Dictionary(try store.partitionProgress().map { ($0.queue, $0) }, uniquingKeysWith: { first, _ in first })
        for slot in layout.slots {
            let queue = layout.queueName(slot)
            if let status = try consumer.queueStatus(queue) {
                DaemonMetrics.partitionQueue(queue, depth: status.messageCount, consumers: status.consumerCount)
            }
            DaemonMetrics.partitionBacklog(queue, messages: progress[queue]?.backlog ?? 0)
        }
        if let intake = try consumer.queueStatus(names.intakeQueue) {
            DaemonMetrics.partitionQueue(names.intakeQueue, depth: intake.messageCount, consumers: intake.consumerCount)
        }
    }

    private func logEvery(_ milliseconds: Int64, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        let now = Monotonic.milliseconds()
        guard now - lastWaitLog >= milliseconds else { return }
        lastWaitLog = now
        logger.notice(message, metadata: metadata)
    }

    // MARK: connections

    private func connectDatabase() throws(PostgresError) -> Store {
        if let store, store.db.isConnected { return store }
        if store != nil { dropConnections() }  // the session died: so did the lock
        let fresh = try health.openLockingSession(configuration.database)
        try fresh.useGenericPlans()
        store = fresh
        return fresh
    }

    private func connectConsumer() throws(AMQPError) -> AMQPConnection {
        if let consumer { return consumer }
        let connection = try health.openBroker(configuration.broker, name: "receivablesd router")
        consumer = connection
        return connection
    }

    private func connectPublisher() throws(AMQPError) -> AMQPConnection {
        if let publisher { return publisher }
        var settings = configuration.broker
        settings.connectionName = "receivablesd router publisher"
        let connection = try AMQPConnection(settings)
        try connection.enableConfirms()
        publisher = connection
        return connection
    }

    /// Broker first (the intake consumer goes, unacked messages return), then the session (the lock).
    private func dropConnections() {
        consumer?.close()
        consumer = nil
        publisher?.close()
        publisher = nil
        store = nil
        if holdsLock { DaemonMetrics.routerActive(false) }
        holdsLock = false
        subscribed = false
        intakeIdleSince = nil
        health.set(database: false, broker: false)
    }
}

extension RoutingDecision {
    /// For the `x-ar-partition-key` header and logs: what decided, never the whole body.
    var label: String {
        switch self {
        case .bank: return "bank"
        case .customer: return "customer"
        case .subject: return "subject"
        case .unknownReference(let kind, _): return "unknown_\(kind.rawValue)"
        case .opaque: return "unreadable"
        }
    }
}
