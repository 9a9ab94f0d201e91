/// Keeps one partition's messages in the order the router numbered them, whatever order the
/// broker delivers them in.
///
/// The router stamps every message of a partition with the next sequence number of that
/// partition (`x-partition-seq`), committed with the routing. The consumer knows the last number
/// applied (committed with the messages' effects) and applies number n+1 next. RabbitMQ 3.10 can
/// deliver later numbers first: a quorum queue that hands a consumer change to a registered
/// standby delivers fresh messages before the returned ones, and a publish the broker refused and
/// the router repeated sits behind its successors. Such early messages wait here (unacked, inside
/// the prefetch window) until the missing number arrives.
///
/// A lower number than expected is a redelivery of something already applied (or its duplicate):
/// it is released at once, and the inbox decides; nothing is ever skipped by number alone. A
/// message without a number (not routed by us) is released in arrival order.
///
/// If the expected number does not come, the consumer closes the partition's channel and
/// subscribes afresh (RabbitMQ then delivers the returned messages first); a gap that survives
/// that several times is accepted (`acceptGap`): the broker dead-lettered the missing message.
public struct PartitionOrderGuard<Delivery> {
    /// The number the next applied message must carry.
    public private(set) var expected: Int64
    private var waiting: [Int64: [Delivery]] = [:]

    /// `lastApplied`: the partition's last applied number as committed (0 for a new partition).
    public init(lastApplied: Int64) {
        expected = lastApplied + 1
    }

    /// Messages that arrived early, waiting for `expected`.
    public var waitingCount: Int { waiting.values.reduce(0) { $0 + $1.count } }
    /// The lowest number waiting (the head of the gap), if any.
    public var lowestWaiting: Int64? { waiting.keys.min() }

    /// A delivery arrived; returns the deliveries now ready to apply, in order.
    public mutating func arrived(_ delivery: Delivery, sequence: Int64?) -> [Delivery] {
        guard let sequence else { return [delivery] }
        if sequence < expected { return [delivery] }
        if sequence > expected {
            waiting[sequence, default: []].append(delivery)
            return []
        }
        var ready = [delivery]
        expected += 1
        ready += releaseContiguous()
        return ready
    }

    /// Gives up on the missing numbers below the lowest waiting one; returns what is now ready
    /// and the numbers skipped.
    public mutating func acceptGap() -> (ready: [Delivery], skipped: ClosedRange<Int64>?) {
        guard let lowest = waiting.keys.min(), lowest > expected else { return ([], nil) }
        let skipped = expected...(lowest - 1)
        expected = lowest
        return (releaseContiguous(), skipped)
    }

    private mutating func releaseContiguous() -> [Delivery] {
        var ready: [Delivery] = []
        while let next = waiting.removeValue(forKey: expected) {
            // Copies with the same number (a repeated publish) follow the first; the inbox
            // recognises them.
            ready += next
            expected += 1
        }
        return ready
    }
}
