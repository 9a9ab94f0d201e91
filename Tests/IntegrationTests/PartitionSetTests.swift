import AMQPClient
@testable import Daemon
import Partitioning
import Testing

/// The consumer thread's bookkeeping of its partitions, without I/O: order, acks, gaps, and the
/// restoring of routed messages (issue 13).
@Suite struct PartitionSetTests {
    static let daemon = "receivablesd"

    static func routed(_ tag: UInt64, channel: UInt16, sequence: Int64, user: String? = "billing", deliveryCount: Int64? = nil) -> AMQPDelivery {
        var headers: [String: AMQPFieldValue] = [RoutingHeaders.sequence: .int(sequence), RoutingHeaders.routingKey: .string("invoice.issued"),
                                                 RoutingHeaders.routedAt: .int(1_000), RoutingHeaders.decision: .string("customer"),
                                                 "x-custom": .string("kept")]
        if let user { headers[RoutingHeaders.user] = .string(user) }
        if let deliveryCount { headers["x-delivery-count"] = .int(deliveryCount) }
        return AMQPDelivery(deliveryTag: tag, redelivered: false, exchange: "ar.partitions", routingKey: "ar.inbound.part.03",
                            properties: AMQPProperties(userID: daemon, headers: headers), body: Array("m\(sequence)".utf8), channel: channel)
    }

    func set(lastApplied: Int64 = 0) -> PartitionSet {
        var set = PartitionSet()
        set.subscribed(.customers(3), queue: "ar.inbound.part.03", channel: 5, lastApplied: lastApplied, now: 0)
        set.subscribed(.bank, queue: "ar.inbound.part.bank", channel: 6, lastApplied: 0, now: 0)
        return set
    }

    func bodies(_ deliveries: [PartitionDelivery]) -> [String] { deliveries.map { String(decoding: $0.delivery.body, as: UTF8.self) } }

    @Test func routedMessagesAreRestoredToWhatThePublisherSent() {
        var set = set()
        set.arrived(Self.routed(1, channel: 5, sequence: 1), daemonUser: Self.daemon, now: 1)
        let delivery = set.pending[0]
        #expect(delivery.delivery.properties.userID == "billing")
        #expect(delivery.delivery.routingKey == "invoice.issued")
        #expect(delivery.delivery.properties.headers == ["x-custom": .string("kept")])
        #expect(delivery.sequence == 1 && delivery.routedAt == 1_000 && delivery.queue == "ar.inbound.part.03")
        // No verified publisher: restored without one (the pipeline rejects it forbidden_publisher).
        set.arrived(Self.routed(2, channel: 5, sequence: 2, user: nil), daemonUser: Self.daemon, now: 1)
        #expect(set.pending[1].delivery.properties.userID == nil)
    }

    @Test func headersFromAnotherUserAreNotTrusted() {
        var set = set()
        var forged = Self.routed(1, channel: 5, sequence: 1, user: "gateway")
        forged = AMQPDelivery(deliveryTag: 1, redelivered: false, exchange: "", routingKey: "payment.succeeded",
                              properties: AMQPProperties(userID: "billing", headers: forged.properties.headers), body: forged.body, channel: 5)
        set.arrived(forged, daemonUser: Self.daemon, now: 1)
        #expect(set.pending[0].delivery.properties.userID == "billing", "a forged x-ar-routed-user must not become the publisher")
        #expect(set.pending[0].sequence == nil)
    }

    @Test func inOrderDeliveriesAreAckedWithOneMultipleAckPerChannel() {
        var set = set()
        for n in 1...3 { set.arrived(Self.routed(UInt64(n), channel: 5, sequence: Int64(n)), daemonUser: Self.daemon, now: 1) }
        set.arrived(Self.routed(1, channel: 6, sequence: 1), daemonUser: Self.daemon, now: 1)
        let batch = set.nextBatch(maximum: 32) { _ in false }
        #expect(bodies(batch) == ["m1", "m2", "m3", "m1"])
        #expect(PartitionSet.progress(batch) == ["ar.inbound.part.03": 3, "ar.inbound.part.bank": 1])
        #expect(set.settled(batch) == [PartitionAck(channel: 5, deliveryTag: 3, multiple: true), PartitionAck(channel: 6, deliveryTag: 1, multiple: true)])
        #expect(set.pending.isEmpty)
    }

    /// An early message (lower delivery tag, higher number) waits; acking what was applied must not
    /// ack it with a multiple ack.
    @Test func anEarlyMessageIsNeverAckedBeforeItIsApplied() {
        var set = set(lastApplied: 10)
        set.arrived(Self.routed(1, channel: 5, sequence: 12), daemonUser: Self.daemon, now: 1)
        #expect(set.pending.isEmpty)
        set.arrived(Self.routed(2, channel: 5, sequence: 11), daemonUser: Self.daemon, now: 2)
        #expect(bodies(set.pending) == ["m11", "m12"])
        let first = set.nextBatch(maximum: 1) { _ in false }
        #expect(set.settled(first) == [PartitionAck(channel: 5, deliveryTag: 2, multiple: false)])
        let second = set.nextBatch(maximum: 1) { _ in false }
        #expect(set.settled(second) == [PartitionAck(channel: 5, deliveryTag: 1, multiple: true)])
    }

