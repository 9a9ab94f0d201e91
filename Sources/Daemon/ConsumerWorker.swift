import AMQPClient
import ARContract
import ARDomain
import Logging
import Partitioning
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// One consumer thread: owns one AMQP and one PostgreSQL connection and consumes the partitions
/// assigned to it, one channel each, through the seam decode → apply → commit → ack (see
/// `MessagePipeline`). Batches may mix partitions; within a partition messages are applied in the
/// router's order (`PartitionOrderGuard`), also across a batch retry or a narrowed-down failure.
///
/// Which partitions: every consumer thread of every instance is a member (a heartbeat row in
/// PostgreSQL) and computes the same balanced assignment from the live members
/// (`PartitionAssignment`). A member subscribes to an assigned partition only while it holds that
/// partition's session advisory lock and the queue has no consumer (so RabbitMQ delivers the
/// previous consumer's returned messages first); it hands a partition over by closing the channel
/// (its unacked messages return) and then releasing the lock. A member that dies (kill -9) loses
/// its broker connection and database session at once; its heartbeat expires after the lease and
/// the others take its partitions.
///
/// A transient failure (either side down) is never a rejection: the batch is not acked, the
/// connections are closed so the broker requeues everything, and both sides are reconnected
/// with backoff, database first, so we do not take messages we cannot store.
// @unchecked Sendable: created on the main thread and handed to exactly one worker thread,
// which alone touches it (and its connections) from then on.
final class ConsumerWorker: @unchecked Sendable {
    let configuration: DaemonConfiguration
    let pipeline: MessagePipeline
    let stop: StopSignal
    let health: WorkerHealth
    let logger: Logger
    let memberID: String
    private var store: Store?
    private var broker: AMQPConnection?
    private var partitions = PartitionSet()
    private var layout: PartitionLayout?
    private var assigned: Set<PartitionSlot> = []
    private var nextChannel: UInt16 = 2
    /// Consecutive resubscriptions while waiting for the same missing number, per partition queue.
    private var strikes: [String: (expected: Int64, count: Int)] = [:]
    private var backoff = Backoff()
    private var lastHousekeeping: Int64 = 0
    private var lastMembership: Int64 = -1_000_000
    private var lastAcquire: Int64 = 0

    /// A message delivered this often is dead-lettered unapplied (`delivery_limit_exceeded`) by
    /// us, in its place in the partition's order, before the broker's delivery limit would drop it
    /// behind our back.
    var poisonDeliveries: Int64 { Int64(max(2, configuration.topology.deliveryLimit * 3 / 4)) }

    init(configuration: DaemonConfiguration, pipeline: MessagePipeline, stop: StopSignal, health: WorkerHealth, logger: Logger, memberID: String) {
        self.configuration = configuration
        self.pipeline = pipeline
        self.stop = stop
        self.health = health
        self.logger = logger
        self.memberID = memberID
    }

    func run() {
        while !stop.isStopping {
            health.turned()
            do {
                let store = try connectDatabase()
                let broker = try connectBroker()
                try membershipTurn(store, broker)
                var arrived = 0
                if let first = try broker.nextDelivery(timeoutMilliseconds: partitions.pending.isEmpty ? 250 : 0) {
                    let now = Monotonic.milliseconds()
                    if partitions.arrived(first, daemonUser: configuration.broker.user, now: now) { arrived += 1 }
                    var drained = 1
                    while partitions.pending.count < configuration.batchSize, let next = try broker.nextDelivery(timeoutMilliseconds: 0) {
                        if partitions.arrived(next, daemonUser: configuration.broker.user, now: now) { arrived += 1 }
                        drained += 1
                    }
                    // Under load (more than one message was waiting) the batch may linger a
                    // moment to fill: commits are shared, so throughput grows. A lone message is
                    // applied at once, so light load keeps its latency.
                    if drained > 1 && configuration.batchLingerMilliseconds > 0 {
                        let deadline = Monotonic.milliseconds() + Int64(configuration.batchLingerMilliseconds)
                        while partitions.pending.count < configuration.batchSize {
                            let left = deadline - Monotonic.milliseconds()
                            guard left > 0, let next = try broker.nextDelivery(timeoutMilliseconds: Int(left)) else { break }
                            if partitions.arrived(next, daemonUser: configuration.broker.user, now: now) { arrived += 1 }
                        }
                    }
                }
                if !partitions.pending.isEmpty { try applyNextBatch(store, broker) }
                try resolveGaps(store, broker)
                if arrived == 0 && partitions.pending.isEmpty { try housekeeping(store) }
                backoff.reset()
            } catch {
                WorkerRecovery.recover(from: error, role: "consumer", consequence: "messages stay queued", logger: logger, backoff: &backoff,
                                       stop: stop, dropConnections: dropConnections)
            }
        }
        leave()
        logger.info("consumer stopped")
    }

