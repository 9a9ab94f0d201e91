import ARContract
import Partitioning
import PropertyBased
import Testing

/// One seed reproduces a whole scenario (randomness from the partition hash of seed and counter).
struct SeededRandom: RandomNumberGenerator {
    let seed: UInt64
    var counter: UInt64 = 0
    mutating func next() -> UInt64 { counter += 1; return PartitionLayout.hash("\(seed)/\(counter)") }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

@Suite struct PartitionLayoutTests {
    let layout = PartitionLayout(customerPartitions: 16, queuePrefix: "ar.inbound.part")

    @Test func namesAreStableAndTwoDigitsAtLeast() {
        #expect(layout.slots.count == 17)
        #expect(layout.queueName(.customers(0)) == "ar.inbound.part.00")
        #expect(layout.queueName(.customers(15)) == "ar.inbound.part.15")
        #expect(layout.queueName(.bank) == "ar.inbound.part.bank")
        #expect(PartitionLayout(customerPartitions: 200, queuePrefix: "p").queueName(.customers(128)) == "p.128")
        #expect(layout.slot(forQueue: "ar.inbound.part.07") == .customers(7))
        #expect(layout.slot(forQueue: "ar.inbound.part.16") == nil)
    }

    /// The partition function is SHA-256 based, so it is the same in every process and release:
    /// pinned values (a change here would move customers between partitions on upgrade).
    @Test func customerHashIsPinned() {
        #expect(PartitionLayout.hash("") == 0xe3b0_c442_98fc_1c14)
        #expect(PartitionLayout.hash("abc") == 0xba78_16bf_8f01_cfea)
        #expect(layout.slot(forKey: "abc") == .customers(Int(UInt64(0xba78_16bf_8f01_cfea) % 16)))
    }

    @Test func customersSpreadOverThePartitions() {
        var counts = [Int](repeating: 0, count: 16)
        for index in 0..<16_000 {
            guard case .customers(let slot) = layout.slot(forKey: "CUST-\(index)") else { Issue.record("not a customer slot"); return }
            counts[slot] += 1
        }
        // 1000 expected per partition; a fair hash stays well within ±15 %.
        #expect(counts.allSatisfy { (850...1150).contains($0) }, "\(counts)")
    }
}

@Suite struct RoutingFactsTests {
    func facts(_ json: String, routingKey: String = "invoice.issued") -> RoutingFacts {
        RoutingFacts.read(body: Array(json.utf8), routingKey: routingKey, maximumBodyBytes: 65_536)
    }

    func decision(_ json: String, routingKey: String = "x", known: [String: String] = [:]) -> RoutingDecision {
        RoutingDecision.decide(facts(json, routingKey: routingKey)) { known[$0.rawValue + ":" + $1] }
    }

    @Test func customerIDInDataWins() {
        let body = #"{"type":"payment.succeeded","source":"gw","id":"1","subject":"OTHER","data":{"customer_id":"C1","payment_id":"P1"}}"#
        #expect(decision(body) == .customer("C1"))
        #expect(facts(body).creates?.kind == .payment && facts(body).creates?.id == "P1")
    }

    @Test func invoiceIssuedRemembersItsInvoice() {
        let body = #"{"type":"invoice.issued","source":"b","id":"1","data":{"customer_id":"C1","invoice_id":"I1"}}"#
        #expect(facts(body).creates?.kind == .invoice && facts(body).creates?.id == "I1")
        // A credit note naming an invoice does not claim that invoice for its customer.
        let note = #"{"type":"credit_note.issued","source":"b","id":"2","data":{"customer_id":"C2","invoice_id":"I1"}}"#
        #expect(facts(note).creates == nil)
    }

