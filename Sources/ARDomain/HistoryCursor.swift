/// HMAC-SHA256 (RFC 2104) over ARDomain's SHA-256: signs payment-history cursors so a portal
/// (or whoever holds a page URL) can neither forge a position nor reuse another customer's cursor.
public enum HMACSHA256 {
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? SHA256Digest.hash(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = SHA256Digest.hash(block.map { $0 ^ 0x36 } + message)
        return SHA256Digest.hash(block.map { $0 ^ 0x5c } + inner)
    }

    /// Compares in time independent of where the first difference is.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// Base64url without padding (RFC 4648 section 5): cursors travel in URLs.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(16 - 8 * $1.offset) }
            for position in 0..<(chunk.count + 1) { out.append(alphabet[Int((value >> UInt32(18 - 6 * position)) & 63)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt32] = []
        for byte in text.utf8 {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt32(value))
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            let group = Array(values[index..<min(index + 4, values.count)])
            let value = group.enumerated().reduce(UInt32(0)) { $0 | $1.element << UInt32(18 - 6 * $1.offset) }
            for position in 0..<(group.count - 1) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(16 - 8 * position))) }
            index += 4
        }
        // Canonical form only: re-encoding must give the same text (no stray low bits).
        return encode(out) == text ? out : nil
    }
}

/// Where a payment-history traversal stands: the books horizon the first page was read at (no
/// payment booked later is part of this traversal, so none is seen twice or pushes another out)
/// and the keyset position of the last item returned (received_at, insertion number), newest first.
public struct PaymentHistoryCursor: Hashable, Sendable {
    public let horizonSequence: Int64
    public let horizon: Instant
    public let lastReceivedAt: Instant
    public let lastHistorySequence: Int64

    public init(horizonSequence: Int64, horizon: Instant, lastReceivedAt: Instant, lastHistorySequence: Int64) {
        self.horizonSequence = horizonSequence
        self.horizon = horizon
        self.lastReceivedAt = lastReceivedAt
        self.lastHistorySequence = lastHistorySequence
    }

    static let version: UInt8 = 1

    /// What the cursor is bound to: the customer and the request's filters. A cursor presented
    /// with anything else does not verify.
    public struct Binding: Hashable, Sendable {
        public let customerID: String
        public let filter: String
        public init(customerID: String, filter: String) { self.customerID = customerID; self.filter = filter }
        var bytes: [UInt8] { Array("payment_history\u{1F}\(customerID)\u{1F}\(filter)".utf8) }
    }

    /// `v1.<payload>.<mac>`, base64url; about 90 characters.
    public func encode(secret: [UInt8], binding: Binding) -> String {
        var payload: [UInt8] = [PaymentHistoryCursor.version]
        for value in [horizonSequence, horizon.microsecondsSinceEpoch, lastReceivedAt.microsecondsSinceEpoch, lastHistorySequence] {
            for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: value >> Int64(shift))) }
        }
        let mac = HMACSHA256.mac(key: secret, message: binding.bytes + [0] + payload)
        return "v1." + Base64URL.encode(payload) + "." + Base64URL.encode(mac)
    }

    /// Nil for anything not signed by `secret` for exactly this binding.
    public static func decode(_ text: String, secret: [UInt8], binding: Binding) -> PaymentHistoryCursor? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let payload = Base64URL.decode(String(parts[1])),
              let mac = Base64URL.decode(String(parts[2])), payload.count == 33, payload[0] == version else { return nil }
        guard HMACSHA256.equal(mac, HMACSHA256.mac(key: secret, message: binding.bytes + [0] + payload)) else { return nil }
        func int(at offset: Int) -> Int64 {
            payload[offset..<offset + 8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
        return PaymentHistoryCursor(horizonSequence: int(at: 1), horizon: Instant(microsecondsSinceEpoch: int(at: 9)),
                                    lastReceivedAt: Instant(microsecondsSinceEpoch: int(at: 17)), lastHistorySequence: int(at: 25))
    }
}
