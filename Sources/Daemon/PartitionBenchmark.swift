import AMQPClient
import ARContract
import ARDomain
import Partitioning
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd bench partitions`: the same long book played at full speed into 1, 2, 3 …
/// instances of `receivablesd serve` (child processes of this binary), each run on a fresh
/// database and private broker objects. Reports messages/s per run and the ratio to one instance
/// (the baseline, measured in the same run), and whether every run's books equal one instance's,
/// customer by customer (invoice balances and statuses, credit, the applications in the order they
/// were made, every event's data in order, payment.confirmed included).
///
/// The clock runs from the first publish until every message of the book is in the inbox; the
/// instances are started and their partitions balanced before that.
public struct PartitionBenchmark {
    public struct Run: Sendable {
        public let instances: Int
        public let messages: Int
        public let seconds: Double
        public var perSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }
        /// Customers whose books differ from the first run's (0 for the first run).
        public let differingCustomers: [String]
    }

    let configuration: DaemonConfiguration
    let executable: String
    let customers: Int
    let seed: UInt64
    let consumersPerInstance: Int

    public init(configuration: DaemonConfiguration, executable: String, customers: Int, seed: UInt64, consumersPerInstance: Int) {
        self.configuration = configuration
        self.executable = executable
        self.customers = customers
        self.seed = seed
        self.consumersPerInstance = consumersPerInstance
    }

    public func run(instances: [Int], log: (String) -> Void) throws -> [Run] {
        let book = BenchBook(customers: customers, seed: seed).messages()
        log("book: \(book.count) messages of \(customers) customers (seed \(seed)), customers interleaved, each in its order")
        var runs: [Run] = []
        var reference: [String: String]?
        for count in instances {
            let tag = "bench\(Monotonic.milliseconds() % 1_000_000_000)i\(count)"
            log("\(count) instance(s): starting them on database receivablesd_\(tag)")
            let (seconds, books) = try play(book, instances: count, tag: tag, log: log)
            let differing = reference.map { expected in expected.keys.sorted().filter { books[$0] != expected[$0] } } ?? []
            if reference == nil { reference = books }
            runs.append(Run(instances: count, messages: book.count, seconds: seconds, differingCustomers: differing))
            log("\(count) instance(s): \(book.count) messages in \(Int(seconds * 1000)) ms; books \(differing.isEmpty ? "equal" : "DIFFER for \(differing.count) customers")")
        }
        return runs
    }

    /// One run: database, topology names, instances, book, timing, books; everything removed after.
    func play(_ book: [(type: String, body: [UInt8])], instances: Int, tag: String, log: (String) -> Void) throws -> (Double, [String: String]) {
        let cluster = BenchCluster(configuration: configuration, executable: executable, consumersPerInstance: consumersPerInstance, tag: tag)
        let names = cluster.names
        try cluster.createDatabase()
        defer { cluster.dropDatabase() }
        let children = try cluster.start(instances: instances)
        defer {
            cluster.stop(children)
            cluster.removeTopology(log: log)
        }
        let db = try PostgresConnection(cluster.database)

        let broker = try AMQPConnection(configuration.broker)
        defer { broker.close() }
        try broker.enableConfirms()
        let started = Monotonic.nanoseconds()
        var last: UInt64 = 0
        for (index, message) in book.enumerated() {
            last = try broker.publish(exchange: names.inboundExchange, routingKey: message.type, body: message.body,
                                      properties: AMQPProperties(contentType: "application/cloudevents+json", deliveryMode: 2, userID: configuration.broker.user))
            if index % 256 == 255 { _ = try broker.awaitConfirms(through: last, timeoutMilliseconds: 60_000) }
        }
        _ = try broker.awaitConfirms(through: last, timeoutMilliseconds: 60_000)
        var settled: Int64 = 0
        while settled < Int64(book.count) {
            try cluster.checkAlive(children)
            guard Monotonic.nanoseconds() - started < 600_000_000_000 else { throw BenchError("the book was not applied within 10 minutes") }
            usleep(20_000)
            settled = try db.query("""
                SELECT count(*) AS n FROM (SELECT source, event_id FROM inbox UNION SELECT source, event_id FROM dead_letters) AS settled
                """).first?.int64("n") ?? 0
        }
        let seconds = Double(Monotonic.nanoseconds() - started) / 1e9  // a figure for humans, not money
        let result = (seconds, try books(db))
        // The instances' logs are kept only when a run failed (the throws above).
        cluster.removeLogs(instances: instances)
        return result
    }

    /// Every customer's books as text (ids are the same in every run: fresh databases).
    func books(_ db: PostgresConnection) throws -> [String: String] {
        var books: [String: [String]] = [:]
        func rows(_ sql: String) throws -> [[String]] { try db.query(sql).rows.map { $0.map { $0 ?? "-" } } }
        for row in try rows("SELECT customer_id, invoice_id, amount_minor, balance_minor, status FROM invoices ORDER BY invoice_id") {
            books[row[0], default: []].append("invoice " + row.dropFirst().joined(separator: " "))
        }
        for row in try rows("SELECT customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice FROM credit_lots ORDER BY lot_id") {
            books[row[0], default: []].append("credit " + row.dropFirst().joined(separator: " "))
        }
        for row in try rows("SELECT customer_id, invoice_id, origin_kind, origin_id, amount_minor, unwound_minor FROM applications ORDER BY application_id") {
            books[row[0], default: []].append("applied " + row.dropFirst().joined(separator: " "))
        }
        for row in try db.query("SELECT type, body FROM outbox WHERE type <> 'ledger.entry_posted' ORDER BY seq").all {
            guard let body = row.bytes("body"), let event = try? JSONParser(maximumDepth: 64).parse(body),
                  let data = event["data"], let customer = event["subject"]?.stringValue ?? data["customer_id"]?.stringValue else { continue }
            books[customer, default: []].append("event \(row.requiredString("type")) " + JSONSerializer.serializeToString(data))
        }
        // A dead letter belongs to its customer when the body names it; the others (refunds of a
        // rejected payment name only the payment) are compared as a set: across customers the
        // order of rejections depends on which partition got there first.
        var unattributed: [String] = []
        for row in try db.query("SELECT reason, type, event_id, body FROM dead_letters ORDER BY dead_letter_id").all {
            let line = "dead-letter \(row.string("reason") ?? "-") \(row.string("type") ?? "-") \(row.string("event_id") ?? "-")"
            let event = row.bytes("body").flatMap { try? JSONParser(maximumDepth: 64).parse($0) }
            if let customer = event?["subject"]?.stringValue ?? event?["data"]?["customer_id"]?.stringValue {
                books[customer, default: []].append(line)
            } else {
                unattributed.append(line)
            }
        }
        if !unattributed.isEmpty { books["(dead letters naming no customer)"] = unattributed.sorted() }
        return books.mapValues { $0.joined(separator: "\n") }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// NUL-terminated C strings for argv/envp, alive for the duration of `body`.
func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}

/// A realistic book whose outcome depends on each customer's order: invoices, payments without
/// allocations (oldest due first), allocated payments, over-payments whose credit the next
/// invoice takes, refunds, credit notes. Customers interleaved at random, each in its order.
struct BenchBook {
    let customers: Int
    let seed: UInt64

    func messages() -> [(type: String, body: [UInt8])] {
        var rng = BenchRandom(seed: seed)
        var stories: [[(type: String, body: [UInt8])]] = []
        let currencies = ["USD", "EUR", "JPY", "KWD"]
        for c in 0..<customers {
            var story: [(type: String, body: [UInt8])] = []
            let customer = "B-C\(c)"
            let currency = currencies[Int(rng.next() % 4)]
            let unit: UInt64 = currency == "JPY" ? 1 : currency == "KWD" ? 1000 : 100
            func amount(_ low: UInt64, _ high: UInt64) -> String {
                let minor = (low + rng.next() % (high - low + 1)) * unit + rng.next() % unit
                return unit == 1 ? String(minor) : "\(minor / unit)." + String(String(minor % unit + unit).dropFirst())
            }
            func add(_ type: String, _ data: [(String, JSONValue)]) {
                let id = "B-e\(c)-\(story.count)"
                story.append((type, encodeEvent(id: id, source: "bench", type: type, time: Instant(secondsSinceEpoch: 1_795_000_000),
                                                subject: type.hasPrefix("payment.refunded") ? nil : customer, data: .object(JSONObject(data)))))
            }
            add("customer.upserted", [("customer_id", .string(customer)), ("name", .string("Customer \(c)"))])
            var invoices: [String] = []
            var payments: [String] = []
            for step in 0..<(8 + Int(rng.next() % 8)) {
                switch rng.next() % 10 {
                case 0, 1, 2, 3:
                    let invoice = "B-I\(c)-\(step)"
                    let month = 1 + rng.next() % 9
                    add("invoice.issued", [("invoice_id", .string(invoice)), ("customer_id", .string(customer)), ("number", .string(invoice)),
                                           ("currency", .string(currency)), ("amount", .string(amount(20, 900))),
                                           ("issue_date", .string("2026-0\(month)-01")), ("due_date", .string("2026-\(month + 1 < 10 ? "0" : "")\(month + 1)-15"))])
                    invoices.append(invoice)
                case 4, 5, 6:
                    let payment = "B-P\(c)-\(step)"
                    var data: [(String, JSONValue)] = [("payment_id", .string(payment)), ("customer_id", .string(customer)), ("currency", .string(currency)),
                                                       ("amount", .string(amount(10, 1500))), ("method", .string("card")),
                                                       ("received_at", .string("2026-05-01T10:00:00Z"))]
                    if let target = invoices.last, rng.next() % 3 == 0 {
                        data[3] = ("amount", .string(amount(300, 600)))
                        data.append(("allocations", .array([.object(JSONObject([("invoice_id", .string(target)), ("amount", .string(amount(1, 9)))]))])))
                    }
                    add("payment.succeeded", data)
                    payments.append(payment)
                case 7:
                    if let payment = payments.last {
                        add("payment.refunded", [("payment_id", .string(payment)), ("refund_id", .string("B-R\(c)-\(step)")), ("amount", .string(amount(1, 9)))])
                    }
                default:
                    add("credit_note.issued", [("credit_note_id", .string("B-N\(c)-\(step)")), ("customer_id", .string(customer)),
                                               ("currency", .string(currency)), ("amount", .string(amount(1, 50)))])
                }
            }
            stories.append(story)
        }
        var order = stories.enumerated().flatMap { index, story in Array(repeating: index, count: story.count) }
        for index in order.indices.reversed() where index > 0 {
            order.swapAt(index, Int(rng.next() % UInt64(index + 1)))
        }
        var positions = [Int](repeating: 0, count: stories.count)
        return order.map { index in
            defer { positions[index] += 1 }
            return stories[index][positions[index]]
        }
    }
}

/// The same seed gives the same book: the partition hash of (seed, counter).
struct BenchRandom {
    let seed: UInt64
    var counter: UInt64 = 0
    mutating func next() -> UInt64 {
        counter += 1
        return PartitionLayout.hash("\(seed)/\(counter)")
    }
}
