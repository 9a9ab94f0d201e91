import ARContract
@testable import Daemon
import Testing

/// The end-to-end bench's traffic and arithmetic, without I/O: it must be real, valid messages
/// (a bench of rejections would measure the dead-letter path), reproducible from its seed, and
/// its latency stamps and percentiles must read back what was written.
@Suite struct PaymentTrafficTests {
    @Test func everyGeneratedMessageIsAValidInboundMessage() throws {
        let decoder = try InboundDecoder()
        let traffic = PaymentTraffic(customers: 25, seed: 11, mixed: true)
        var generator = traffic.generator()
        let stream = traffic.setup() + (0..<2_000).map { _ in generator.next(phase: 2, publishedAt: 123_456_789) }
        var types: [String: Int] = [:]
        for message in stream {
            switch decoder.decode(body: message.body) {
            case .success(let decoded):
                #expect(decoded.envelope.type == message.type)
                types[message.type, default: 0] += 1
            case .failure(let rejection):
                Issue.record(Comment(rawValue: "bench message refused: \(rejection.code.rawValue) \(rejection.detail)"))
            }
        }
        #expect(Set(types.keys) == ["customer.upserted", "invoice.issued", "payment.succeeded"])
        #expect(types["payment.succeeded", default: 0] > 1_400, "about four in five of the stream are payments: \(types)")
    }

    @Test func theSameSeedGivesTheSameStreamAndAnotherSeedAnother() {
        func stream(_ seed: UInt64) -> [[UInt8]] {
            var generator = PaymentTraffic(customers: 50, seed: seed, mixed: true).generator()
            return (0..<300).map { _ in generator.next(phase: 1, publishedAt: 0).body }
        }
        #expect(stream(5) == stream(5))
        #expect(stream(5) != stream(6))
    }

    @Test func aStampReadsBackFromTheConfirmationsBody() {
        var generator = PaymentTraffic(customers: 3, seed: 1, mixed: false).generator()
        for published in [Int64(0), 1, 9_876_543_210_123] {
            let payment = generator.payment(phase: 4, publishedAt: published)
            let stamp = PaymentTraffic.stamp(in: payment.body)
            #expect(stamp?.phase == 4 && stamp?.publishedAt == published)
        }
        #expect(PaymentTraffic.stamp(in: Array("{\"payment_id\":\"P-1\"}".utf8)) == nil)
        #expect(PaymentTraffic.stamp(in: Array("{\"payment_id\":\"E2EP-1-2\"}".utf8)) == nil, "three fields or none")
        #expect(PaymentTraffic.stamp(in: []) == nil)
    }

    @Test func percentilesAreNearestRankInMilliseconds() {
        let summary = LatencySummary((1...1_000).map { Int64($0) * 1_000_000 }.shuffled())
        #expect(summary.samples == 1_000)
        #expect(summary.p50 == 500 && summary.p99 == 990 && summary.p999 == 999 && summary.maximum == 1_000)
        let empty = LatencySummary([])
        #expect(empty.samples == 0 && empty.p99 == 0)
        #expect(LatencySummary([1_234_567]).p50 == 1.23)
    }

    @Test func theTailIsLocatedByPublishSecond() {
        let start: Int64 = 5_000_000_000
        // Second 0: 100 payments of 2 ms; second 1: none; second 2: 99 of 3 ms and one of 90 ms.
        var latencies: [Int64] = []
        var published: [Int64] = []
        for i in 0..<100 { latencies.append(2_000_000); published.append(start + Int64(i) * 9_000_000) }
        for i in 0..<100 { latencies.append(i == 42 ? 90_000_000 : 3_000_000); published.append(start + 2_000_000_000 + Int64(i) * 9_000_000) }
        latencies.append(500_000_000); published.append(start - 1)  // before the phase: not counted
        let bySecond = LatencySummary.bySecond(latencies, publishedAt: published, from: start)
        #expect(bySecond == [2, 0, 3])
        let withSpike = LatencySummary.bySecond(latencies.map { $0 == 3_000_000 ? 90_000_000 : $0 }, publishedAt: published, from: start)
        #expect(withSpike == [2, 0, 90])
    }
}
