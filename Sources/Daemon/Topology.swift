import AMQPClient
import Partitioning

/// The broker objects of the partitioned intake (docs/partitioning.md), declared idempotently:
///
///     ar.inbound (topic) ──every inbound type and "#"──▶ ar.inbound.intake (SAC)
///         ──one router at a time──▶ ar.partitions (direct) ──queue name──▶ ar.inbound.part.00 … .15, .bank (SAC)
///
/// Queues are quorum (replicated, delivery limit + dead-letter exchange) or classic, as configured;
/// every queue has single active consumer. The broker never sees a customer id: the router reads
/// it from the body and picks the partition, so publishers keep publishing to ar.inbound with
/// routing key = type.
enum Topology {
    static func declare(on broker: AMQPConnection, _ names: TopologyNames, inboundTypes: [String]) throws(AMQPError) {
        try broker.declareExchange(names.inboundExchange)
        try broker.declareExchange(names.eventsExchange)
        try broker.declareExchange(names.deadLetterExchange)
        try broker.declareExchange(names.partitionExchange, type: "direct")
        try broker.declareQueue(names.intakeQueue, durable: true, arguments: queueArguments(names))
        // Every inbound type by name (the contract), and "#" so a message of an unknown type
        // still reaches us and is dead-lettered with a reason instead of vanishing unrouted.
        for type in inboundTypes + ["#"] {
            try broker.bindQueue(names.intakeQueue, exchange: names.inboundExchange, routingKey: type)
        }
        try declarePartitions(on: broker, names, layout: names.layout(partitions: names.partitions))
        // Dead letters are kept in a queue for operators (`receivablesd dead-letter list`).
        try broker.declareQueue(names.deadLetterQueue, durable: true, arguments: ["x-queue-type": .string("quorum")])
        try broker.bindQueue(names.deadLetterQueue, exchange: names.deadLetterExchange, routingKey: "#")
    }

    /// The partition queues of `layout` and their bindings.
    static func declarePartitions(on broker: AMQPConnection, _ names: TopologyNames, layout: PartitionLayout) throws(AMQPError) {
        try broker.declareExchange(names.partitionExchange, type: "direct")
        for slot in layout.slots { try declarePartition(on: broker, names, queue: layout.queueName(slot)) }
    }

    static func declarePartition(on broker: AMQPConnection, _ names: TopologyNames, queue: String) throws(AMQPError) {
        try broker.declareQueue(queue, durable: true, arguments: queueArguments(names))
        try broker.bindQueue(queue, exchange: names.partitionExchange, routingKey: queue)
    }

    /// Single active consumer on every queue of the path (a safety net: the daemon also never
    /// subscribes a second consumer on purpose, see IntakeRouter and ConsumerWorker).
    static func queueArguments(_ names: TopologyNames) -> [String: AMQPFieldValue] {
        var arguments: [String: AMQPFieldValue] = ["x-dead-letter-exchange": .string(names.deadLetterExchange),
                                                   "x-single-active-consumer": .bool(true)]
        if names.workQueueType == "quorum" {
            arguments["x-queue-type"] = .string("quorum")
            arguments["x-delivery-limit"] = .int(Int64(names.deliveryLimit))
        }
        return arguments
    }
}

extension TopologyNames {
    func layout(partitions: Int) -> PartitionLayout { PartitionLayout(customerPartitions: partitions, queuePrefix: partitionQueuePrefix) }
}

/// Headers the router adds to what it republishes into a partition; the consumer takes them off
/// again, so the pipeline sees the message exactly as its publisher sent it.
enum RoutingHeaders {
    /// The partition's sequence number of the message (`PartitionOrderGuard`).
    static let sequence = "x-ar-partition-seq"
    /// The broker-verified `user_id` of the original publish (absent when it had none).
    static let user = "x-ar-routed-user"
    /// The original routing key (the type, as published to ar.inbound).
    static let routingKey = "x-ar-routed-key"
    /// Milliseconds since the epoch when it was routed (oldest-message age per partition).
    static let routedAt = "x-ar-routed-at"
    /// What decided the partition (customer, subject, reference, ...), for operators.
    static let decision = "x-ar-partition-key"

    static let all = [sequence, user, routingKey, routedAt, decision]

    /// The delivery as originally published, when it was routed by us (published with the
    /// daemon's own broker user, which only holders of its credentials can do); else unchanged.
    static func restored(_ delivery: AMQPDelivery, daemonUser: String) -> AMQPDelivery {
        guard delivery.properties.userID == daemonUser, case .int = delivery.properties.headers[sequence] else { return delivery }
        var properties = delivery.properties
        if case .string(let publisher)? = properties.headers[RoutingHeaders.user] { properties.userID = publisher } else { properties.userID = nil }
        let routingKey = properties.headers[RoutingHeaders.routingKey]?.stringValue ?? delivery.routingKey
        for header in all { properties.headers.removeValue(forKey: header) }
        return AMQPDelivery(deliveryTag: delivery.deliveryTag, redelivered: delivery.redelivered, exchange: delivery.exchange,
                            routingKey: routingKey, properties: properties, body: delivery.body, channel: delivery.channel)
    }

    static func sequenceNumber(_ delivery: AMQPDelivery, daemonUser: String) -> Int64? {
        guard delivery.properties.userID == daemonUser, case .int(let value)? = delivery.properties.headers[sequence] else { return nil }
        return value
    }
}
