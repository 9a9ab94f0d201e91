import ARDomain
import PropertyBased
import Testing

@Suite struct BusinessDateTests {
    @Test(arguments: [
        ("1970-01-01", 0), ("1970-01-02", 1), ("1969-12-31", -1), ("2000-02-29", 11_016),
        ("2024-02-29", 19_782), ("2026-11-23", 20_780), ("0001-01-01", -719_162), ("9999-12-31", 2_932_896),
    ])
    func parsesValidDates(_ text: String, _ days: Int) {
        let parsed = BusinessDate(text)
        #expect(parsed?.daysSinceEpoch == days)
        #expect(parsed?.description == text)
    }

    @Test(arguments: [
        "", "2026-02-30", "2026-02-29", "1900-02-29", "2100-02-29", "2026-04-31", "2026-13-01", "2026-00-10",
        "2026-01-00", "2026-01-32", "0000-01-01", "2026-1-01", "2026-01-1", "26-01-01", "2026/01/01",
        "2026-01-01T00:00:00Z", " 2026-01-01", "2026-01-01 ", "+026-01-01", "2026-0a-01", "٢٠٢٦-٠١-٠١", "20260101",
    ])
    func rejectsInvalidDates(_ text: String) {
        #expect(BusinessDate(text) == nil)
    }

    @Test func componentsAndArithmetic() {
        #expect(BusinessDate(year: 2024, month: 2, day: 29) == date("2024-02-29"))
        #expect(BusinessDate(year: 2023, month: 2, day: 29) == nil)
        #expect(BusinessDate(year: 10_000, month: 1, day: 1) == nil)
        #expect(date("2026-02-28").adding(days: 1) == date("2026-03-01"))
        #expect(date("2024-02-28").adding(days: 1) == date("2024-02-29"))
        #expect(date("2026-03-31").days(since: date("2026-01-01")) == 89)
        #expect(date("2026-01-01") < date("2026-01-02"))
        #expect(date("2026-11-23").components == (2026, 11, 23))
    }

    @Test func roundTripsEveryDayOfTheRange() async {
        let first = date("0001-01-01").daysSinceEpoch
        let last = date("9999-12-31").daysSinceEpoch
        await propertyCheck(count: 2000, input: Gen.int(in: first...last)) { days in
            let value = BusinessDate(daysSinceEpoch: days)
            #expect(BusinessDate(value.description) == value)
            let (year, month, day) = value.components
            #expect(BusinessDate(year: year, month: month, day: day) == value)
            #expect(value.adding(days: 1).days(since: value) == 1)
        }
    }
}

