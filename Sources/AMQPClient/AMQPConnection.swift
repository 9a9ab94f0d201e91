import CAmqpShim
import CRabbitMQ
#if canImport(Glibc)
import Glibc
#endif

/// Why an AMQP call failed. Every error closes the connection: the owner reconnects.
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The broker closed the channel or connection with this reply code (e.g. 403, 404, 406).
    public let replyCode: UInt16?

    public init(_ message: String, replyCode: UInt16? = nil) {
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String { "AMQP error: \(message)" + (replyCode.map { " (\($0))" } ?? "") }
}

/// TLS settings: amqps with peer verification; client certificate optional.
public struct AMQPTLSConfiguration: Sendable {
    public var caCertificatePath: String?
    public var clientCertificatePath: String?
    public var clientKeyPath: String?
    public var verifyPeer: Bool
    public var verifyHostname: Bool

    public init(caCertificatePath: String?, clientCertificatePath: String? = nil, clientKeyPath: String? = nil,
                verifyPeer: Bool = true, verifyHostname: Bool = true) {
        self.caCertificatePath = caCertificatePath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }
}

public struct AMQPConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var virtualHost: String
    public var user: String
    public var password: String
    public var heartbeatSeconds: Int
    public var connectTimeoutSeconds: Int
    public var tls: AMQPTLSConfiguration?
    public var connectionName: String

    public init(host: String, port: Int, virtualHost: String = "/", user: String, password: String,
                heartbeatSeconds: Int = 30, connectTimeoutSeconds: Int = 5, tls: AMQPTLSConfiguration? = nil,
                connectionName: String = "receivablesd") {
        self.host = host
        self.port = port
        self.virtualHost = virtualHost
        self.user = user
        self.password = password
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.tls = tls
        self.connectionName = connectionName
    }
}

/// A value in an AMQP field table (queue arguments, message headers).
public enum AMQPFieldValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)

    public var stringValue: String? {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .bool(let value): return String(value)
        }
    }
}

/// The properties of a message we read and write.
public struct AMQPProperties: Sendable, Hashable {
    public var contentType: String?
    public var deliveryMode: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    public var messageID: String?
    public var userID: String?
    public var type: String?
    public var appID: String?
    public var timestamp: UInt64?
    public var headers: [String: AMQPFieldValue]

    public init(contentType: String? = nil, deliveryMode: UInt8? = nil, correlationID: String? = nil, replyTo: String? = nil,
                messageID: String? = nil, userID: String? = nil, type: String? = nil, appID: String? = nil,
                timestamp: UInt64? = nil, headers: [String: AMQPFieldValue] = [:]) {
        self.contentType = contentType
        self.deliveryMode = deliveryMode
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.messageID = messageID
        self.userID = userID
        self.type = type
        self.appID = appID
        self.timestamp = timestamp
        self.headers = headers
    }
}

/// A message delivered to our consumer, copied out of rabbitmq-c's buffers.
public struct AMQPDelivery: Sendable {
    public let deliveryTag: UInt64
    public let redelivered: Bool
    public let exchange: String
    public let routingKey: String
    public let properties: AMQPProperties
    public let body: [UInt8]
    /// The channel it arrived on: delivery tags, acks and rejects are per channel.
    public let channel: UInt16

    public init(deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String, properties: AMQPProperties,
                body: [UInt8], channel: UInt16 = 1) {
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
        self.channel = channel
    }
}

/// What a passive queue.declare reports: ready messages (not those delivered and unacked) and
/// consumers (on a single-active-consumer queue RabbitMQ counts only the active one).
public struct AMQPQueueStatus: Sendable, Equatable {
    public let messageCount: UInt32
    public let consumerCount: UInt32
}

/// Outcome of a publish awaited with publisher confirms.
public enum AMQPConfirm: Sendable, Equatable {
    case ack
    case nack
    /// mandatory publish with no queue bound (basic.return before the ack)
    case returned
}

