import AMQPClient
import ARContract
import ARDomain
import PostgresClient
import Store
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd bench e2e`: the whole product under a steady stream, as a gateway and the
/// portal see it. A load generator (its own connection, publisher confirms) publishes
/// `payment.succeeded` (optionally mixed with new invoices and customer updates) into the inbound
/// exchange at a fixed rate — or as fast as the daemon keeps up — for a fixed duration, into 1, 2 …
/// instances of `receivablesd serve`; an observer (another connection, like the portal) consumes
/// `payment.confirmed` from the events exchange. Latency is publish → `payment.confirmed` arriving.
///
/// Baselines measured in the same run on the same services, with the same message sizes:
/// - broker: publish with confirms → consume → ack through one queue, no daemon;
/// - database: one INSERT of each message's body, committed in transactions of the daemon's
///   batch size (the least durable work a payment needs).
/// The daemon's throughput is reported as a ratio of the lower of the two.
///
/// Afterwards the instances are stopped (SIGTERM: drain) and `verify` runs over their books.
public struct EndToEndBenchmark {
    public struct Phase: Sendable {
        public let instances: Int
        /// Payments per second offered; 0: as fast as the daemon confirms (bounded in flight).
        public let offeredPerSecond: Int
        public let seconds: Double
        public let published: Int
        public let confirmed: Int
        public let otherMessages: Int
        public var confirmedPerSecond: Double { seconds > 0 ? Double(confirmed) / seconds : 0 }
        public let latency: LatencySummary
        /// Publish → the daemon starting to apply it (the event's `time`): intake, routing, the
        /// partition queue and the wait for a batch.
        public let untilApplied: LatencySummary
        /// Applying started → `payment.confirmed` observed: the rest of the batch, its commit,
        /// the outbox publisher and the broker.
        public let afterApplied: LatencySummary
        /// p99 of the payments published in each second of the phase (ms): where in time the
        /// tail is (a steady tail is load, a spike is an event: a checkpoint, autovacuum, a GC).
        public let p99BySecond: [Double]
        /// Resident memory of the instances (sum, KiB): at the start, at the end, and the highest.
        public let residentStartKiB: Int
        public let residentEndKiB: Int
        public let residentMaxKiB: Int
        /// Sampled about once a second through the phase: warm-up and growth per message apart.
        public let residentSamplesKiB: [Int]
        /// The sample a tenth into the phase (after warm-up); end minus this is the growth.
        public var residentWarmKiB: Int {
            residentSamplesKiB.isEmpty ? residentStartKiB : residentSamplesKiB[residentSamplesKiB.count / 10]
        }
        /// CPU time of the instances per 1,000 payments, milliseconds.
        public let cpuMillisecondsPerThousand: Double
        /// The same for PostgreSQL (the whole server: backends, WAL writer, autovacuum …), the
        /// broker and the bench process itself (load generator and observer); nil when not found
        /// on this machine.
        public let postgresCPUPerThousand: Double?
        public let brokerCPUPerThousand: Double?
        public let generatorCPUPerThousand: Double?
    }

    public struct InstancesRun: Sendable {
        public let instances: Int
        public let phases: [Phase]
        public let verifyViolations: [String]
        public let deadLetters: Int
    }

    public struct Baselines: Sendable {
        public let messages: Int
        public let bodyBytes: Int
        public let brokerPerSecond: Double
        public let brokerLatency: LatencySummary
        public let databasePerSecond: Double
        public let databaseBatch: Int
        public var lower: Double { min(brokerPerSecond, databasePerSecond) }
    }

    public struct Report: Sendable {
        public let baselines: Baselines
        public let runs: [InstancesRun]
    }

    let configuration: DaemonConfiguration
    let executable: String
    let customers: Int
    let seed: UInt64
    let seconds: Int
    let rates: [Int]
    let consumersPerInstance: Int
    let mixed: Bool

    public init(configuration: DaemonConfiguration, executable: String, customers: Int, seed: UInt64, seconds: Int, rates: [Int],
                consumersPerInstance: Int, mixed: Bool) {
        self.configuration = configuration
        self.executable = executable
        self.customers = customers
        self.seed = seed
        self.seconds = seconds
        self.rates = rates
        self.consumersPerInstance = consumersPerInstance
        self.mixed = mixed
    }

    public func run(instances: [Int], log: (String) -> Void) throws -> Report {
        let traffic = PaymentTraffic(customers: customers, seed: seed, mixed: mixed)
        let baselines = try measureBaselines(traffic, log: log)
        var runs: [InstancesRun] = []
        for count in instances {
            runs.append(try play(traffic, instances: count, log: log))
        }
        return Report(baselines: baselines, runs: runs)
    }

    // MARK: the daemon

    private func play(_ traffic: PaymentTraffic, instances: Int, log: (String) -> Void) throws -> InstancesRun {
        let tag = "e2e\(Monotonic.milliseconds() % 1_000_000_000)i\(instances)"
        let cluster = BenchCluster(configuration: configuration, executable: executable, consumersPerInstance: consumersPerInstance, tag: tag)
        let names = cluster.names
        try cluster.createDatabase()
        defer { cluster.dropDatabase() }
        log("\(instances) instance(s): starting on database \(cluster.databaseName)")
        let children = try cluster.start(instances: instances)
        var stopped = false
        defer {
            if !stopped { cluster.stop(children) }
            cluster.removeTopology(log: log)
        }
        let db = try PostgresConnection(cluster.database)
        let services = ServiceCPU(db: db, brokerPort: configuration.broker.port)

        let observer = try ConfirmationObserver(configuration.broker, exchange: names.eventsExchange,
                                                queue: "receivablesd.\(tag).observer", routingKey: "payment.confirmed")
        let observerThread = startThread(name: "observer") { observer.run() }
        defer {
            observer.stop()
            pthread_join(observerThread, nil)
        }
        let publisher = try LoadPublisher(configuration.broker, exchange: names.inboundExchange, user: configuration.broker.user)
        defer { publisher.close() }

        let setup = traffic.setup()
        log("\(instances) instance(s): setting up \(customers) customers with open invoices (\(setup.count) messages)")
        try publisher.publishAll(setup)
        try waitForInbox(db, count: setup.count, cluster: cluster, children: children)

        // Warm-up (phase 0, not measured), then the statistics autovacuum gathers within a minute
        // of any load. Without them the first minute measures plans made for empty tables: the
        // daemon's prepared statements planned sequential scans of `applications` while it held a
        // few rows and kept them as it grew (0.85 ms per payment and rising, half of the time).
        var generator = traffic.generator()
        let warmUp = min(customers, 2_000)
        for _ in 0..<warmUp { try publisher.publish(generator.payment(phase: 0, publishedAt: Monotonic.nanoseconds())) }
        try publisher.confirmAll()
        let warmDeadline = Monotonic.milliseconds() + 300_000
        while observer.confirmed(phase: 0) < warmUp {
            try cluster.checkAlive(children)
            guard Monotonic.milliseconds() < warmDeadline else {
                throw BenchError("the warm-up payments were not all confirmed within 5 minutes (\(observer.confirmed(phase: 0)) of \(warmUp))")
            }
            usleep(20_000)
        }
        try db.execute("ANALYZE")
        log("\(instances) instance(s): warm-up of \(warmUp) payments, then ANALYZE (what autovacuum does within a minute of a load)")

        var phases: [Phase] = []
        for (index, rate) in rates.enumerated() {
            let phase = index + 1
            let before = (cpu: children.compactMap(BenchCluster.cpuTicks).reduce(0, +),
                          resident: children.compactMap(BenchCluster.residentKiB).reduce(0, +))
            let servicesBefore = services.sample()
            let generatorBefore = ServiceCPU.ownTicks()
            var residentMax = before.resident
            var residentSamples: [Int] = []
            var lastSample = Monotonic.nanoseconds()
            let started = Monotonic.nanoseconds()
            let end = started + Int64(seconds) * 1_000_000_000
            var published = 0
            var others = 0
            // Bounded in flight when unpaced: the figure is what the daemon sustains, not how
            // long a queue the broker can hold.
            let window = 5_000
            while true {
                let now = Monotonic.nanoseconds()
                if now >= end { break }
                if now - lastSample >= 1_000_000_000 {
                    lastSample = now
                    try cluster.checkAlive(children)
                    let resident = children.compactMap(BenchCluster.residentKiB).reduce(0, +)
                    residentSamples.append(resident)
                    residentMax = max(residentMax, resident)
                }
                let due: Int
                if rate > 0 {
                    due = Int((now - started) / 1_000 * Int64(rate) / 1_000_000) + 1 - published
                } else {
                    due = min(256, window - (published - observer.confirmed(phase: phase)))
                }
                if due <= 0 {
                    usleep(rate > 0 ? 500 : 1_000)
                    continue
                }
                for _ in 0..<due {
                    let message = generator.next(phase: phase, publishedAt: Monotonic.nanoseconds())
                    try publisher.publish(message)
                    if message.type == "payment.succeeded" { published += 1 } else { others += 1 }
                }
            }
            try publisher.confirmAll()
            let offeredSeconds = Double(Monotonic.nanoseconds() - started) / 1e9  // a figure for humans, not money
            // Everything published must come back confirmed: nothing lost.
            let drainDeadline = Monotonic.milliseconds() + 180_000
            while observer.confirmed(phase: phase) < published && Monotonic.milliseconds() < drainDeadline {
                try cluster.checkAlive(children)
                residentMax = max(residentMax, children.compactMap(BenchCluster.residentKiB).reduce(0, +))
                usleep(20_000)
            }
            let stats = observer.statistics(phase: phase)
            // The rate counts the confirmations that arrived within the phase and its drain.
            let wall = stats.lastArrival > started ? Double(stats.lastArrival - started) / 1e9 : offeredSeconds
            let after = (cpu: children.compactMap(BenchCluster.cpuTicks).reduce(0, +),
                         resident: children.compactMap(BenchCluster.residentKiB).reduce(0, +))
            let servicesAfter = services.sample()
            let generatorAfter = ServiceCPU.ownTicks()
            let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
            let cpuMilliseconds = Double(after.cpu - before.cpu) / ticksPerSecond * 1000
            // Milliseconds of CPU per 1,000 confirmed payments, from two tick counts.
            func perThousand(_ start: Int64?, _ end: Int64?) -> Double? {
                guard let start, let end, stats.count > 0 else { return nil }
                return Double(end - start) / ticksPerSecond * 1000 / Double(stats.count) * 1000
            }
            let result = Phase(instances: instances, offeredPerSecond: rate, seconds: wall,
                               published: published, confirmed: stats.count, otherMessages: others,
                               latency: LatencySummary(stats.latencies), untilApplied: LatencySummary(stats.untilApplied),
                               afterApplied: LatencySummary(stats.afterApplied),
                               p99BySecond: LatencySummary.bySecond(stats.latencies, publishedAt: stats.publishedAt, from: started),
                               residentStartKiB: before.resident, residentEndKiB: after.resident, residentMaxKiB: max(residentMax, after.resident),
                               residentSamplesKiB: residentSamples,
                               cpuMillisecondsPerThousand: stats.count > 0 ? cpuMilliseconds / Double(stats.count) * 1000 : 0,
                               postgresCPUPerThousand: perThousand(servicesBefore.postgres, servicesAfter.postgres),
                               brokerCPUPerThousand: perThousand(servicesBefore.broker, servicesAfter.broker),
                               generatorCPUPerThousand: perThousand(generatorBefore, generatorAfter))
            phases.append(result)
            log("\(instances) instance(s), \(rate > 0 ? "\(rate)/s offered" : "unpaced"): \(published) payments, \(stats.count) confirmed, "
                + "\(Int(result.confirmedPerSecond))/s, p50 \(result.latency.p50) ms, p99 \(result.latency.p99) ms, p99.9 \(result.latency.p999) ms, "
                + "(publish → applying p50/p99 \(result.untilApplied.p50)/\(result.untilApplied.p99) ms, applying → observed \(result.afterApplied.p50)/\(result.afterApplied.p99) ms), "
                + "RSS \(result.residentStartKiB / 1024)→\(result.residentWarmKiB / 1024)→\(result.residentEndKiB / 1024) MiB (start, warm, end)")
            log("\(instances) instance(s), \(rate > 0 ? "\(rate)/s offered" : "unpaced"): p99 ms of each second's payments: "
                + result.p99BySecond.map { String(Int($0.rounded())) }.joined(separator: " "))
        }
        // Stop (drain: the outbox is published before exit), then check the books.
        cluster.stop(children)
        stopped = true
        let violations = try Store(db).verify().map { "\($0.check): \($0.detail)" }
        let deadLetters = Int(try db.query("SELECT count(*) AS n FROM dead_letters").first?.int64("n") ?? 0)
        log("\(instances) instance(s): verify \(violations.isEmpty ? "passes" : "FAILS (\(violations.count))"), \(deadLetters) dead letters")
        if violations.isEmpty && deadLetters == 0 { cluster.removeLogs(instances: instances) }
        return InstancesRun(instances: instances, phases: phases, verifyViolations: violations, deadLetters: deadLetters)
    }

    private func waitForInbox(_ db: PostgresConnection, count: Int, cluster: BenchCluster, children: [pid_t]) throws {
        let deadline = Monotonic.milliseconds() + 600_000
        while Monotonic.milliseconds() < deadline {
            try cluster.checkAlive(children)
            let settled = try db.query("SELECT count(*) AS n FROM inbox").first?.int64("n") ?? 0
            if settled >= Int64(count) { return }
            usleep(50_000)
        }
        throw BenchError("the set-up messages were not applied within 10 minutes")
    }

    // MARK: baselines

    private func measureBaselines(_ traffic: PaymentTraffic, log: (String) -> Void) throws -> Baselines {
        let tag = "e2ebase\(Monotonic.milliseconds() % 1_000_000_000)"
        var generator = traffic.generator()
        let sample = (0..<20_000).map { _ in generator.payment(phase: 0, publishedAt: 0).body }
        let bodyBytes = sample.reduce(0) { $0 + $1.count } / max(1, sample.count)

        log("broker baseline: \(sample.count) payments published with confirms → consumed → acked, no daemon")
        let queue = "receivablesd.\(tag).baseline"
        let admin = try AMQPConnection(configuration.broker)
        defer { admin.close() }
        try admin.declareQueue(queue, durable: true, arguments: ["x-queue-type": .string(configuration.topology.workQueueType)])
        defer { _ = try? admin.deleteQueue(queue) }  // best effort cleanup
        let observer = try ConfirmationObserver(configuration.broker, exchange: nil, queue: queue, routingKey: nil)
        let observerThread = startThread(name: "baseline-consumer") { observer.run() }
        let publisher = try LoadPublisher(configuration.broker, exchange: "", user: configuration.broker.user)
        let started = Monotonic.nanoseconds()
        var baselineGenerator = traffic.generator()
        for _ in 0..<sample.count {
            // Same bounded window as the daemon's unpaced phase.
            while publisher.published - observer.confirmed(phase: 1) >= 5_000 { usleep(1_000) }
            try publisher.publish(BenchMessage(type: queue, body: baselineGenerator.payment(phase: 1, publishedAt: Monotonic.nanoseconds()).body))
        }
        try publisher.confirmAll()
        while observer.confirmed(phase: 1) < sample.count && Monotonic.nanoseconds() - started < 120_000_000_000 { usleep(5_000) }
        let stats = observer.statistics(phase: 1)
        observer.stop()
        pthread_join(observerThread, nil)
        publisher.close()
        let brokerSeconds = Double(stats.lastArrival - started) / 1e9  // a figure for humans, not money
        let brokerRate = brokerSeconds > 0 ? Double(stats.count) / brokerSeconds : 0

        let batch = configuration.batchSize
        log("database baseline: \(sample.count) single-row INSERTs of the same bodies, \(batch) per transaction")
        let scratch = BenchCluster(configuration: configuration, executable: executable, consumersPerInstance: 0, tag: tag)
        try scratch.createDatabase()
        defer { scratch.dropDatabase() }
        let db = try PostgresConnection(scratch.database)
        try db.simpleQuery("CREATE TABLE baseline_payments (seq bigserial PRIMARY KEY, body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        let databaseStarted = Monotonic.nanoseconds()
        var written = 0
        while written < sample.count {
            try db.transaction {
                for body in sample[written..<min(sample.count, written + batch)] {
                    try db.query("INSERT INTO baseline_payments (body) VALUES ($1)", [.bytes(body)])
                }
            }
            written = min(sample.count, written + batch)
        }
        let databaseSeconds = Double(Monotonic.nanoseconds() - databaseStarted) / 1e9  // a figure for humans, not money
        return Baselines(messages: sample.count, bodyBytes: bodyBytes, brokerPerSecond: brokerRate, brokerLatency: LatencySummary(stats.latencies),
                         databasePerSecond: databaseSeconds > 0 ? Double(sample.count) / databaseSeconds : 0, databaseBatch: batch)
    }
}

/// p50/p99/p99.9/max of latencies in milliseconds.
public struct LatencySummary: Sendable {
    public let samples: Int
    public let p50: Double
    public let p99: Double
    public let p999: Double
    public let maximum: Double

    /// The p99 (ms) of each whole second after `start`, by publish time.
    static func bySecond(_ latencies: [Int64], publishedAt: [Int64], from start: Int64) -> [Double] {
        var seconds: [[Int64]] = []
        for (latency, published) in zip(latencies, publishedAt) where published >= start {
            let second = Int((published - start) / 1_000_000_000)
            while seconds.count <= second { seconds.append([]) }
            seconds[second].append(latency)
        }
        return seconds.map { LatencySummary($0).p99 }
    }

    init(_ nanoseconds: [Int64]) {
        let sorted = nanoseconds.sorted()
        samples = sorted.count
        func at(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
            return (Double(sorted[max(0, index)]) / 10_000).rounded() / 100  // ms, two decimals
        }
        p50 = at(0.50)
        p99 = at(0.99)
        p999 = at(0.999)
        maximum = at(1.0)
    }
}

struct BenchMessage {
    let type: String
    let body: [UInt8]
}

/// The traffic: customers with a large open invoice each (set-up), then payments of 1.00–499.99
/// applied oldest-first; mixed: one in five messages is a new invoice or a customer update.
/// Each payment's id carries its phase and publish time, so the observer needs no shared state.
struct PaymentTraffic {
    static let marker = Array("\"payment_id\":\"E2EP-".utf8)
    let customers: Int
    let seed: UInt64
    let mixed: Bool

    func customerID(_ index: Int) -> String { "E2E-C\(index)" }
    func currency(_ index: Int) -> String { index % 3 == 2 ? "EUR" : "USD" }

    func setup() -> [BenchMessage] {
        var messages: [BenchMessage] = []
        for index in 0..<customers {
            messages.append(Self.event("e2e-setup-c\(index)", "customer.upserted", [
                ("customer_id", .string(customerID(index))), ("name", .string("Customer \(index)")), ("email", .string("ap\(index)@example.com")),
            ]))
        }
        for index in 0..<customers {
            // Large enough that the payments of a 10-minute run never pay it off.
            messages.append(Self.invoice(id: "E2E-I\(index)-0", customer: customerID(index), currency: currency(index), amount: "50000000.00"))
        }
        return messages
    }

    func generator() -> Generator { Generator(traffic: self, random: BenchRandom(seed: seed)) }

    struct Generator {
        let traffic: PaymentTraffic
        var random: BenchRandom
        var sequence = 0

        mutating func next(phase: Int, publishedAt: Int64) -> BenchMessage {
            if traffic.mixed {
                switch random.next() % 10 {
                case 0:
                    sequence += 1
                    let customer = Int(random.next() % UInt64(traffic.customers))
                    return PaymentTraffic.invoice(id: "E2E-I\(customer)-\(phase)-\(sequence)", customer: traffic.customerID(customer),
                                                  currency: traffic.currency(customer), amount: "\(50 + random.next() % 450).00")
                case 1:
                    sequence += 1
                    let customer = Int(random.next() % UInt64(traffic.customers))
                    return PaymentTraffic.event("e2e-u\(phase)-\(sequence)", "customer.upserted", [
                        ("customer_id", .string(traffic.customerID(customer))), ("name", .string("Customer \(customer)")),
                        ("email", .string("billing\(sequence)@example.com")),
                    ])
                default: break
                }
            }
            return payment(phase: phase, publishedAt: publishedAt)
        }

        mutating func payment(phase: Int, publishedAt: Int64) -> BenchMessage {
            sequence += 1
            let customer = Int(random.next() % UInt64(traffic.customers))
            let minor = 100 + random.next() % 49_900
            let method = ["card", "card", "card", "ach_debit", "sepa_debit"][Int(random.next() % 5)]
            return PaymentTraffic.event("e2e-p\(phase)-\(sequence)", "payment.succeeded", [
                ("payment_id", .string("E2EP-\(phase)-\(sequence)-\(publishedAt)")), ("customer_id", .string(traffic.customerID(customer))),
                ("currency", .string(traffic.currency(customer))), ("amount", .string("\(minor / 100).\(String(minor % 100 + 100).dropFirst())")),
                ("method", .string(method)), ("received_at", .string("2026-11-30T10:00:00Z")),
            ])
        }
    }

    static func invoice(id: String, customer: String, currency: String, amount: String) -> BenchMessage {
        event("e2e-" + id, "invoice.issued", [
            ("invoice_id", .string(id)), ("customer_id", .string(customer)), ("number", .string(id)), ("currency", .string(currency)),
            ("amount", .string(amount)), ("issue_date", .string("2026-11-01")), ("due_date", .string("2026-12-31")),
        ])
    }

    static func event(_ id: String, _ type: String, _ data: [(String, JSONValue)]) -> BenchMessage {
        BenchMessage(type: type, body: encodeEvent(id: id, source: "e2e-bench", type: type, time: Instant(secondsSinceEpoch: 1_796_000_000),
                                                   subject: nil, data: .object(JSONObject(data))))
    }

    /// Phase and publish time from a payment id `E2EP-<phase>-<sequence>-<nanoseconds>` in a body.
    static func stamp(in body: [UInt8]) -> (phase: Int, publishedAt: Int64)? {
        guard let start = end(of: Self.marker, in: body) else { return nil }
        var fields: [Int64] = []
        var value: Int64 = 0
        var digits = 0
        for byte in body[start...] {
            if byte >= 48 && byte <= 57 {
                value = value &* 10 &+ Int64(byte - 48)
                digits += 1
            } else if byte == UInt8(ascii: "-") && digits > 0 {
                fields.append(value); value = 0; digits = 0
            } else {
                break
            }
        }
        if digits > 0 { fields.append(value) }
        guard fields.count == 3 else { return nil }
        return (Int(fields[0]), fields[2])
    }

    /// The index just past the first occurrence of `marker` in `body`.
    static func end(of marker: [UInt8], in body: [UInt8]) -> Int? {
        guard body.count >= marker.count, let first = marker.first else { return nil }
        for index in 0...(body.count - marker.count) where body[index] == first {
            if body[index..<index + marker.count].elementsEqual(marker) { return index + marker.count }
        }
        return nil
    }
}

/// The load generator's connection: publisher confirms with a window, as a gateway would publish.
final class LoadPublisher {
    let connection: AMQPConnection
    let exchange: String
    let user: String
    private(set) var published = 0
    private var lastTag: UInt64 = 0
    private var unconfirmed = 0

    init(_ settings: AMQPConfiguration, exchange: String, user: String) throws {
        var settings = settings
        settings.connectionName = "receivablesd bench load generator"
        connection = try AMQPConnection(settings)
        try connection.enableConfirms()
        self.exchange = exchange
        self.user = user
    }

    func publish(_ message: BenchMessage) throws {
        lastTag = try connection.publish(exchange: exchange, routingKey: message.type, body: message.body,
                                         properties: AMQPProperties(contentType: "application/cloudevents+json", deliveryMode: 2, userID: user))
        published += 1
        unconfirmed += 1
        if unconfirmed >= 256 { try confirmAll() }
    }

    func publishAll(_ messages: [BenchMessage]) throws {
        for message in messages { try publish(message) }
        try confirmAll()
    }

    func confirmAll() throws {
        guard unconfirmed > 0 else { return }
        let outcomes = try connection.awaitConfirms(through: lastTag, timeoutMilliseconds: 60_000)
        if outcomes.values.contains(.nack) { throw BenchError("the broker refused (nack) a published message") }
        unconfirmed = 0
    }

    func close() { connection.close() }
}

/// The portal's side: consumes from a queue (bound to the events exchange for the daemon runs)
/// and records, per phase, how long each stamped payment took from publish to arrival.
final class ConfirmationObserver: Sendable {
    struct Statistics: Sendable {
        var count = 0
        var latencies: [Int64] = []
        /// When each of `latencies` was published (monotonic ns), in the same order.
        var publishedAt: [Int64] = []
        /// The split at the event's `time` (wall clock, microseconds; both ends on this machine).
        var untilApplied: [Int64] = []
        var afterApplied: [Int64] = []
        var lastArrival: Int64 = 0
    }

    private static let timeMarker = Array("\"time\":\"".utf8)

    /// The CloudEvents `time` of a payment.confirmed body, on the monotonic clock.
    /// `wallMinusMonotonic` is taken at arrival: the two clocks drift apart (here by 5 ms a
    /// second under the hypervisor), so an offset from the start would be off by seconds.
    private func appliedAt(_ body: [UInt8], wallMinusMonotonic: Int64) -> Int64? {
        guard let start = PaymentTraffic.end(of: Self.timeMarker, in: body),
              let end = body[start...].firstIndex(of: UInt8(ascii: "\"")),
              let instant = Instant(rfc3339: String(decoding: body[start..<end], as: UTF8.self)) else { return nil }
        return instant.microsecondsSinceEpoch * 1_000 - wallMinusMonotonic
    }

    // @unchecked: the connection is used only by the observer's thread after `init`.
    private final class Connection: @unchecked Sendable {
        let amqp: AMQPConnection
        init(_ amqp: AMQPConnection) { self.amqp = amqp }
    }

    private let connection: Connection
    private let state = Mutex<[Int: Statistics]>([:])
    private let stopping = Mutex(false)

    init(_ settings: AMQPConfiguration, exchange: String?, queue: String, routingKey: String?) throws {
        var settings = settings
        settings.connectionName = "receivablesd bench observer"
        let amqp = try AMQPConnection(settings)
        if let exchange, let routingKey {
            try amqp.declareExchange(exchange, type: "topic", durable: true)
            try amqp.declareQueue(queue, durable: false, exclusive: true, autoDelete: true)
            try amqp.bindQueue(queue, exchange: exchange, routingKey: routingKey)
        }
        try amqp.setPrefetch(2_000)
        _ = try amqp.consume(queue: queue)
        connection = Connection(amqp)
    }

    func confirmed(phase: Int) -> Int { state.withLock { $0[phase]?.count ?? 0 } }
    func statistics(phase: Int) -> Statistics { state.withLock { $0[phase] ?? Statistics() } }
    func stop() { stopping.withLock { $0 = true } }

    func run() {
        let amqp = connection.amqp
        defer { amqp.close() }
        var pending: [(phase: Int, latency: Int64, arrival: Int64, applied: Int64?, published: Int64)] = []
        while !stopping.withLock({ $0 }) {
            do {
                guard let first = try amqp.nextDelivery(timeoutMilliseconds: 100) else { continue }
                var last = first
                var batch = [first]
                while batch.count < 500, let next = try amqp.nextDelivery(timeoutMilliseconds: 0) { batch.append(next); last = next }
                let arrived = Monotonic.nanoseconds()
                let wallMinusMonotonic = WallClock.now().microsecondsSinceEpoch * 1_000 - Monotonic.nanoseconds()
                for delivery in batch {
                    if let stamp = PaymentTraffic.stamp(in: delivery.body) {
                        pending.append((stamp.phase, arrived - stamp.publishedAt, arrived, appliedAt(delivery.body, wallMinusMonotonic: wallMinusMonotonic), stamp.publishedAt))
                    }
                }
                try amqp.ack(last.deliveryTag, multiple: true)
                state.withLock { phases in
                    for item in pending {
                        phases[item.phase, default: Statistics()].count += 1
                        phases[item.phase, default: Statistics()].latencies.append(item.latency)
                        phases[item.phase, default: Statistics()].publishedAt.append(item.published)
                        if let applied = item.applied {
                            phases[item.phase, default: Statistics()].untilApplied.append(applied - item.published)
                            phases[item.phase, default: Statistics()].afterApplied.append(item.arrival - applied)
                        }
                        phases[item.phase, default: Statistics()].lastArrival = item.arrival
                    }
                }
                pending.removeAll(keepingCapacity: true)
            } catch {
                return  // the run sees the missing confirmations and reports them
            }
        }
    }
}
