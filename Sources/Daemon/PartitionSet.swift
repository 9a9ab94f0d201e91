import AMQPClient
import Partitioning

/// A delivery of a partition, restored to what its publisher sent, with the routing facts the
/// consumer needs.
struct PartitionDelivery {
    /// As published (see `RoutingHeaders.restored`); tag and channel are those of the partition.
    let delivery: AMQPDelivery
    let queue: String
    let sequence: Int64?
    /// `x-delivery-count` (quorum queues count returns; nil on a first delivery or a classic queue).
    let deliveryCount: Int64?
    /// When the router routed it (milliseconds since the epoch).
    let routedAt: Int64?

    var channel: UInt16 { delivery.channel }

    init(_ raw: AMQPDelivery, queue: String, daemonUser: String) {
        delivery = RoutingHeaders.restored(raw, daemonUser: daemonUser)
        self.queue = queue
        sequence = RoutingHeaders.sequenceNumber(raw, daemonUser: daemonUser)
        if case .int(let count)? = raw.properties.headers["x-delivery-count"] { deliveryCount = count } else { deliveryCount = nil }
        if case .int(let at)? = raw.properties.headers[RoutingHeaders.routedAt], RoutingHeaders.sequenceNumber(raw, daemonUser: daemonUser) != nil {
            routedAt = at
        } else {
            routedAt = nil
        }
    }
}

/// An ack to send after a commit.
struct PartitionAck: Equatable {
    let channel: UInt16
    let deliveryTag: UInt64
    let multiple: Bool
}

/// The partitions one consumer thread consumes (one channel each) and the deliveries it holds:
/// ready ones in apply order, early ones in each partition's order guard. No I/O: the worker
/// opens and closes the channels, applies and acks.
struct PartitionSet {
    struct Held {
        let slot: PartitionSlot
        let queue: String
        let channel: UInt16
        var orderGuard: PartitionOrderGuard<PartitionDelivery>
        /// Delivery tags received and not acked (ready, early or in the batch being applied).
        var unacked: Set<UInt64> = []
        /// Monotonic milliseconds of the last delivery (or of the subscription).
        var lastArrival: Int64
        /// Oldest routing time among the held deliveries not yet applied.
        var routedTimes: [UInt64: Int64] = [:]
    }

    private(set) var held: [UInt16: Held] = [:]
    /// Ready to apply, in order: within a partition in sequence order, across partitions in arrival order.
    private(set) var pending: [PartitionDelivery] = []

    var isEmpty: Bool { held.isEmpty }
    var queues: [String] { held.values.map(\.queue).sorted() }
    func channel(of slot: PartitionSlot) -> UInt16? { held.first { $0.value.slot == slot }?.key }

    mutating func subscribed(_ slot: PartitionSlot, queue: String, channel: UInt16, lastApplied: Int64, now: Int64) {
        precondition(held[channel] == nil, "channel \(channel) is in use")
        held[channel] = Held(slot: slot, queue: queue, channel: channel, orderGuard: PartitionOrderGuard(lastApplied: lastApplied), lastArrival: now)
    }

    /// Forgets a partition (its channel is being closed: the broker requeues everything unacked).
    @discardableResult
    mutating func unsubscribed(_ channel: UInt16) -> Held? {
        pending.removeAll { $0.channel == channel }
        return held.removeValue(forKey: channel)
    }

    /// A delivery arrived on `channel`. False when the channel is not (any more) ours: a frame
    /// rabbitmq-c queued before the channel closed; the broker has requeued that message.
    @discardableResult
    mutating func arrived(_ raw: AMQPDelivery, daemonUser: String, now: Int64) -> Bool {
        guard var partition = held[raw.channel] else { return false }
        let delivery = PartitionDelivery(raw, queue: partition.queue, daemonUser: daemonUser)
        partition.unacked.insert(raw.deliveryTag)
        partition.lastArrival = now
        if let at = delivery.routedAt { partition.routedTimes[raw.deliveryTag] = at }
        pending += partition.orderGuard.arrived(delivery, sequence: delivery.sequence)
        held[raw.channel] = partition
        return true
    }

