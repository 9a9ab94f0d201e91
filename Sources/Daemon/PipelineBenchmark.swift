import AMQPClient
import ARContract
import ARDomain
import Logging
import PostgresClient
import Store

/// `receivablesd bench pipeline`: how fast the seam consume → decode → apply → commit → ack
/// runs, against two baselines measured in the same run on the same services:
/// - broker: consuming and acking the same number of messages and doing nothing else;
/// - database: one INSERT per message committed in transactions of the same batch size.
/// The pipeline cannot beat either; the ratios say where the time goes.
/// Runs in a throwaway database and private queues, which it removes afterwards.
public struct PipelineBenchmark {
    public struct Figures: Sendable {
        public let messages: Int
        public let brokerPerSecond: Double
        public let databasePerSecond: Double
        public let pipelinePerSecond: Double
        public let publisherPerSecond: Double
    }

    let configuration: DaemonConfiguration
    let messages: Int
    let batchSize: Int
    let customers: Int

    public init(configuration: DaemonConfiguration, messages: Int, batchSize: Int, customers: Int) {
        self.configuration = configuration
        self.messages = messages
        self.batchSize = batchSize
        self.customers = customers
    }

    public func run(log: (String) -> Void) throws -> Figures {
        let tag = "bench\(Monotonic.milliseconds() % 1_000_000_000)"
        let databaseName = "receivablesd_\(tag)"
        let admin = try PostgresConnection(configuration.database)
        // CREATE DATABASE takes no parameters; the name is built from digits only.
        try admin.simpleQuery("CREATE DATABASE \(databaseName)")
        defer { _ = try? admin.simpleQuery("DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)") }
        var settings = configuration
        settings.database.database = databaseName
        settings.batchSize = batchSize
        settings.topology.workQueue = "receivablesd.\(tag).work"
        // Events go to a private exchange so nobody's consumers see benchmark traffic.
        settings.topology.eventsExchange = "receivablesd.\(tag).events"
        settings.publishers = PublisherPolicy(allowed: [configuration.broker.user: ["*"]])
        let db = try PostgresConnection(settings.database)
        try Migrator().migrate(db)
        let broker = try AMQPConnection(settings.broker)
        try broker.enableConfirms()
        let queue = settings.topology.workQueue
        try broker.declareQueue(queue, durable: true, arguments: ["x-queue-type": .string("classic")])
        try broker.declareExchange(settings.topology.eventsExchange, type: "topic", durable: false)
        defer {
            // Best effort: a failed bench must not leave its queue and exchange behind, but a
            // cleanup error must not hide the bench's own error either.
            _ = try? broker.deleteQueue(queue)
            _ = try? broker.deleteExchange(settings.topology.eventsExchange)
            broker.close()
        }

        let bodies = makeMessages(tag: tag)
        log("broker baseline: publish and consume+ack \(messages) messages")
        try publish(bodies, to: queue, broker: broker)
        let brokerRate = try consumeOnly(queue: queue, count: bodies.count)

        log("database baseline: \(messages) single-row INSERTs, \(batchSize) per transaction")
        let databaseRate = try insertOnly(db, count: bodies.count)

        log("pipeline: \(messages) messages through decode → apply → commit → ack, batch \(batchSize)")
        try publish(bodies, to: queue, broker: broker)
        let decoder = try InboundDecoder()
        let pipeline = MessagePipeline(configuration: settings, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                                       decoder: decoder)
        let pipelineRate = try consumeThroughPipeline(queue: queue, count: bodies.count, pipeline: pipeline, settings: settings)

        log("outbox: publishing the events the pipeline wrote, with confirms")
        let publisherRate = try drainOutbox(settings: settings)
        return Figures(messages: bodies.count, brokerPerSecond: brokerRate, databasePerSecond: databaseRate,
                       pipelinePerSecond: pipelineRate, publisherPerSecond: publisherRate)
    }