@Suite struct InstantTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("1970-01-01T00:00:00z", 0),
        ("1970-01-01t00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000),
        ("1970-01-01T00:00:00.000001Z", 1),
        ("1970-01-01T00:00:00.123456789Z", 123_456),  // beyond microseconds is truncated
        ("1970-01-01T00:00:00.1234567890123Z", 123_456),  // RFC 3339 sets no limit on fraction digits
        ("1970-01-01T01:00:00+01:00", 0),
        ("1969-12-31T19:00:00-05:00", 0),
        ("1970-01-01T05:30:00+05:30", 0),
        ("1970-01-01T00:00:00-00:00", 0),
        ("2026-11-23T19:25:47.123456Z", 1_795_461_947_123_456),
        ("2026-11-23T20:25:47.123456+01:00", 1_795_461_947_123_456),
        ("1969-12-31T23:59:59.5Z", -500_000),
        ("2016-12-31T23:59:60Z", 1_483_228_799_000_000),  // leap second read as :59
    ])
    func parses(_ text: String, _ micros: Int64) {
        #expect(Instant(rfc3339: text)?.microsecondsSinceEpoch == micros)
    }

    @Test(arguments: [
        "", "2026-11-23", "2026-11-23T19:25:47", "2026-11-23T19:25Z", "2026-11-23 19:25:47Z", "2026-11-23X19:25:47Z",
        "2026-11-23T24:00:00Z", "2026-11-23T19:60:00Z", "2026-11-23T19:25:61Z", "2026-02-30T00:00:00Z",
        "2026-11-23T19:25:47.Z", "2026-11-23T19:25:47+0100", "2026-11-23T19:25:47+01",
        "2026-11-23T19:25:47+24:00", "2026-11-23T19:25:47+01:60", "2026-11-23T19:25:47Zx", "2026-11-23T19:25:47+01:00 ",
        "2026-11-23T1a:25:47Z", "2026-11-23T19:25:47.12aZ",
    ])
    func rejects(_ text: String) {
        #expect(Instant(rfc3339: text) == nil)
    }

    @Test func rendersUTCWithMicroseconds() {
        #expect(Instant(microsecondsSinceEpoch: 0).description == "1970-01-01T00:00:00.000000Z")
        #expect(Instant(microsecondsSinceEpoch: -1).description == "1969-12-31T23:59:59.999999Z")
        #expect(Instant(microsecondsSinceEpoch: 1_795_461_947_123_456).description == "2026-11-23T19:25:47.123456Z")
    }

    @Test func calendarDateInAnOffset() {
        let instant = Instant(rfc3339: "2026-11-23T23:30:00Z")!
        #expect(instant.date() == date("2026-11-23"))
        #expect(instant.date(offsetSeconds: 3600) == date("2026-11-24"))
        #expect(Instant(rfc3339: "2026-11-23T00:30:00Z")!.date(offsetSeconds: -3600) == date("2026-11-22"))
        #expect(instant.adding(seconds: 3600).date() == date("2026-11-24"))
    }

    /// Half a second before the epoch is still 1969-12-31: the day must be floored, not truncated.
    @Test func calendarDateBeforeTheEpoch() {
        #expect(Instant(microsecondsSinceEpoch: -500_000).date() == date("1969-12-31"))
        #expect(Instant(microsecondsSinceEpoch: -1).date() == date("1969-12-31"))
        #expect(Instant(secondsSinceEpoch: -86_400).date() == date("1969-12-31"))
        #expect(Instant(secondsSinceEpoch: -86_401).date() == date("1969-12-30"))
    }

    @Test func roundTripsThroughRFC3339() async {
        let first = Int64(date("0001-01-01").daysSinceEpoch) * 86_400_000_000
        let last = Int64(date("9999-12-31").daysSinceEpoch + 1) * 86_400_000_000 - 1
        await propertyCheck(count: 2000, input: Gen.int64(in: first...last), Gen.int(in: -(23 * 60 + 59)...(23 * 60 + 59))) { micros, offsetMinutes in
            let instant = Instant(microsecondsSinceEpoch: micros)
            #expect(Instant(rfc3339: instant.description) == instant)
            // The same instant written in another offset parses to the same point in time.
            let local = Instant(microsecondsSinceEpoch: micros + Int64(offsetMinutes) * 60_000_000)
            guard local.date() >= date("0001-01-01"), local.date() <= date("9999-12-31") else { return }
            let utc = String(local.description.dropLast())  // drop "Z"
            let sign = offsetMinutes < 0 ? "-" : "+"
            let magnitude = abs(offsetMinutes)
            func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
            let text: String = utc + sign + two(magnitude / 60) + ":" + two(magnitude % 60)
            #expect(Instant(rfc3339: text) == instant)
            #expect(instant.date(offsetSeconds: offsetMinutes * 60) == local.date())
        }
    }
}

@Suite struct DigestTests {
    static func hex(_ text: String) -> String { SHA256Digest.hex(Array(text.utf8)) }

    @Test func fipsVectors() {
        #expect(Self.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Self.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
            == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(SHA256Digest.hash([]).count == 32)
    }

    /// Padding edges: 55 bytes fit one block, 56 need two, and so on (values from Python hashlib).
    @Test(arguments: [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
        (128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"),
    ])
    func paddingBoundaries(_ length: Int, _ expected: String) {
        #expect(SHA256Digest.hex(Array(repeating: UInt8(ascii: "a"), count: length)) == expected)
    }

    @Test func aMillionAs() {
        #expect(SHA256Digest.hex(Array(repeating: UInt8(ascii: "a"), count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func stableIDs() {
        let id = StableID.make(["ab", "c"])
        #expect(id == StableID.make(["ab", "c"]))
        #expect(id != StableID.make(["a", "bc"]))
        #expect(StableID.make(["abc"]) != StableID.make(["ab", "c"]))
        #expect(StableID.make([""]) != StableID.make([]))
        // Pinned: stored and published ids must never change (values from Python hashlib).
        #expect(id == "430fb1b4-ac43-816e-8a81-fab27a1930ab")
        #expect(StableID.make(["a", "bc"]) == "5310a587-8878-8ab2-9d5a-d7c3f8503582")
        #expect(StableID.make(["payment.confirmed", "P1"]) == "f766fa20-9b4f-8a95-84f6-d890b1584eb0")
        let characters = Array(id)
        #expect(characters.count == 36)
        #expect(characters[14] == "8")  // version 8
        #expect("89ab".contains(characters[19]))  // RFC 9562 variant
    }
}
