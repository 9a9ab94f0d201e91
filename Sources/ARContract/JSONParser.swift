/// Why bytes are not an acceptable JSON document, and where (byte offset).
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case empty
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidUTF8
        case controlCharacterInString
        case invalidEscape
        case unpairedSurrogate
        case invalidNumber
        case leadingZero
        case duplicateKey(String)
        /// Nesting of arrays and objects deeper than the allowed maximum (`too_deep`).
        case tooDeep(maximumDepth: Int)
        case trailingContent
    }

    public let reason: Reason
    public let offset: Int

    public var description: String {
        switch reason {
        case .empty: return "the body is empty"
        case .unexpectedEnd: return "the JSON text ends early"
        case .unexpectedByte(let byte): return "unexpected byte 0x\(String(byte, radix: 16)) at offset \(offset)"
        case .invalidUTF8: return "invalid UTF-8 at offset \(offset)"
        case .controlCharacterInString: return "unescaped control character in a string at offset \(offset)"
        case .invalidEscape: return "invalid escape sequence at offset \(offset)"
        case .unpairedSurrogate: return "unpaired UTF-16 surrogate escape at offset \(offset)"
        case .invalidNumber: return "malformed number at offset \(offset)"
        case .leadingZero: return "number with a leading zero at offset \(offset)"
        case .duplicateKey(let key): return "duplicate object key \"\(key.prefix(40))\" at offset \(offset)"
        case .tooDeep(let maximumDepth): return "nesting deeper than \(maximumDepth) levels at offset \(offset)"
        case .trailingContent: return "content after the JSON value at offset \(offset)"
        }
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Ours rather than Foundation's `JSONSerialization`/`JSONDecoder` because the contract needs
/// three things those do not give: the exact lexeme of every number (an amount sent as a number
/// must be detected, and money must never pass through `Double`), rejection of duplicate object
/// keys (two different `amount`s in one message must not be resolved silently by "last wins"),
/// and a nesting bound with its own error (`too_deep`), so hostile input cannot exhaust the stack.
///
/// Rejected: invalid UTF-8 (overlongs, surrogates, > U+10FFFF), a byte order mark, comments,
/// trailing commas, NaN/Infinity, leading zeros, `+` signs, unescaped control characters,
/// unpaired surrogate escapes, duplicate keys and anything after the value but whitespace.
/// Duplicate keys are compared as Swift strings, i.e. under Unicode canonical equivalence, which
/// is stricter than byte equality: deliberately so.
public struct JSONParser: Sendable {
    /// Arrays and objects nested deeper than this are rejected (the root container is depth 1).
    public var maximumDepth: Int

    public init(maximumDepth: Int = 32) {
        precondition(maximumDepth >= 1)
        self.maximumDepth = maximumDepth
    }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var cursor = Cursor(bytes: buffer, maximumDepth: maximumDepth)
            cursor.skipWhitespace()
            guard cursor.position < buffer.count else { throw JSONParseError(reason: .empty, offset: 0) }
            let value = try cursor.parseValue(depth: 0)
            cursor.skipWhitespace()
            guard cursor.position == buffer.count else {
                throw JSONParseError(reason: .trailingContent, offset: cursor.position)
            }
            return value
        }
    }

    public func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

private struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    func fail(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(reason: reason, offset: offset ?? position)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    func peek() throws(JSONParseError) -> UInt8 {
        guard position < bytes.count else { throw fail(.unexpectedEnd) }
        return bytes[position]
    }

    mutating func expect(_ literal: StaticString, value: JSONValue) throws(JSONParseError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail(.unexpectedEnd) }
        let expected = literal.utf8Start
        for offset in 0..<count where bytes[position + offset] != expected[offset] {
            throw fail(.unexpectedByte(bytes[position + offset]), at: position + offset)
        }
        position += count
        return value
    }

    /// `depth` is the number of containers enclosing the value; bounded by `maximumDepth`, so
    /// recursion is bounded too.
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        let byte = try peek()
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < maximumDepth else { throw fail(.tooDeep(maximumDepth: maximumDepth)) }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < maximumDepth else { throw fail(.tooDeep(maximumDepth: maximumDepth)) }
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw fail(.unexpectedByte(byte))
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1  // {
        skipWhitespace()
        var members: [JSONMember] = []
        var index: [String: Int]?
        if try peek() == UInt8(ascii: "}") {
            position += 1
            return .object(JSONObject(uniqueMembers: members, index: nil))
        }
        while true {
            skipWhitespace()
            let keyOffset = position
            guard try peek() == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(bytes[position])) }
            let key = try parseString()
            // Duplicate check: linear while small, a dictionary once the object grows.
            if let existing = index {
                if existing[key] != nil { throw fail(.duplicateKey(key), at: keyOffset) }
                index?[key] = members.count
            } else {
                for member in members where member.key == key { throw fail(.duplicateKey(key), at: keyOffset) }
                if members.count == JSONObject.linearLookupLimit {
                    var built: [String: Int] = [:]
                    for (position, member) in members.enumerated() { built[member.key] = position }
                    built[key] = members.count
                    index = built
                }
            }
            skipWhitespace()
            guard try peek() == UInt8(ascii: ":") else { throw fail(.unexpectedByte(bytes[position])) }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            let separator = try peek()
            position += 1
            if separator == UInt8(ascii: "}") { break }
            guard separator == UInt8(ascii: ",") else { throw fail(.unexpectedByte(separator), at: position - 1) }
        }
        return .object(JSONObject(uniqueMembers: members, index: index))
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1  // [
        skipWhitespace()
        var elements: [JSONValue] = []
        if try peek() == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            let separator = try peek()
            position += 1
            if separator == UInt8(ascii: "]") { break }
            guard separator == UInt8(ascii: ",") else { throw fail(.unexpectedByte(separator), at: position - 1) }
        }
        return .array(elements)
    }

    mutating func parseNumber() throws(JSONParseError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count else { throw fail(.unexpectedEnd) }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) { throw fail(.leadingZero, at: start) }
        } else if isDigit(bytes[position]) {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        } else {
            throw fail(.invalidNumber, at: start)
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            let fractionStart = position
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            guard position > fractionStart else { throw fail(.invalidNumber, at: start) }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let exponentStart = position
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            guard position > exponentStart else { throw fail(.invalidNumber, at: start) }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Parses a string starting at its opening quote. The common case (no escapes) validates
    /// UTF-8 in place and makes the String from the slice in one step.
    mutating func parseString() throws(JSONParseError) -> String {
        position += 1  // opening quote
        let start = position
        var scratch: [UInt8]?
        var segmentStart = start
        while true {
            guard position < bytes.count else { throw fail(.unexpectedEnd) }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text: String
                if var built = scratch {
                    built.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<position]))
                    text = String(decoding: built, as: UTF8.self)
                } else {
                    text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                }
                position += 1
                return text
            } else if byte == UInt8(ascii: "\\") {
                if scratch == nil { scratch = [] }
                scratch!.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<position]))
                try parseEscape(into: &scratch!)
                segmentStart = position
            } else if byte < 0x20 {
                throw fail(.controlCharacterInString)
            } else if byte < 0x80 {
                position += 1
            } else {
                try skipMultibyteScalar()
            }
        }
    }

    /// Validates one multi-byte UTF-8 sequence (RFC 3629 table: no overlongs, no surrogates,
    /// nothing above U+10FFFF) and steps over it.
    mutating func skipMultibyteScalar() throws(JSONParseError) {
        let lead = bytes[position]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upperBound = 0x9F
        case 0xF0: length = 4; lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upperBound = 0x8F
        default: throw fail(.invalidUTF8)
        }
        guard position + length <= bytes.count else { throw fail(.invalidUTF8) }
        let second = bytes[position + 1]
        guard second >= lowerBound, second <= upperBound else { throw fail(.invalidUTF8) }
        for offset in 2..<max(2, length) where bytes[position + offset] & 0xC0 != 0x80 {
            throw fail(.invalidUTF8, at: position + offset)
        }
        position += length
    }

    mutating func parseEscape(into output: inout [UInt8]) throws(JSONParseError) {
        let escapeStart = position
        position += 1  // backslash
        guard position < bytes.count else { throw fail(.unexpectedEnd) }
        let kind = bytes[position]
        position += 1
        switch kind {
        case UInt8(ascii: "\""): output.append(0x22)
        case UInt8(ascii: "\\"): output.append(0x5C)
        case UInt8(ascii: "/"): output.append(0x2F)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw fail(.unpairedSurrogate, at: escapeStart)
                }
                position += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail(.unpairedSurrogate, at: escapeStart) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw fail(.unpairedSurrogate, at: escapeStart)
            }
            appendUTF8(of: scalar, to: &output)
        default:
            throw fail(.invalidEscape, at: escapeStart)
        }
    }

    /// Encodes a scalar value already known to be valid (not a surrogate, at most U+10FFFF).
    func appendUTF8(of scalar: UInt32, to output: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            output.append(UInt8(scalar))
        case ..<0x800:
            output.append(UInt8(0xC0 | scalar >> 6))
            output.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            output.append(UInt8(0xE0 | scalar >> 12))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        default:
            output.append(UInt8(0xF0 | scalar >> 18))
            output.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail(.unexpectedEnd) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - 0x61 + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - 0x41 + 10)
            default: throw fail(.invalidEscape)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}
