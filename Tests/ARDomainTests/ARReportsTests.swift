import ARDomain
import Testing

@Suite struct ARReportsTests {
    /// Worked by hand: as of 2026-03-15 the receivable is 10,000.00. Sales: 1–15 March 4,000.00,
    /// February (28 days) 5,000.00, January (31 days) 6,200.00. Countback: March covers 4,000.00
    /// in 15 days (6,000.00 left), February 5,000.00 in 28 days (1,000.00 left), January covers
    /// the last 1,000.00 in 31 × 1,000 / 6,200 = 5.0 days. DSO = 15 + 28 + 5.0 = 48.00 days.
    @Test func dsoCountbackWorkedExample() {
        let periods = DaysSalesOutstanding.periods(asOf: date("2026-03-15"))
        #expect(periods.count == DaysSalesOutstanding.maximumMonths)
        #expect(periods[0] == .init(first: date("2026-03-01"), last: date("2026-03-15")))
        #expect(periods[1] == .init(first: date("2026-02-01"), last: date("2026-02-28")))
        #expect(periods[2].days == 31)
        let sales: [Int64] = [400_000, 500_000, 620_000] + Array(repeating: 0, count: periods.count - 3)
        let result = DaysSalesOutstanding.countback(receivable: 1_000_000, periods: periods, sales: sales)
        #expect(result.hundredthsOfDays == 4800)
        #expect(result.text == "48.00")
        #expect(!result.capped)
        #expect(result.periods.count == 3)
    }

    @Test func dsoRoundsHalfUpAndCaps() {
        let periods = DaysSalesOutstanding.periods(asOf: date("2026-04-30"), count: 2)  // April 30 days, March 31
        // 1 of 3 of April: 30 / 3 = 10.00; 2 of 3: 20.00; 1 of 7: 4.2857… → 4.29
        #expect(DaysSalesOutstanding.countback(receivable: 100, periods: periods, sales: [300, 0]).text == "10.00")
        #expect(DaysSalesOutstanding.countback(receivable: 100, periods: periods, sales: [700, 0]).text == "4.29")
        let capped = DaysSalesOutstanding.countback(receivable: 1_000, periods: periods, sales: [300, 300])
        #expect(capped.capped && capped.text == ">61.00")
        #expect(DaysSalesOutstanding.countback(receivable: 0, periods: periods, sales: [300, 300]).text == "0.00")
    }

    @Test func unappliedCashIsAgedFirstInFirstOut() {
        let changes: [UnappliedAging.Change] = [
            .init(bookedOn: date("2026-01-01"), amount: 100), .init(bookedOn: date("2026-02-15"), amount: 50),
            .init(bookedOn: date("2026-03-01"), amount: -120), .init(bookedOn: date("2026-03-20"), amount: 30),
            .init(bookedOn: date("2026-05-01"), amount: 999),  // after the as-of date: not counted
        ]
        let buckets = UnappliedAging.age(changes, asOf: date("2026-04-01"))
        // The January 100 is used up, 30 of the February 50 left (45 days old), the March 30 is 12 days old.
        #expect(buckets.days1to30 == 30 && buckets.days31to60 == 30 && buckets.days61to90 == 0 && buckets.over90 == 0)
        #expect(buckets.total == 60)
    }

    @Test func agingTotalsPerCurrency() {
        var a = AgingBuckets(); a.add(100, daysPastDue: 0); a.add(50, daysPastDue: 45)
        var b = AgingBuckets(); b.add(7, daysPastDue: 100)
        let rows = [CustomerAging(customerID: "C1", customerName: "One", currency: usd, buckets: a),
                    CustomerAging(customerID: "C2", customerName: "Two", currency: usd, buckets: b),
                    CustomerAging(customerID: "C3", customerName: "Three", currency: jpy, buckets: b)]
        let totals = AgingReport.totals(rows)
        #expect(totals.map(\.currency) == [jpy, usd])
        #expect(totals[1].buckets.all == [100, 0, 50, 0, 7])
    }

    // RFC 4231 test cases 1, 2 and 6 (key longer than a block).
    @Test func hmacSHA256KnownAnswers() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        #expect(hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hex(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131), message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func cursorsRoundTripAndRefuseTamperingAndOtherCustomers() {
        let secret = Array("0123456789abcdef0123".utf8)
        let binding = PaymentHistoryCursor.Binding(customerID: "C1", filter: "")
        let cursor = PaymentHistoryCursor(horizonSequence: 42, horizon: Instant(microsecondsSinceEpoch: 1_780_000_000_000_001),
                                          lastReceivedAt: Instant(microsecondsSinceEpoch: -5), lastHistorySequence: 7)
        let text = cursor.encode(secret: secret, binding: binding)
        #expect(text.count < 128)
        #expect(PaymentHistoryCursor.decode(text, secret: secret, binding: binding) == cursor)
        #expect(PaymentHistoryCursor.decode(text, secret: secret, binding: .init(customerID: "C2", filter: "")) == nil)
        #expect(PaymentHistoryCursor.decode(text, secret: secret, binding: .init(customerID: "C1", filter: "2026-01-01")) == nil)
        #expect(PaymentHistoryCursor.decode(text, secret: Array("another secret of 20".utf8), binding: binding) == nil)
        var bytes = Array(text.utf8)
        for index in [3, 10, 40, bytes.count - 1] {
            let original = bytes[index]
            bytes[index] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(PaymentHistoryCursor.decode(String(decoding: bytes, as: UTF8.self), secret: secret, binding: binding) == nil, "tampered at \(index)")
            bytes[index] = original
        }
        #expect(PaymentHistoryCursor.decode("", secret: secret, binding: binding) == nil)
        #expect(PaymentHistoryCursor.decode("v1..", secret: secret, binding: binding) == nil)
    }

    @Test(arguments: [[UInt8](), [0], [0, 1], [0, 1, 2], [255, 254, 253, 252], Array(0...255)])
    func base64URLRoundTrips(_ bytes: [UInt8]) {
        #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
    }
}