/// One rabbitmq-c connection; channel 1 is opened with it, more with `openChannel`.
///
/// rabbitmq-c connections are not thread-safe: one thread owns a connection for its whole life
/// (the library's README, "Threading"). Consumers and confirm-mode publishers use separate
/// connections, because a consuming wait would otherwise swallow publisher acks. A consumer may
/// consume several queues on one connection, one channel each (acks, prefetch and closing are per
/// channel; frames of other channels that arrive during a call are queued by rabbitmq-c).
/// Every method takes the channel it acts on, default 1.
public final class AMQPConnection {
    private let state: amqp_connection_state_t
    private let channel: amqp_channel_t = 1
    /// Channels opened with `openChannel` and not closed since (closed on deinit/close).
    private var extraChannels: Set<amqp_channel_t> = []
    private var isOpen = false
    private var confirmMode = false
    private var nextPublishTag: UInt64 = 1
    private var returnedTags: Set<UInt64> = []
    /// Every publish tag up to this one has an outcome (acks may be `multiple`).
    private var settledThrough: UInt64 = 0
    /// Outcomes of tags above `settledThrough` that arrived out of order.
    private var earlyOutcomes: [UInt64: AMQPConfirm] = [:]

    public init(_ configuration: AMQPConfiguration) throws(AMQPError) {
        guard let state = amqp_new_connection() else { throw AMQPError("cannot allocate connection") }
        self.state = state
        // If `open` throws, every stored property is set, so `deinit` runs and destroys
        // `state` exactly once (destroying it here too was a double free).
        try open(configuration)
        isOpen = true
    }