    /// The next batch: a prefix of the ready deliveries, at most `maximum`, cut before the first
    /// delivery `isPoison` says must not be applied (unless it is first: then it alone).
    func nextBatch(maximum: Int, isPoison: (PartitionDelivery) -> Bool) -> [PartitionDelivery] {
        let prefix = Array(pending.prefix(maximum))
        if let first = prefix.first, isPoison(first) { return [first] }
        if let cut = prefix.firstIndex(where: isPoison) { return Array(prefix[..<cut]) }
        return prefix
    }

    /// The deliveries were applied and committed: removes them and says how to ack them. One
    /// `multiple` ack per channel when no delivery still held on it has a lower tag (an early
    /// message waiting in the guard may), else one ack per delivery.
    mutating func settled(_ deliveries: [PartitionDelivery]) -> [PartitionAck] {
        var byChannel: [UInt16: [UInt64]] = [:]
        for delivery in deliveries { byChannel[delivery.channel, default: []].append(delivery.delivery.deliveryTag) }
        let done = Set(deliveries.map { PendingKey(channel: $0.channel, tag: $0.delivery.deliveryTag) })
        pending.removeAll { done.contains(PendingKey(channel: $0.channel, tag: $0.delivery.deliveryTag)) }
        var acks: [PartitionAck] = []
        for (channel, tags) in byChannel.sorted(by: { $0.key < $1.key }) {
            guard var partition = held[channel] else { continue }
            for tag in tags {
                partition.unacked.remove(tag)
                partition.routedTimes.removeValue(forKey: tag)
            }
            held[channel] = partition
            let highest = tags.max() ?? 0
            if partition.unacked.allSatisfy({ $0 > highest }) {
                acks.append(PartitionAck(channel: channel, deliveryTag: highest, multiple: true))
            } else {
                acks += tags.sorted().map { PartitionAck(channel: channel, deliveryTag: $0, multiple: false) }
            }
        }
        return acks
    }

    private struct PendingKey: Hashable {
        let channel: UInt16
        let tag: UInt64
    }

    /// Channels whose guard waits for a missing number and nothing more can come to fill it for
    /// now: nothing arrived for `idleMilliseconds`, or the prefetch `window` is full of early ones.
    func stuck(now: Int64, idleMilliseconds: Int64, window: Int) -> [UInt16] {
        held.values.filter { partition in
            let waiting = partition.orderGuard.waitingCount
            return waiting > 0 && (now - partition.lastArrival >= idleMilliseconds || waiting >= window)
        }.map(\.channel).sorted()
    }

    /// Gives up on the missing numbers of `channel` (the broker dead-lettered them); the early
    /// deliveries become ready. Returns how many numbers were skipped.
    mutating func acceptGap(_ channel: UInt16) -> Int64 {
        guard var partition = held[channel] else { return 0 }
        let (ready, skipped) = partition.orderGuard.acceptGap()
        pending += ready
        held[channel] = partition
        return skipped.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
    }

    /// Age in milliseconds of the oldest routed delivery held for each partition (0 when none).
    func oldestAges(now wallMilliseconds: Int64) -> [String: Int64] {
        Dictionary(held.values.map { ($0.queue, $0.routedTimes.values.min().map { max(0, wallMilliseconds - $0) } ?? 0) },
                   uniquingKeysWith: max)
    }

    /// Per partition queue, the highest sequence number among `deliveries` (what to record as applied).
    static func progress(_ deliveries: [PartitionDelivery]) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for delivery in deliveries {
            guard let sequence = delivery.sequence else { continue }
            result[delivery.queue] = max(result[delivery.queue] ?? 0, sequence)
        }
        return result
    }
}