    @Test func aBatchStopsBeforeAPoisonMessageAndTakesItAlone() {
        var set = set()
        set.arrived(Self.routed(1, channel: 5, sequence: 1), daemonUser: Self.daemon, now: 1)
        set.arrived(Self.routed(2, channel: 5, sequence: 2, deliveryCount: 15), daemonUser: Self.daemon, now: 1)
        set.arrived(Self.routed(3, channel: 5, sequence: 3), daemonUser: Self.daemon, now: 1)
        let poison: (PartitionDelivery) -> Bool = { ($0.deliveryCount ?? 0) >= 15 }
        let before = set.nextBatch(maximum: 32, isPoison: poison)
        #expect(bodies(before) == ["m1"])
        _ = set.settled(before)
        #expect(bodies(set.nextBatch(maximum: 32, isPoison: poison)) == ["m2"])
    }

    @Test func aGapIsReportedWhenNothingMoreComesOrTheWindowIsFull() {
        var set = set()
        set.arrived(Self.routed(1, channel: 5, sequence: 2), daemonUser: Self.daemon, now: 100)
        #expect(set.stuck(now: 500, idleMilliseconds: 1_000, window: 64).isEmpty)
        #expect(set.stuck(now: 1_100, idleMilliseconds: 1_000, window: 64) == [5])
        #expect(set.stuck(now: 500, idleMilliseconds: 1_000, window: 1) == [5])
        #expect(set.acceptGap(5) == 1)
        #expect(bodies(set.pending) == ["m2"])
        #expect(set.stuck(now: 5_000, idleMilliseconds: 1_000, window: 64).isEmpty)
    }

    @Test func leavingAPartitionDropsItsDeliveriesAndIgnoresLateFrames() {
        var set = set()
        set.arrived(Self.routed(1, channel: 5, sequence: 1), daemonUser: Self.daemon, now: 1)
        set.arrived(Self.routed(1, channel: 6, sequence: 1), daemonUser: Self.daemon, now: 1)
        #expect(set.unsubscribed(5)?.queue == "ar.inbound.part.03")
        #expect(set.pending.map(\.channel) == [6])
        #expect(set.arrived(Self.routed(2, channel: 5, sequence: 2), daemonUser: Self.daemon, now: 2) == false)
        #expect(set.queues == ["ar.inbound.part.bank"])
    }
}

/// The router's per-batch plan: ids created earlier in the same batch are followed.
@Suite struct RouterPlanTests {
    func facts(_ json: String) -> RoutingFacts { RoutingFacts.read(body: Array(json.utf8), routingKey: "x", maximumBodyBytes: 65_536) }

    @Test func aMessageNamingOnlyAnIdFollowsTheCustomerThatCreatedIt() {
        let batch = [
            facts(#"{"type":"invoice.issued","source":"b","id":"1","data":{"invoice_id":"I1","customer_id":"C1"}}"#),
            facts(#"{"type":"invoice.voided","source":"b","id":"2","data":{"invoice_id":"I1","reason":"x"}}"#),
            facts(#"{"type":"payment.refunded","source":"g","id":"3","data":{"payment_id":"P9","refund_id":"R","amount":"1.00"}}"#),
            facts(#"{"type":"payment.refunded","source":"g","id":"4","data":{"payment_id":"P404","refund_id":"R","amount":"1.00"}}"#),
        ]
        let (decisions, remember) = IntakeRouter.plan(batch, known: ["payment:P9": "C2"])
        #expect(decisions == [.customer("C1"), .customer("C1"), .customer("C2"), .unknownReference(.payment, "P404")])
        #expect(remember.map { "\($0.kind):\($0.id)=\($0.customerID)" } == ["invoice:I1=C1"])
    }

    /// An id already known keeps its customer: a second customer claiming it changes nothing.
    @Test func theFirstCustomerOfAnIdWins() {
        let batch = [
            facts(#"{"type":"invoice.issued","source":"b","id":"1","data":{"invoice_id":"I1","customer_id":"INTRUDER"}}"#),
            facts(#"{"type":"invoice.voided","source":"b","id":"2","data":{"invoice_id":"I1","reason":"x"}}"#),
        ]
        let (decisions, remember) = IntakeRouter.plan(batch, known: ["invoice:I1": "OWNER"])
        #expect(decisions == [.customer("INTRUDER"), .customer("OWNER")])
        #expect(remember.isEmpty)
    }
}