    deinit {
        if isOpen {
            // Best effort: the peer may be gone already.
            for extra in extraChannels { _ = amqp_channel_close(state, extra, Int32(AMQP_REPLY_SUCCESS)) }
            _ = amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
            _ = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(state)
    }

    private func open(_ configuration: AMQPConfiguration) throws(AMQPError) {
        let socket: OpaquePointer?
        if let tls = configuration.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError("cannot create TLS socket") }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            if let ca = tls.caCertificatePath {
                let status = amqp_ssl_socket_set_cacert(socket, ca)
                guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("cannot load CA certificate \(ca): \(AMQPConnection.statusText(status))") }
            }
            if let certificate = tls.clientCertificatePath, let key = tls.clientKeyPath {
                let status = amqp_ssl_socket_set_key(socket, certificate, key)
                guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("cannot load client certificate/key: \(AMQPConnection.statusText(status))") }
            }
        } else {
            socket = amqp_tcp_socket_new(state)
            guard socket != nil else { throw AMQPError("cannot create TCP socket") }
        }
        var timeout = timeval(tv_sec: configuration.connectTimeoutSeconds, tv_usec: 0)
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            let scheme = configuration.tls == nil ? "amqp" : "amqps"
            // rabbitmq-c only says "SSL connection failed"; OpenSSL knows why (an unknown CA, a
            // host name not in the certificate, ...), and an operator needs that sentence.
            var tlsDetail = ""
            if status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue {
                tlsDetail = " (the broker's certificate is not signed by the CA in amqp.cacert \(configuration.tls?.caCertificatePath ?? "-"))"
            } else if status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue {
                tlsDetail = " (the broker's certificate does not name host '\(configuration.host)'; rabbitmq-c matches DNS names only)"
            } else if configuration.tls != nil {
                var reason = [UInt8](repeating: 0, count: 256)
                let found = reason.withUnsafeMutableBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { amqp_shim_take_ssl_error($0, buffer.count) }
                }
                if found == 1 { tlsDetail = " (TLS: \(String(decoding: reason.prefix { $0 != 0 }, as: UTF8.self)))" }
            }
            throw AMQPError("cannot connect to \(scheme)://\(configuration.host):\(configuration.port): \(AMQPConnection.statusText(status))\(tlsDetail)")
        }
        let login = amqp_shim_login_plain(state, configuration.virtualHost, 0, 131_072, Int32(configuration.heartbeatSeconds),
                                          configuration.user, configuration.password)
        try check(login, "login as \(configuration.user)")
        _ = amqp_channel_open(state, channel)
        try check(amqp_get_rpc_reply(state), "channel open")
    }

    /// Closes gracefully; errors are ignored because the connection is being discarded anyway.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        for extra in extraChannels { _ = amqp_channel_close(state, extra, Int32(AMQP_REPLY_SUCCESS)) }
        extraChannels = []
        _ = amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
        _ = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
    }

    // MARK: channels

    /// Opens channel `number` (2...channel_max). Reopening channel 1 after the broker closed it
    /// (a failed passive declare) is allowed too.
    public func openChannel(_ number: UInt16) throws(AMQPError) {
        _ = amqp_channel_open(state, number)
        try check(amqp_get_rpc_reply(state), "channel \(number) open", channel: number)
        if number != channel { extraChannels.insert(number) }
    }

    /// Closes channel `number`: the broker requeues what was delivered on it and not acked.
    /// Waits for close-ok; deliveries of other channels that arrive meanwhile stay queued.
    public func closeChannel(_ number: UInt16) throws(AMQPError) {
        extraChannels.remove(number)
        let reply = amqp_channel_close(state, number, Int32(AMQP_REPLY_SUCCESS))
        try check(reply, "channel \(number) close", channel: number)
    }

    // MARK: topology

    public func declareExchange(_ name: String, type: String = "topic", durable: Bool = true) throws(AMQPError) {
        let arena = AMQPArena()
        _ = amqp_exchange_declare(state, channel, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(state), "declare exchange \(name)")
    }

    /// Passive declare: the queue's ready messages and consumers, or nil when it does not exist.
    /// (The broker closes the channel for a missing queue; it is reopened here.)
    public func queueStatus(_ name: String, channel number: UInt16 = 1) throws(AMQPError) -> AMQPQueueStatus? {
        let arena = AMQPArena()
        let ok = amqp_queue_declare(state, number, arena.bytes(name), 1, 0, 0, 0, amqp_empty_table)
        do {
            try check(amqp_get_rpc_reply(state), "passive declare \(name)", channel: number)
        } catch where error.replyCode == 404 {
            try openChannel(number)
            return nil
        }
        guard let ok else { throw AMQPError("passive declare \(name): no reply") }
        return AMQPQueueStatus(messageCount: ok.pointee.message_count, consumerCount: ok.pointee.consumer_count)
    }

    /// Declares a queue; returns its name (the broker's for an empty name) and message count.
    @discardableResult
    public func declareQueue(_ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                             arguments: [String: AMQPFieldValue] = [:], passive: Bool = false) throws(AMQPError) -> (name: String, messageCount: UInt32) {
        let arena = AMQPArena()
        let table = arena.table(arguments)
        let ok = amqp_queue_declare(state, channel, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0, table)
        try check(amqp_get_rpc_reply(state), "declare queue \(name)")
        guard let ok else { throw AMQPError("declare queue \(name): no reply") }
        return (AMQPConnection.string(ok.pointee.queue), ok.pointee.message_count)
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String) throws(AMQPError) {
        let arena = AMQPArena()
        _ = amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_empty_table)
        try check(amqp_get_rpc_reply(state), "bind \(queue) to \(exchange) with \(routingKey)")
    }

    /// Removes a binding (removing one that does not exist is not an error in RabbitMQ).
    public func unbindQueue(_ queue: String, exchange: String, routingKey: String) throws(AMQPError) {
        let arena = AMQPArena()
        _ = amqp_queue_unbind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), amqp_empty_table)
        try check(amqp_get_rpc_reply(state), "unbind \(queue) from \(exchange) with \(routingKey)")
    }

    /// Deletes a queue; returns how many messages it still held (they are gone).
    @discardableResult
    public func deleteQueue(_ queue: String) throws(AMQPError) -> UInt32 {
        let arena = AMQPArena()
        let ok = amqp_queue_delete(state, channel, arena.bytes(queue), 0, 0)
        try check(amqp_get_rpc_reply(state), "delete queue \(queue)")
        return ok?.pointee.message_count ?? 0
    }

    public func deleteExchange(_ exchange: String) throws(AMQPError) {
        let arena = AMQPArena()
        _ = amqp_exchange_delete(state, channel, arena.bytes(exchange), 0)
        try check(amqp_get_rpc_reply(state), "delete exchange \(exchange)")
    }

    public func purgeQueue(_ queue: String) throws(AMQPError) {
        let arena = AMQPArena()
        _ = amqp_queue_purge(state, channel, arena.bytes(queue))
        try check(amqp_get_rpc_reply(state), "purge \(queue)")
    }

    // MARK: consuming

    public func setPrefetch(_ count: UInt16, channel number: UInt16 = 1) throws(AMQPError) {
        _ = amqp_basic_qos(state, number, 0, count, 0)
        try check(amqp_get_rpc_reply(state), "basic.qos", channel: number)
    }

    @discardableResult
    public func consume(queue: String, consumerTag: String = "", channel number: UInt16 = 1) throws(AMQPError) -> String {
        let arena = AMQPArena()
        let ok = amqp_basic_consume(state, number, arena.bytes(queue), arena.bytes(consumerTag), 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(state), "consume \(queue)", channel: number)
        guard let ok else { throw AMQPError("consume \(queue): no reply") }
        return AMQPConnection.string(ok.pointee.consumer_tag)
    }

    /// Waits up to `timeoutMilliseconds` for the next delivery; nil on timeout. Heartbeats are
    /// serviced inside this call, so a consumer must call it at least every heartbeat interval.
    public func nextDelivery(timeoutMilliseconds: Int) throws(AMQPError) -> AMQPDelivery? {
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: Int((timeoutMilliseconds % 1000) * 1000))
        let reply = amqp_consume_message(state, &envelope, &timeout, 0)
        if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT.rawValue {
            return nil
        }
        if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue {
            // A non-delivery frame arrived (e.g. channel.close, basic.cancel): read and report it.
            try handleUnexpectedFrame()
            return nil
        }
        try check(reply, "consume")
        defer { amqp_destroy_envelope(&envelope) }
        let body = AMQPConnection.array(envelope.message.body)
        return AMQPDelivery(
            deliveryTag: envelope.delivery_tag,
            redelivered: envelope.redelivered != 0,
            exchange: AMQPConnection.string(envelope.exchange),
            routingKey: AMQPConnection.string(envelope.routing_key),
            properties: AMQPConnection.properties(envelope.message.properties),
            body: body,
            channel: envelope.channel
        )
    }

    private func handleUnexpectedFrame() throws(AMQPError) {
        var frame = amqp_frame_t()
        let status = amqp_simple_wait_frame(state, &frame)
        guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("reading frame: \(AMQPConnection.statusText(status))") }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        switch frame.payload.method.id {
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = frame.payload.method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            throw AMQPError("channel \(frame.channel) closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = frame.payload.method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            throw AMQPError("connection closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
        case AMQP_BASIC_CANCEL_METHOD:
            throw AMQPError("consumer cancelled by broker (queue deleted?)")
        default:
            return
        }
    }

    public func ack(_ deliveryTag: UInt64, multiple: Bool = false, channel number: UInt16 = 1) throws(AMQPError) {
        let status = amqp_basic_ack(state, number, deliveryTag, multiple ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("ack: \(AMQPConnection.statusText(status))") }
    }

    public func reject(_ deliveryTag: UInt64, requeue: Bool, channel number: UInt16 = 1) throws(AMQPError) {
        let status = amqp_basic_reject(state, number, deliveryTag, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("reject: \(AMQPConnection.statusText(status))") }
    }

    /// basic.get: one message or nil when the queue is empty (used by CLI tools and tests).
    public func get(queue: String, autoAck: Bool) throws(AMQPError) -> AMQPDelivery? {
        let arena = AMQPArena()
        amqp_maybe_release_buffers(state)
        let reply = amqp_basic_get(state, channel, arena.bytes(queue), autoAck ? 1 : 0)
        try check(reply, "basic.get \(queue)")
        guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD else { return nil }
        let getOK = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        var message = amqp_message_t()
        let read = amqp_read_message(state, channel, &message, 0)
        try check(read, "read message")
        defer { amqp_destroy_message(&message) }
        return AMQPDelivery(
            deliveryTag: getOK.delivery_tag, redelivered: getOK.redelivered != 0,
            exchange: AMQPConnection.string(getOK.exchange), routingKey: AMQPConnection.string(getOK.routing_key),
            properties: AMQPConnection.properties(message.properties), body: AMQPConnection.array(message.body))
    }

    // MARK: publishing

    public func enableConfirms() throws(AMQPError) {
        _ = amqp_confirm_select(state, channel)
        try check(amqp_get_rpc_reply(state), "confirm.select")
        confirmMode = true
        nextPublishTag = 1
        settledThrough = 0
    }

    /// Publishes one message; returns its confirm sequence number when confirms are on.
    @discardableResult
    public func publish(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties, mandatory: Bool = false) throws(AMQPError) -> UInt64 {
        let arena = AMQPArena()
        var props = arena.properties(properties)
        let status = body.withUnsafeBytes { raw in
            amqp_basic_publish(state, channel, arena.bytes(exchange), arena.bytes(routingKey), mandatory ? 1 : 0, 0, &props,
                               amqp_bytes_t(len: raw.count, bytes: UnsafeMutableRawPointer(mutating: raw.baseAddress)))
        }
        guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("publish to \(exchange)/\(routingKey): \(AMQPConnection.statusText(status))") }
        let tag = nextPublishTag
        if confirmMode { nextPublishTag += 1 }
        return tag
    }

    /// Waits until every publish up to `lastTag` is confirmed or `timeoutMilliseconds` pass.
    /// Returns the outcome per tag; a tag missing from the result was not confirmed in time.
    public func awaitConfirms(through lastTag: UInt64, timeoutMilliseconds: Int) throws(AMQPError) -> [UInt64: AMQPConfirm] {
        precondition(confirmMode, "confirms not enabled")
        var outcomes: [UInt64: AMQPConfirm] = [:]
        let deadline = AMQPConnection.monotonicMilliseconds() + Int64(timeoutMilliseconds)
        func settle(_ tag: UInt64, multiple: Bool, as outcome: AMQPConfirm) {
            let first = multiple ? settledThrough + 1 : tag
            if first <= tag {
                for t in first...tag where earlyOutcomes[t] == nil {
                    earlyOutcomes[t] = returnedTags.remove(t) != nil ? .returned : outcome
                }
            }
            while let next = earlyOutcomes.removeValue(forKey: settledThrough + 1) {
                settledThrough += 1
                outcomes[settledThrough] = next
            }
        }
        while settledThrough < lastTag {
            let remaining = deadline - AMQPConnection.monotonicMilliseconds()
            if remaining <= 0 { break }
            var frame = amqp_frame_t()
            var timeout = timeval(tv_sec: Int(remaining / 1000), tv_usec: Int(remaining % 1000) * 1000)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError("waiting for confirms: \(AMQPConnection.statusText(status))") }
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            switch frame.payload.method.id {
            case AMQP_BASIC_ACK_METHOD:
                let ack = frame.payload.method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                settle(ack.delivery_tag, multiple: ack.multiple != 0, as: .ack)
            case AMQP_BASIC_NACK_METHOD:
                let nack = frame.payload.method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                settle(nack.delivery_tag, multiple: nack.multiple != 0, as: .nack)
            case AMQP_BASIC_RETURN_METHOD:
                // A returned message is followed by its ack; remember it belongs to the next
                // unconfirmed tag (returns precede the ack of the same message).
                var message = amqp_message_t()
                let read = amqp_read_message(state, channel, &message, 0)
                if read.reply_type == AMQP_RESPONSE_NORMAL { amqp_destroy_message(&message) }
                returnedTags.insert(settledThrough + 1)
            case AMQP_CHANNEL_CLOSE_METHOD:
                let close = frame.payload.method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw AMQPError("channel closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
            case AMQP_CONNECTION_CLOSE_METHOD:
                let close = frame.payload.method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw AMQPError("connection closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
            default:
                continue
            }
        }
        // The frames read here come from the connection's decoding pool, which rabbitmq-c frees
        // only when asked; a connection that only publishes never reads deliveries (which ask),
        // so without this its memory grew with every confirm (about 85 bytes per message).
        amqp_maybe_release_buffers(state)
        return outcomes
    }

    /// Services heartbeats and notices a dead connection while the owner has nothing to do.
    public func idle(timeoutMilliseconds: Int) throws(AMQPError) {
        var frame = amqp_frame_t()
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
        if status == AMQP_STATUS_TIMEOUT.rawValue || status == AMQP_STATUS_OK.rawValue {
            if status == AMQP_STATUS_OK.rawValue, frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
                if frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD || frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD {
                    throw AMQPError("closed by broker while idle")
                }
            }
            return
        }
        throw AMQPError("connection lost while idle: \(AMQPConnection.statusText(status))")
    }

    // MARK: helpers

    private func check(_ reply: amqp_rpc_reply_t, _ what: String, channel number: UInt16 = 1) throws(AMQPError) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_NONE:
            throw AMQPError("\(what): missing RPC reply")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw AMQPError("\(what): \(AMQPConnection.statusText(reply.library_error))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case AMQP_CONNECTION_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, nil)
                throw AMQPError("\(what): connection closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
            case AMQP_CHANNEL_CLOSE_METHOD:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                var closeOK = amqp_channel_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, number, AMQP_CHANNEL_CLOSE_OK_METHOD, &closeOK)
                if number != channel { extraChannels.remove(number) }
                throw AMQPError("\(what): channel closed by broker: \(AMQPConnection.string(close.reply_text))", replyCode: close.reply_code)
            default:
                throw AMQPError("\(what): server exception method \(reply.reply.id)")
            }
        default:
            throw AMQPError("\(what): unknown reply type")
        }
    }

    static func statusText(_ status: Int32) -> String { String(cString: amqp_error_string2(status)) }

    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let base = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }

    static func array(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let base = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }

    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    static func properties(_ p: amqp_basic_properties_t) -> AMQPProperties {
        let flags = p._flags
        func has(_ flag: Int32) -> Bool { flags & amqp_flags_t(flag) != 0 }
        var result = AMQPProperties()
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { result.contentType = string(p.content_type) }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { result.deliveryMode = p.delivery_mode }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { result.correlationID = string(p.correlation_id) }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { result.replyTo = string(p.reply_to) }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { result.messageID = string(p.message_id) }
        if has(AMQP_BASIC_USER_ID_FLAG) { result.userID = string(p.user_id) }
        if has(AMQP_BASIC_TYPE_FLAG) { result.type = string(p.type) }
        if has(AMQP_BASIC_APP_ID_FLAG) { result.appID = string(p.app_id) }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { result.timestamp = p.timestamp }
        if has(AMQP_BASIC_HEADERS_FLAG) {
            for index in 0..<Int(p.headers.num_entries) {
                let entry = p.headers.entries[index]
                let key = string(entry.key)
                switch Int32(entry.value.kind) {
                case Int32(AMQP_FIELD_KIND_UTF8.rawValue), Int32(AMQP_FIELD_KIND_BYTES.rawValue):
                    result.headers[key] = .string(string(entry.value.value.bytes))
                case Int32(AMQP_FIELD_KIND_BOOLEAN.rawValue):
                    result.headers[key] = .bool(entry.value.value.boolean != 0)
                case Int32(AMQP_FIELD_KIND_I8.rawValue): result.headers[key] = .int(Int64(entry.value.value.i8))
                case Int32(AMQP_FIELD_KIND_U8.rawValue): result.headers[key] = .int(Int64(entry.value.value.u8))
                case Int32(AMQP_FIELD_KIND_I16.rawValue): result.headers[key] = .int(Int64(entry.value.value.i16))
                case Int32(AMQP_FIELD_KIND_U16.rawValue): result.headers[key] = .int(Int64(entry.value.value.u16))
                case Int32(AMQP_FIELD_KIND_I32.rawValue): result.headers[key] = .int(Int64(entry.value.value.i32))
                case Int32(AMQP_FIELD_KIND_U32.rawValue): result.headers[key] = .int(Int64(entry.value.value.u32))
                case Int32(AMQP_FIELD_KIND_I64.rawValue): result.headers[key] = .int(entry.value.value.i64)
                case Int32(AMQP_FIELD_KIND_U64.rawValue): result.headers[key] = .int(Int64(truncatingIfNeeded: entry.value.value.u64))
                case Int32(AMQP_FIELD_KIND_TIMESTAMP.rawValue): result.headers[key] = .int(Int64(truncatingIfNeeded: entry.value.value.u64))
                default:
                    continue  // arrays, tables, decimals: not used in our headers
                }
            }
        }
        return result
    }
}