    /// customer.upserted for each customer, then invoices spread over them (realistic work:
    /// lock, look-ups, credit check, journal, three events each).
    func makeMessages(tag: String) -> [[UInt8]] {
        var bodies: [[UInt8]] = []
        func event(_ id: String, _ type: String, _ data: JSONValue) -> [UInt8] {
            encodeEvent(id: id, source: "bench", type: type, time: Instant(secondsSinceEpoch: 1_795_000_000), subject: nil, data: data)
        }
        for customer in 0..<customers {
            bodies.append(event("\(tag)-c\(customer)", "customer.upserted",
                                .object(JSONObject([("customer_id", .string("\(tag)-C\(customer)")), ("name", .string("Customer \(customer)"))]))))
        }
        for index in 0..<max(0, messages - customers) {
            let currency = ["USD", "EUR", "JPY", "KWD"][index % 4]
            let amount = currency == "JPY" ? "\(1000 + index)" : currency == "KWD" ? "\(10 + index % 90).250" : "\(100 + index % 900).25"
            bodies.append(event("\(tag)-i\(index)", "invoice.issued", .object(JSONObject([
                ("invoice_id", .string("\(tag)-I\(index)")), ("customer_id", .string("\(tag)-C\(index % customers)")),
                ("number", .string("INV-\(index)")), ("currency", .string(currency)), ("amount", .string(amount)),
                ("issue_date", .string("2026-11-01")), ("due_date", .string("2026-12-01")),
            ]))))
        }
        return bodies
    }

    func publish(_ bodies: [[UInt8]], to queue: String, broker: AMQPConnection) throws {
        var last: UInt64 = 0
        for (index, body) in bodies.enumerated() {
            last = try broker.publish(exchange: "", routingKey: queue, body: body,
                                      properties: AMQPProperties(contentType: "application/cloudevents+json", deliveryMode: 2,
                                                                 userID: configuration.broker.user))
            if index % 500 == 499 { _ = try broker.awaitConfirms(through: last, timeoutMilliseconds: 60_000) }
        }
        _ = try broker.awaitConfirms(through: last, timeoutMilliseconds: 60_000)
    }

    func consumeOnly(queue: String, count: Int) throws -> Double {
        let consumer = try AMQPConnection(configuration.broker)
        defer { consumer.close() }
        try consumer.setPrefetch(configuration.prefetch)
        try consumer.consume(queue: queue)
        let started = Monotonic.nanoseconds()
        var seen = 0
        while seen < count {
            guard let first = try consumer.nextDelivery(timeoutMilliseconds: 5_000) else { throw AMQPError("bench queue ran dry at \(seen)") }
            var last = first
            seen += 1
            while seen < count, seen % batchSize != 0, let next = try consumer.nextDelivery(timeoutMilliseconds: 0) { last = next; seen += 1 }
            try consumer.ack(last.deliveryTag, multiple: true)
        }
        return rate(count, since: started)
    }

    func insertOnly(_ db: PostgresConnection, count: Int) throws -> Double {
        try db.simpleQuery("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        let started = Monotonic.nanoseconds()
        var done = 0
        while done < count {
            try db.transaction {
                for _ in 0..<min(batchSize, count - done) {
                    try db.query("INSERT INTO bench_rows (payload) VALUES ($1)", [.text("row \(done)")])
                    done += 1
                }
            }
        }
        return rate(count, since: started)
    }

    func consumeThroughPipeline(queue: String, count: Int, pipeline: MessagePipeline, settings: DaemonConfiguration) throws -> Double {
        let consumer = try AMQPConnection(settings.broker)
        defer { consumer.close() }
        try consumer.setPrefetch(settings.prefetch)
        try consumer.consume(queue: queue)
        let store = Store(try PostgresConnection(settings.database))
        let started = Monotonic.nanoseconds()
        var seen = 0
        while seen < count {
            guard let first = try consumer.nextDelivery(timeoutMilliseconds: 5_000) else { throw AMQPError("bench queue ran dry at \(seen)") }
            var batch = [first]
            while batch.count < batchSize, seen + batch.count < count, let next = try consumer.nextDelivery(timeoutMilliseconds: 0) { batch.append(next) }
            let outcomes = try pipeline.process(batch, store: store)
            if let bad = outcomes.first(where: { if case .applied = $0 { return false } else { return true } }) {
                throw AMQPError("bench message not applied: \(bad)")
            }
            try consumer.ack(batch[batch.count - 1].deliveryTag, multiple: true)
            seen += batch.count
        }
        return rate(count, since: started)
    }

    func drainOutbox(settings: DaemonConfiguration) throws -> Double {
        let store = Store(try PostgresConnection(settings.database))
        let broker = try AMQPConnection(settings.broker)
        defer { broker.close() }
        try broker.enableConfirms()
        let publisher = OutboxPublisher(configuration: settings, stop: StopSignal(), health: WorkerHealth(name: "bench"),
                                        logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        let total = try store.outboxBacklog().count
        let started = Monotonic.nanoseconds()
        while try publisher.publishBatch(store: store, broker: broker) > 0 {}
        return rate(Int(total), since: started)
    }

    func rate(_ count: Int, since started: Int64) -> Double {
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9  // a figure for humans, not money
        return seconds > 0 ? Double(count) / seconds : 0
    }
}