    // MARK: applying

    private func applyNextBatch(_ store: Store, _ broker: AMQPConnection) throws {
        let batch = partitions.nextBatch(maximum: configuration.batchSize) { ($0.deliveryCount ?? 0) >= poisonDeliveries }
        guard let first = batch.first else { return }
        if (first.deliveryCount ?? 0) >= poisonDeliveries {
            try deadLetterPoison(first, store, broker)
            return
        }
        let progress = PartitionSet.progress(batch)
        if let failure = try Self.nonTransientFailure({ () throws(PostgresError) in
            try pipeline.process(batch.map(\.delivery), store: store, beforeCommit: { (store: Store) throws(PostgresError) in try store.recordAppliedSequences(progress) })
        }) {
            // Not an outage: one message hits a database error (a bug). Apply the batch one by
            // one so the others commit; see `isolate`.
            logger.error("batch failed with a database error; isolating the message", metadata: ["error": "\(failure)"])
            try isolate(batch, store: store, broker: broker)
            return
        }
        // Acked only after the commit above: a crash in between redelivers, and the inbox makes
        // the second application a no-op.
        try ack(partitions.settled(batch), broker)
    }

    /// Applies each delivery in its own transaction. After one fails, the later deliveries of its
    /// partition are not applied (they would overtake it); the partition is resubscribed, so they
    /// come back after it. Deliveries of other partitions go on.
    private func isolate(_ batch: [PartitionDelivery], store: Store, broker: AMQPConnection) throws {
        var failed: Set<UInt16> = []
        for item in batch where !failed.contains(item.channel) {
            let progress = PartitionSet.progress([item])
            if let failure = try Self.nonTransientFailure({ () throws(PostgresError) in
                try pipeline.process([item.delivery], store: store, beforeCommit: { (store: Store) throws(PostgresError) in try store.recordAppliedSequences(progress) })
            }) {
                logger.error("message failed with a database error; returned to its partition", metadata: [
                    "error": "\(failure)", "type": "\(item.delivery.routingKey)", "partition": "\(item.queue)",
                    "deliveries": "\((item.deliveryCount ?? 0) + 1)"])
                failed.insert(item.channel)
            } else {
                try ack(partitions.settled([item]), broker)
            }
        }
        for channel in failed.sorted() { try resubscribe(channel, store, broker, reason: "a message failed with a database error") }
    }

    /// A message delivered `poisonDeliveries` times was never settled: each time the daemon
    /// failed on it or stopped. It is dead-lettered unapplied, in its place, and can be replayed
    /// (`receivablesd dead-letter replay`) after a fix.
    private func deadLetterPoison(_ item: PartitionDelivery, _ store: Store, _ broker: AMQPConnection) throws {
        let hint = EnvelopeHint.read(item.delivery.body, maximumBytes: configuration.maximumBodyBytes)
        let count = (item.deliveryCount ?? 0) + 1
        try store.transaction {
            try pipeline.deadLetter(item.delivery.body, routingKey: item.delivery.routingKey, properties: item.delivery.properties,
                                    rejection: Rejection(code: .deliveryLimitExceeded,
                                                         detail: "delivered \(count) times without being applied (the daemon failed or stopped on it each time); not applied"),
                                    source: hint.source, eventID: hint.id, type: hint.type, store: store)
            try store.recordAppliedSequences(PartitionSet.progress([item]))
            try store.notifyOutbox()
        }
        logger.error("message dead-lettered after too many deliveries", metadata: [
            "type": "\(hint.type ?? item.delivery.routingKey)", "id": "\(hint.id ?? "-")", "partition": "\(item.queue)", "deliveries": "\(count)"])
        DaemonMetrics.partitionEvent(item.queue, "poison")
        DaemonMetrics.rejection(reason: RejectionCode.deliveryLimitExceeded.rawValue)
        try ack(partitions.settled([item]), broker)
    }