/// Keeps C copies of Swift strings and tables alive for the duration of one library call.
/// (`amqp_cstring_bytes(swiftString)` would point at a temporary that dies at once.)
final class AMQPArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit { for pointer in allocations { free(pointer) } }

    func bytes(_ text: String) -> amqp_bytes_t {
        let utf8 = Array(text.utf8)
        guard let pointer = malloc(max(utf8.count, 1)) else { preconditionFailure("out of memory") }
        utf8.withUnsafeBytes { source in
            if let base = source.baseAddress { pointer.copyMemory(from: base, byteCount: utf8.count) }
        }
        allocations.append(pointer)
        return amqp_bytes_t(len: utf8.count, bytes: pointer)
    }

    func table(_ values: [String: AMQPFieldValue]) -> amqp_table_t {
        guard !values.isEmpty else { return amqp_empty_table }
        let count = values.count
        guard let raw = malloc(MemoryLayout<amqp_table_entry_t>.stride * count) else { preconditionFailure("out of memory") }
        allocations.append(raw)
        let entries = raw.bindMemory(to: amqp_table_entry_t.self, capacity: count)
        entries.initialize(repeating: amqp_table_entry_t(), count: count)
        for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            entries[index].key = bytes(key)
            switch value {
            case .string(let text):
                entries[index].value.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
                entries[index].value.value.bytes = bytes(text)
            case .int(let number):
                entries[index].value.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
                entries[index].value.value.i64 = number
            case .bool(let flag):
                entries[index].value.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
                entries[index].value.value.boolean = flag ? 1 : 0
            }
        }
        return amqp_table_t(num_entries: Int32(count), entries: entries)
    }

    func properties(_ p: AMQPProperties) -> amqp_basic_properties_t {
        var props = amqp_basic_properties_t()
        var flags: Int32 = 0
        if let v = p.contentType { props.content_type = bytes(v); flags |= AMQP_BASIC_CONTENT_TYPE_FLAG }
        if let v = p.deliveryMode { props.delivery_mode = v; flags |= AMQP_BASIC_DELIVERY_MODE_FLAG }
        if let v = p.correlationID { props.correlation_id = bytes(v); flags |= AMQP_BASIC_CORRELATION_ID_FLAG }
        if let v = p.replyTo { props.reply_to = bytes(v); flags |= AMQP_BASIC_REPLY_TO_FLAG }
        if let v = p.messageID { props.message_id = bytes(v); flags |= AMQP_BASIC_MESSAGE_ID_FLAG }
        if let v = p.userID { props.user_id = bytes(v); flags |= AMQP_BASIC_USER_ID_FLAG }
        if let v = p.type { props.type = bytes(v); flags |= AMQP_BASIC_TYPE_FLAG }
        if let v = p.appID { props.app_id = bytes(v); flags |= AMQP_BASIC_APP_ID_FLAG }
        if let v = p.timestamp { props.timestamp = v; flags |= AMQP_BASIC_TIMESTAMP_FLAG }
        if !p.headers.isEmpty { props.headers = table(p.headers); flags |= AMQP_BASIC_HEADERS_FLAG }
        props._flags = amqp_flags_t(flags)
        return props
    }
}
