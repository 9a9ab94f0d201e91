/// Which consumer (a member: one consumer thread of one daemon instance) should consume which
/// partition. Every member computes it from the same inputs (the live members in the database and
/// the layout), so they agree without talking to each other; RabbitMQ still does the delivering.
///
/// Balanced rendezvous hashing: each partition ranks the members by a hash of (partition, member);
/// in a first pass every partition goes to its best-ranked member that has fewer than ⌊P/M⌋,
/// in a second pass the remaining P mod M partitions go to their best-ranked member with fewer than
/// ⌈P/M⌉. Loads therefore differ by at most one, and a member joining or leaving moves few
/// partitions (mostly those that rank it first).
public enum PartitionAssignment {
    public static func assign(_ slots: [PartitionSlot], members: [String], layout: PartitionLayout) -> [PartitionSlot: String] {
        let members = Array(Set(members)).sorted()
        guard !members.isEmpty else { return [:] }
        let ordered = slots.sorted()
        let floor = ordered.count / members.count
        var load: [String: Int] = [:]
        var owner: [PartitionSlot: String] = [:]
        func ranking(_ slot: PartitionSlot) -> [String] {
            let name = layout.queueName(slot)
            return members.map { (member: $0, weight: PartitionLayout.hash(name + "\u{0}" + $0)) }
                .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.member < $1.member }
                .map(\.member)
        }
        for pass in 0..<2 {
            let capacity = floor + pass
            for slot in ordered where owner[slot] == nil {
                if let member = ranking(slot).first(where: { load[$0, default: 0] < capacity }) {
                    owner[slot] = member
                    load[member, default: 0] += 1
                }
            }
        }
        return owner
    }
}
