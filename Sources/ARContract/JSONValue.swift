/// A JSON document as parsed by `JSONParser`: exact, ordered, and free of floating point.
///
/// Numbers keep their source lexeme (`"12.50"`, `"1e3"`) so that an amount sent as a JSON number
/// is detectable as such and no `Double` is ever made from money. Objects keep member order, so
/// outbound events serialize byte-stably, and answer lookups by key.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number exactly as written (RFC 8259 grammar, already validated by the parser).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The member `key` of an object; nil for a missing member or a non-object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// The JSON Schema type name of this value ("integer" is a refinement of "number").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number(let lexeme): return JSONNumber.isIntegral(lexeme) ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// Equality as JSON Schema defines it for `enum`, `const` and `uniqueItems`: numbers compare
    /// by mathematical value (`1` equals `1.0`), objects ignore member order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b || JSONNumber.compare(a, b) == 0
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        case (.null, _), (.bool, _), (.number, _), (.string, _), (.array, _), (.object, _): return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let flag): hasher.combine(1); hasher.combine(flag)
        case .number(let lexeme): hasher.combine(2); hasher.combine(JSONNumber.canonical(lexeme))
        case .string(let text): hasher.combine(3); hasher.combine(text)
        case .array(let elements): hasher.combine(4); hasher.combine(elements)
        case .object(let object): hasher.combine(5); hasher.combine(object)
        }
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Hashable {
    public let key: String
    public let value: JSONValue

    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object that keeps its members in source (or insertion) order and has unique keys.
///
/// Lookup is a linear scan for small objects (every object our messages carry) and a dictionary
/// for large ones, built once at construction.
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var members: [JSONMember]
    private var indexByKey: [String: Int]?

    /// Objects with more members than this get a dictionary index.
    static let linearLookupLimit = 12

    public init() {
        members = []
        indexByKey = nil
    }

    /// Builds an object from members whose keys the caller guarantees to be unique (the parser
    /// has checked; builders use `appending`, which replaces).
    init(uniqueMembers: [JSONMember], index: [String: Int]?) {
        members = uniqueMembers
        indexByKey = index
        if indexByKey == nil, members.count > JSONObject.linearLookupLimit { rebuildIndex() }
    }

    /// Builds an object in the given order; a repeated key keeps its first position and last value.
    public init(_ pairs: [(String, JSONValue)]) {
        self.init()
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    public func makeIterator() -> IndexingIterator<[JSONMember]> { members.makeIterator() }

    public subscript(key: String) -> JSONValue? {
        get {
            guard let position = position(of: key) else { return nil }
            return members[position].value
        }
        set {
            if let position = position(of: key) {
                if let newValue {
                    members[position] = JSONMember(key: key, value: newValue)
                } else {
                    members.remove(at: position)
                    indexByKey = nil
                    if members.count > JSONObject.linearLookupLimit { rebuildIndex() }
                }
            } else if let newValue {
                members.append(JSONMember(key: key, value: newValue))
                if indexByKey != nil {
                    indexByKey?[key] = members.count - 1
                } else if members.count > JSONObject.linearLookupLimit {
                    rebuildIndex()
                }
            }
        }
    }

    public func position(of key: String) -> Int? {
        if let indexByKey { return indexByKey[key] }
        return members.firstIndex { $0.key == key }
    }

    private mutating func rebuildIndex() {
        var index: [String: Int] = [:]
        index.reserveCapacity(members.count)
        for (position, member) in members.enumerated() { index[member.key] = position }
        indexByKey = index
    }

    /// Order-insensitive, as JSON object equality is.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members {
            guard let other = rhs[member.key], other == member.value else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-insensitive: sum of per-member hashes.
        var combined = 0
        for member in members {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            combined = combined &+ memberHasher.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }
}

/// Arithmetic-free helpers on RFC 8259 number lexemes, exact at any size.
public enum JSONNumber {
    /// A number as sign, significant digits (no leading or trailing zeros) and a decimal exponent:
    /// value = ±0.d1d2d3... × 10^exponent. Zero has no digits.
    struct Decomposed: Hashable {
        var negative: Bool
        var digits: [UInt8]
        var exponent: Int
    }

    /// Decomposes a lexeme the parser accepted. Exponents are clamped to ±10^9, far beyond any
    /// value a comparison in our schemas can distinguish.
    static func decompose(_ lexeme: String) -> Decomposed {
        var bytes = Array(lexeme.utf8)[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") { negative = true; bytes = bytes.dropFirst() }
        var mantissa: [UInt8] = []
        var pointPosition: Int?
        var exponent = 0
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                pointPosition = mantissa.count
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                var exponentNegative = false
                index += 1
                if index < bytes.endIndex, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    exponentNegative = bytes[index] == UInt8(ascii: "-")
                    index += 1
                }
                while index < bytes.endIndex {
                    if exponent < 1_000_000_000 { exponent = exponent * 10 + Int(bytes[index] &- 0x30) }
                    index += 1
                }
                if exponentNegative { exponent = -exponent }
                break
            } else {
                mantissa.append(byte &- 0x30)
            }
            index += 1
        }
        let integerDigitCount = pointPosition ?? mantissa.count
        var leading = 0
        while leading < mantissa.count, mantissa[leading] == 0 { leading += 1 }
        var trailing = mantissa.count
        while trailing > leading, mantissa[trailing - 1] == 0 { trailing -= 1 }
        let significant = Array(mantissa[leading..<trailing])
        if significant.isEmpty { return Decomposed(negative: false, digits: [], exponent: 0) }
        return Decomposed(negative: negative, digits: significant, exponent: integerDigitCount - leading + exponent)
    }

    /// True when the lexeme's value is a whole number (`3`, `3.0`, `3e2`), as JSON Schema's
    /// "integer" type means.
    public static func isIntegral(_ lexeme: String) -> Bool {
        if !lexeme.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            return true
        }
        let value = decompose(lexeme)
        return value.digits.count <= value.exponent || value.digits.isEmpty
    }

    /// -1, 0 or 1 as `a` is less than, equal to or greater than `b`, by exact decimal value.
    public static func compare(_ a: String, _ b: String) -> Int {
        let left = decompose(a)
        let right = decompose(b)
        let leftSign = left.digits.isEmpty ? 0 : (left.negative ? -1 : 1)
        let rightSign = right.digits.isEmpty ? 0 : (right.negative ? -1 : 1)
        if leftSign != rightSign { return leftSign < rightSign ? -1 : 1 }
        if leftSign == 0 { return 0 }
        var magnitudeOrder = 0
        if left.exponent != right.exponent {
            magnitudeOrder = left.exponent < right.exponent ? -1 : 1
        } else {
            let length = max(left.digits.count, right.digits.count)
            for position in 0..<length {
                let l = position < left.digits.count ? left.digits[position] : 0
                let r = position < right.digits.count ? right.digits[position] : 0
                if l != r { magnitudeOrder = l < r ? -1 : 1; break }
            }
        }
        return leftSign * magnitudeOrder
    }

    /// A canonical text for hashing, so that equal values hash equally.
    static func canonical(_ lexeme: String) -> String {
        let value = decompose(lexeme)
        if value.digits.isEmpty { return "0" }
        return (value.negative ? "-" : "") + String(decoding: value.digits.map { $0 + 0x30 }, as: UTF8.self) + "e\(value.exponent)"
    }
}
