import AMQPClient
import ARContract
import ARDomain
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How the portal reaches the broker: its own connection as the `portal` broker user.
struct PortalSettings: Sendable {
    var amqp: AMQPConfiguration
    var inboundExchange = "ar.inbound"
    /// Accept replies only from this CloudEvents source (the daemon's `event_source`); nil = any.
    var expectedSource: String?
    var host = "127.0.0.1"
    var port = 0
    var timeoutMilliseconds = 15_000
}

/// Why a request got no reply.
struct PortalError: Error, CustomStringConvertible {
    let description: String
}

/// The portal's side of SPEC section 2 request/reply, exactly as a real front end does it: a
/// request to `ar.inbound` with routing key = type, `reply_to` = a server-named exclusive queue,
/// a fresh correlation id, and the reply matched by that id (others are stale and dropped).
///
/// rabbitmq-c allows one thread at a time on a connection: every use is inside `lock`, so HTTP
/// requests (on a thread pool) take turns. A broken connection is dropped and reopened by the
/// next request.
final class PortalClient: Sendable {
    private let settings: PortalSettings
    private let lock = Mutex<Void>(())
    // The connection and its reply queue, touched only while holding `lock` (see above).
    private nonisolated(unsafe) var connection: (amqp: AMQPConnection, replyQueue: String)?
    private let counter = Atomic<Int>(0)

    init(settings: PortalSettings) { self.settings = settings }

    /// Sends one request and waits for its reply's JSON body.
    func request(_ type: String, _ data: [(String, JSONValue)], subject: String?) throws -> JSONValue {
        try lock.withLock { _ throws -> JSONValue in
            do {
                return try exchange(type, data, subject: subject)
            } catch let error as AMQPError {
                connection?.amqp.close()
                connection = nil
                throw PortalError(description: "broker: \(error)")
            }
        }
    }

    private func open() throws(AMQPError) -> (amqp: AMQPConnection, replyQueue: String) {
        if let connection { return connection }
        var configuration = settings.amqp
        configuration.connectionName = "receivablesd-portal"
        let amqp = try AMQPConnection(configuration)
        let queue = try amqp.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        _ = try amqp.consume(queue: queue)
        connection = (amqp, queue)
        return (amqp, queue)
    }

    private func exchange(_ type: String, _ data: [(String, JSONValue)], subject: String?) throws -> JSONValue {
        let (amqp, replyQueue) = try open()
        let sequence = counter.add(1, ordering: .relaxed).newValue
        let now = PortalClock.now()
        let correlation = "portal-\(getpid())-\(now.microsecondsSinceEpoch)-\(sequence)"
        let body = encodeEvent(id: correlation, source: "receivablesd-portal", type: type, time: now, subject: subject,
                               data: .object(JSONObject(data)))
        try amqp.publish(exchange: settings.inboundExchange, routingKey: type, body: body, properties: AMQPProperties(
            contentType: "application/cloudevents+json", deliveryMode: 2, correlationID: correlation, replyTo: replyQueue,
            userID: settings.amqp.user))
        let deadline = PortalClock.monotonicMilliseconds() + Int64(settings.timeoutMilliseconds)
        while true {
            let left = deadline - PortalClock.monotonicMilliseconds()
            guard left > 0 else { throw PortalError(description: "no reply to \(type) within \(settings.timeoutMilliseconds) ms") }
            guard let delivery = try amqp.nextDelivery(timeoutMilliseconds: Int(min(left, 1000))) else { continue }
            try amqp.ack(delivery.deliveryTag)
            guard delivery.properties.correlationID == correlation else { continue }  // a late reply to an earlier request
            guard let reply = try? JSONParser(maximumDepth: 64).parse(delivery.body) else {
                throw PortalError(description: "the reply to \(type) is not JSON")
            }
            if let expected = settings.expectedSource, reply["source"]?.stringValue != expected { continue }
            return reply
        }
    }
}

enum PortalClock {
    static func now() -> Instant {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Instant(microsecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }

    static func monotonicMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