    private func ack(_ acks: [PartitionAck], _ broker: AMQPConnection) throws(AMQPError) {
        for ack in acks { try broker.ack(ack.deliveryTag, multiple: ack.multiple, channel: ack.channel) }
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

    // MARK: gaps

    /// A partition whose guard waits for a number that does not come: resubscribe (a fresh
    /// consumer on a queue without consumers gets the returned messages first); after three tries
    /// for the same number, and once the router has committed the numbers up to the waiting one
    /// (so nothing is still being routed) and the queue has nothing else ready, accept the gap:
    /// the broker dead-lettered the missing message(s) by its delivery limit.
    private func resolveGaps(_ store: Store, _ broker: AMQPConnection) throws {
        let now = Monotonic.milliseconds()
        for channel in partitions.stuck(now: now, idleMilliseconds: 1_000, window: Int(configuration.prefetch)) {
            guard let partition = partitions.held[channel], let lowest = partition.orderGuard.lowestWaiting else { continue }
            let expected = partition.orderGuard.expected
            var strike: (expected: Int64, count: Int) = strikes[partition.queue].flatMap { $0.expected == expected ? $0 : nil } ?? (expected, 0)
            strike.count += 1
            strikes[partition.queue] = strike
            let metadata: Logger.Metadata = ["partition": "\(partition.queue)", "expected": "\(expected)", "lowest_waiting": "\(lowest)",
                                             "waiting": "\(partition.orderGuard.waitingCount)", "attempt": "\(strike.count)"]
            let routed = try store.partitionProgress().first { $0.queue == partition.queue }?.routed ?? 0
            let readyInQueue = try broker.queueStatus(partition.queue)?.messageCount ?? 0
            guard strike.count > 3, routed >= lowest, readyInQueue == 0 || strike.count > 10 else {
                logger.warning("partition: a message is missing before the ones delivered; resubscribing to get it first", metadata: metadata)
                DaemonMetrics.partitionEvent(partition.queue, "resubscribed")
                try resubscribe(channel, store, broker, reason: "waiting for message \(expected)")
                continue
            }
            let skipped = partitions.acceptGap(channel)
            try store.transaction { try store.recordAppliedSequences([:], skipped: [partition.queue: skipped]) }
            strikes[partition.queue] = nil
            logger.error("partition: messages never delivered (dead-lettered by the broker's delivery limit?); continuing after them",
                         metadata: metadata.merging(["skipped": "\(skipped)"]) { $1 })
            DaemonMetrics.partitionEvent(partition.queue, "gap_accepted", count: Int(skipped))
        }
    }

    // MARK: membership and assignment

    /// Heartbeat and assignment every third of the lease; acquiring missing partitions more often.
    private func membershipTurn(_ store: Store, _ broker: AMQPConnection) throws {
        let now = Monotonic.milliseconds()
        if now - lastMembership >= Int64(configuration.partitionLeaseMilliseconds / 3) {
            lastMembership = now
            try store.heartbeatMember(memberID, host: HostName.current, pid: Int(getpid()), holds: partitions.queues)
            let stored = try store.partitionLayout() ?? configuration.topology.partitions
            let layout = configuration.topology.layout(partitions: stored)
            self.layout = layout
            let live = try store.liveMembers(leaseMilliseconds: configuration.partitionLeaseMilliseconds).map(\.memberID) + [memberID]
            let owners = PartitionAssignment.assign(layout.slots, members: live, layout: layout)
            assigned = Set(owners.filter { $0.value == memberID }.keys)
            for (channel, partition) in partitions.held where !assigned.contains(partition.slot) || layout.queueName(partition.slot) != partition.queue {
                try release(channel, store, broker, reason: "assigned to another consumer")
            }
            let wall = WallClock.now().microsecondsSinceEpoch / 1000
            for (queue, age) in partitions.oldestAges(now: wall) { DaemonMetrics.partitionOldest(queue, ageSeconds: age / 1000) }
            if Int64.random(in: 0..<100) == 0 { try store.removeStaleMembers(olderThanSeconds: 3_600) }
        }
        if now - lastAcquire >= 200, let layout {
            lastAcquire = now
            for slot in assigned.sorted() where partitions.channel(of: slot) == nil {
                try acquire(slot, layout: layout, store, broker)
            }
        }
    }

    /// Subscribes to a partition if this session gets its lock and the queue has no consumer.
    private func acquire(_ slot: PartitionSlot, layout: PartitionLayout, _ store: Store, _ broker: AMQPConnection) throws {
        let queue = layout.queueName(slot)
        let key = Self.lockKey(slot)
        guard try store.tryPartitionLock(key) else { return }
        try Topology.declarePartition(on: broker, configuration.topology, queue: queue)
        // A previous consumer whose session died may still be subscribed until it notices; the
        // queue must be without consumers so RabbitMQ hands us the returned messages first.
        guard let status = try broker.queueStatus(queue), status.consumerCount == 0 else {
            try store.releasePartitionLock(key)
            return
        }
        let applied = try store.appliedSequence(queue)
        let channel = allocateChannel()
        try broker.openChannel(channel)
        try broker.setPrefetch(configuration.prefetch, channel: channel)
        try broker.consume(queue: queue, channel: channel)
        partitions.subscribed(slot, queue: queue, channel: channel, lastApplied: applied, now: Monotonic.milliseconds())
        DaemonMetrics.partitionOwned(queue, worker: health.name, owned: true)
        DaemonMetrics.partitionEvent(queue, "acquired")
        logger.info("partition acquired", metadata: ["partition": "\(queue)", "last_applied": "\(applied)", "ready": "\(status.messageCount)"])
    }

    /// Hands a partition back: the channel closes (its unacked messages return to the queue),
    /// then the lock goes, so whoever takes it next finds the queue without consumers.
    private func release(_ channel: UInt16, _ store: Store, _ broker: AMQPConnection, reason: String) throws {
        guard let partition = partitions.unsubscribed(channel) else { return }
        try broker.closeChannel(channel)
        try store.releasePartitionLock(Self.lockKey(partition.slot))
        DaemonMetrics.partitionOwned(partition.queue, worker: health.name, owned: false)
        DaemonMetrics.partitionEvent(partition.queue, "released")
        logger.info("partition released", metadata: ["partition": "\(partition.queue)", "reason": "\(reason)"])
    }

    /// Unsubscribes and subscribes again (at once if still assigned to us): the messages return
    /// and come back in the queue's order, returned ones first.
    private func resubscribe(_ channel: UInt16, _ store: Store, _ broker: AMQPConnection, reason: String) throws {
        try release(channel, store, broker, reason: reason)
        lastAcquire = 0
    }

    static func lockKey(_ slot: PartitionSlot) -> Int32 {
        switch slot {
        case .customers(let index): return Int32(index)
        case .bank: return -2
        }
    }

    /// Channel numbers are not reused soon: a closed channel's deliveries that rabbitmq-c had
    /// already queued must not be taken for a new subscription's.
    private func allocateChannel() -> UInt16 {
        while true {
            let candidate = nextChannel
            nextChannel = nextChannel >= 2_000 ? 2 : nextChannel + 1
            if partitions.held[candidate] == nil { return candidate }
        }
    }

    // MARK: connections

    private func connectDatabase() throws(PostgresError) -> Store {
        if let store, store.db.isConnected { return store }
        if store != nil { dropConnections() }  // the session died: so did its partition locks
        let fresh = try health.openLockingSession(configuration.database)
        store = fresh
        return fresh
    }

    private func connectBroker() throws(AMQPError) -> AMQPConnection {
        if let broker { return broker }
        let connection = try health.openBroker(configuration.broker, name: "receivablesd consumer")
        broker = connection
        lastMembership = -1_000_000
        logger.info("consumer connected", metadata: ["member": "\(memberID)"])
        return connection
    }

    /// Broker first: every channel closes and its unacked messages return; then the session,
    /// which frees the partition locks.
    private func dropConnections() {
        broker?.close()
        broker = nil
        for queue in partitions.queues { DaemonMetrics.partitionOwned(queue, worker: health.name, owned: false) }
        partitions = PartitionSet()
        store = nil
        health.set(database: false, broker: false)
    }

    /// Graceful stop: the last batch was committed and acked; hand every partition back and
    /// leave the membership, so the other instances take over at once instead of after the lease.
    private func leave() {
        if let store, let broker {
            do {
                for channel in partitions.held.keys.sorted() { try release(channel, store, broker, reason: "stopping") }
                try store.removeMember(memberID)
            } catch {
                logger.warning("consumer: could not hand partitions over cleanly; they move when the lease expires", metadata: ["error": "\(error)"])
            }
        }
        dropConnections()
    }

    /// Work that is not driven by a message: held messages that waited too long.
    private func housekeeping(_ store: Store) throws(PostgresError) {
        let now = Monotonic.milliseconds()
        guard now - lastHousekeeping >= Int64(configuration.housekeepingIntervalSeconds) * 1000 else { return }
        lastHousekeeping = now
        try pipeline.expireHeldMessages(store: store)
    }
}

/// This host's name, for member ids and operator output.
enum HostName {
    static let current: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}