    @Test(arguments: [
        (#"{"type":"invoice.voided","source":"b","id":"1","data":{"invoice_id":"I1","reason":"x"}}"#, "invoice", "I1"),
        (#"{"type":"payment.refunded","source":"g","id":"1","data":{"payment_id":"P1","refund_id":"R","amount":"1.00"}}"#, "payment", "P1"),
        (#"{"type":"promise_to_pay.recorded","source":"p","id":"1","data":{"invoice_ids":["I7","I8"],"promised_date":"2026-01-01"}}"#, "invoice", "I7"),
    ])
    func referenceFollowsItsCustomer(body: String, kind: String, id: String) {
        #expect(facts(body).reference?.kind.rawValue == kind && facts(body).reference?.id == id)
        #expect(decision(body, known: ["\(kind):\(id)": "C9"]) == .customer("C9"))
        // Not seen yet: the subject if there is one, else the reference itself (held until it arrives).
        #expect(decision(body) == .unknownReference(ReferenceKind(rawValue: kind)!, id))
    }

    @Test func subjectWhenNothingElseNamesTheCustomer() {
        let body = #"{"type":"payment.refunded","source":"g","id":"1","subject":"C3","data":{"payment_id":"P404"}}"#
        #expect(decision(body) == .subject("C3"))
        // The same customer hashes to the same partition whichever field named it.
        #expect(RoutingDecision.subject("C3").key == RoutingDecision.customer("C3").key)
    }

    @Test func bankTrafficHasItsOwnPartition() {
        let layout = PartitionLayout(customerPartitions: 4, queuePrefix: "q")
        #expect(decision(#"{"type":"bank.credit.received","data":{"customer_id":"C1"}}"#).slot(in: layout) == .bank)
        #expect(decision(#"{"type":"reconciliation.resolved","data":{}}"#).slot(in: layout) == .bank)
        #expect(decision("not json at all", routingKey: "bank.statement.received").slot(in: layout) == .bank)
    }

    /// Bad input still gets a partition (its consumer dead-letters it with the reason): always the
    /// same one for the same message, never a crash.
    @Test(arguments: ["", "not json", "[1,2,3]", #"{"data":{"customer_id":42}}"#, #"{"source":"s","id":"i"}"#,
                      String(repeating: "[", count: 10_000), #"{"data":{"customer_id":""#])
    func unreadableMessagesAreRoutedDeterministically(body: String) {
        let first = decision(body), second = decision(body)
        #expect(first == second)
        if case .customer = first { Issue.record("an unreadable message named a customer: \(first)") }
    }

    @Test func overlongIdentifiersAreNotKeys() {
        let long = String(repeating: "x", count: 300)
        #expect(decision(#"{"type":"invoice.issued","source":"s","id":"i","data":{"customer_id":"\#(long)"}}"#) != .customer(long))
    }

    @Test func oversizedBodyIsNotParsed() {
        let body = Array(#"{"type":"invoice.issued","data":{"customer_id":"C1"}}"#.utf8)
        let small = RoutingFacts.read(body: body, routingKey: "invoice.issued", maximumBodyBytes: 10)
        #expect(small.customerID == nil)
    }
}

@Suite struct PartitionAssignmentTests {
    let layout = PartitionLayout(customerPartitions: 16, queuePrefix: "ar.inbound.part")

    /// Every partition has exactly one owner among the members, loads differ by at most one, and
    /// every member computes the same answer whatever order it lists the members in.
    @Test func balancedCompleteAndAgreed() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = SeededRandom(seed: seed)
            let partitions = rng.int(1...40)
            let layout = PartitionLayout(customerPartitions: partitions, queuePrefix: "p")
            let members = (0..<rng.int(1...9)).map { "host\(rng.int(0...3))/\(rng.int(1...99_999))/c\($0)" }
            let owners = PartitionAssignment.assign(layout.slots, members: members, layout: layout)
            #expect(Set(owners.keys) == Set(layout.slots))
            #expect(Set(owners.values).isSubset(of: Set(members)))
            let loads = Set(members).map { member in owners.values.filter { $0 == member }.count }
            #expect((loads.max() ?? 0) - (loads.min() ?? 0) <= 1, "loads \(loads)")
            #expect(PartitionAssignment.assign(layout.slots, members: members.shuffled(using: &rng), layout: layout) == owners)
        }
    }

    /// A member joining takes about its share and the others keep most of theirs.
    @Test func joiningMovesAboutAFairShare() {
        let two = PartitionAssignment.assign(layout.slots, members: ["a", "b"], layout: layout)
        let three = PartitionAssignment.assign(layout.slots, members: ["a", "b", "c"], layout: layout)
        let moved = layout.slots.filter { two[$0] != three[$0] }.count
        #expect(three.values.filter { $0 == "c" }.count >= 5)
        #expect(moved <= 9, "moved \(moved) of 17 partitions for one joining member")
        #expect(PartitionAssignment.assign(layout.slots, members: [], layout: layout).isEmpty)
    }
}

@Suite struct PartitionOrderGuardTests {
    @Test func inOrderDeliveriesPassStraightThrough() {
        var orderGuard = PartitionOrderGuard<String>(lastApplied: 0)
        #expect(orderGuard.arrived("a", sequence: 1) == ["a"])
        #expect(orderGuard.arrived("b", sequence: 2) == ["b"])
        #expect(orderGuard.expected == 3)
    }

    /// RabbitMQ 3.10's quorum-queue failover to a registered standby: fresh messages first, then
    /// the returned ones. The guard releases them in the router's order.
    @Test func standbyReorderIsUndone() {
        var orderGuard = PartitionOrderGuard<Int>(lastApplied: 2)
        var released: [Int] = []
        for number in Array(13...22) + Array(3...12) + Array(23...29) {
            released += orderGuard.arrived(number, sequence: Int64(number))
        }
        #expect(released == Array(3...29))
        #expect(orderGuard.waitingCount == 0)
    }

    @Test func redeliveriesAndUnnumberedMessagesAreNeverHeldBack() {
        var orderGuard = PartitionOrderGuard<String>(lastApplied: 5)
        #expect(orderGuard.arrived("old", sequence: 4) == ["old"])     // applied before: the inbox decides
        #expect(orderGuard.arrived("plain", sequence: nil) == ["plain"])
        #expect(orderGuard.arrived("late", sequence: 7).isEmpty)
        #expect(orderGuard.arrived("next", sequence: 6) == ["next", "late"])
    }

    @Test func repeatedPublishWithTheSameNumberFollowsTheFirst() {
        var orderGuard = PartitionOrderGuard<String>(lastApplied: 0)
        #expect(orderGuard.arrived("2a", sequence: 2).isEmpty)
        #expect(orderGuard.arrived("2b", sequence: 2).isEmpty)
        #expect(orderGuard.arrived("1", sequence: 1) == ["1", "2a", "2b"])
    }

    @Test func acceptingAGapSkipsOnlyTheMissingNumbers() {
        var orderGuard = PartitionOrderGuard<String>(lastApplied: 10)
        #expect(orderGuard.arrived("14", sequence: 14).isEmpty)
        #expect(orderGuard.arrived("16", sequence: 16).isEmpty)
        let (ready, skipped) = orderGuard.acceptGap()
        #expect(ready == ["14"])
        #expect(skipped == 11...13)
        #expect(orderGuard.arrived("15", sequence: 15) == ["15", "16"])
        #expect(orderGuard.acceptGap().skipped == nil)
    }

    /// Any delivery order of numbered messages (with duplicates) releases each number's first copy
    /// in number order, and never loses a message.
    @Test func anyArrivalOrderReleasesInNumberOrder() async {
        await propertyCheck(count: 500, input: Gen.uint64()) { seed in
            var rng = SeededRandom(seed: seed)
            let count = rng.int(1...40)
            var arrivals = (1...count).map { (number: Int64($0), copy: 0) }
            for _ in 0..<rng.int(0...5) { arrivals.append((Int64(rng.int(1...count)), 1)) }
            arrivals.shuffle(using: &rng)
            var orderGuard = PartitionOrderGuard<(number: Int64, copy: Int)>(lastApplied: 0)
            var released: [(number: Int64, copy: Int)] = []
            for arrival in arrivals { released += orderGuard.arrived(arrival, sequence: arrival.number) }
            #expect(released.count == arrivals.count)
            var firsts: [Int64] = []
            var seen: Set<Int64> = []
            for item in released where !seen.contains(item.number) {
                seen.insert(item.number)
                firsts.append(item.number)
            }
            #expect(firsts == (1...Int64(count)).map { $0 })
        }
    }
}
