import ARDomain

/// One partition of the inbound stream: a customer partition (by hash of the customer id) or
/// the bank partition (bank traffic touches many customers and is ordered among itself).
public enum PartitionSlot: Hashable, Sendable, Comparable, CustomStringConvertible {
    case customers(Int)
    case bank

    public var description: String {
        switch self {
        case .customers(let index): return PartitionLayout.number(index)
        case .bank: return "bank"
        }
    }

    public static func < (lhs: PartitionSlot, rhs: PartitionSlot) -> Bool {
        switch (lhs, rhs) {
        case (.customers(let a), .customers(let b)): return a < b
        case (.customers, .bank): return true
        case (.bank, _): return false
        }
    }
}

/// The partitioned topology's names and the customer → partition function.
///
/// `P` customer partitions `<prefix>.00` … `<prefix>.<P-1>` plus `<prefix>.bank`. A customer's
/// partition is the first 8 bytes of SHA-256 of its id (big-endian) modulo P: stable across
/// processes, hosts and releases (Swift's `Hasher` is seeded per process and would not be).
public struct PartitionLayout: Sendable, Equatable {
    public let customerPartitions: Int
    public let queuePrefix: String

    public init(customerPartitions: Int, queuePrefix: String) {
        precondition(customerPartitions >= 1, "at least one customer partition")
        self.customerPartitions = customerPartitions
        self.queuePrefix = queuePrefix
    }

    /// Every partition, customer partitions in order, then the bank partition.
    public var slots: [PartitionSlot] { (0..<customerPartitions).map(PartitionSlot.customers) + [.bank] }

    public func queueName(_ slot: PartitionSlot) -> String { queuePrefix + "." + slot.description }

    /// The partition whose queue is `name`, if it belongs to this layout.
    public func slot(forQueue name: String) -> PartitionSlot? { slots.first { queueName($0) == name } }

    public func slot(forKey key: String) -> PartitionSlot {
        .customers(Int(PartitionLayout.hash(key) % UInt64(customerPartitions)))
    }

    /// First 8 bytes of SHA-256 of the UTF-8 key, big-endian.
    public static func hash(_ key: String) -> UInt64 {
        SHA256Digest.hash(Array(key.utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// Two digits at least ("00", "07", "15", "128"): names never change with P.
    static func number(_ index: Int) -> String { index < 10 ? "0\(index)" : String(index) }
}
