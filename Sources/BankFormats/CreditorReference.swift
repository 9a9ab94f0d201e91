/// ISO 11649 structured creditor references ("RF18 5390 0754 7034"): found in free remittance text so
/// that reconciliation rule 1 (SPEC section 3) can use them whatever the format.
enum CreditorReference {
    /// The first valid RF reference in `text` (spaces inside it removed), or nil. Valid means
    /// `RF` + 2 check digits + 1–21 alphanumerics whose ISO 7064 MOD 97-10 check passes.
    static func firstRF(in text: String) -> String? {
        // Fast path: most remittance lines have no "RF" at all.
        var previous: UInt8 = 0
        var mayContain = false
        for byte in text.utf8 {
            if (byte == UInt8(ascii: "F") || byte == UInt8(ascii: "f")) && (previous == UInt8(ascii: "R") || previous == UInt8(ascii: "r")) {
                mayContain = true
                break
            }
            previous = byte
        }
        guard mayContain else { return nil }
        let scalars = Array(text.uppercased().unicodeScalars)
        var index = 0
        while index + 4 < scalars.count {
            defer { index += 1 }
            guard scalars[index] == "R", scalars[index + 1] == "F" else { continue }
            if index > 0, isAlphanumeric(scalars[index - 1]) { continue }
            // Electronic form: one run of alphanumerics. Print form: "RF18" then groups of at most 4.
            var cursor = index
            var candidate: [Unicode.Scalar] = []
            while cursor < scalars.count, isAlphanumeric(scalars[cursor]), candidate.count <= 25 {
                candidate.append(scalars[cursor])
                cursor += 1
            }
            if candidate.count == 4 {
                while cursor + 1 < scalars.count, scalars[cursor] == " " {
                    var group: [Unicode.Scalar] = []
                    var groupCursor = cursor + 1
                    while groupCursor < scalars.count, isAlphanumeric(scalars[groupCursor]), group.count <= 4 {
                        group.append(scalars[groupCursor])
                        groupCursor += 1
                    }
                    guard (1...4).contains(group.count), candidate.count + group.count <= 25 else { break }
                    candidate += group
                    cursor = groupCursor
                }
            }
            let reference = String(String.UnicodeScalarView(candidate))
            if isValidRF(reference) { return reference }
        }
        return nil
    }

    static func isValidRF(_ reference: String) -> Bool {
        let scalars = Array(reference.unicodeScalars)
        guard scalars.count >= 5, scalars.count <= 25, scalars[0] == "R", scalars[1] == "F",
            scalars[2].properties.numericType != nil, scalars[3].properties.numericType != nil,
            scalars.allSatisfy(isAlphanumeric)
        else { return false }
        let rearranged = scalars[4...] + scalars[0..<4]
        var remainder = 0
        for scalar in rearranged {
            let value: Int
            if scalar.value >= 0x30 && scalar.value <= 0x39 {
                value = Int(scalar.value - 0x30)
                remainder = (remainder * 10 + value) % 97
            } else {
                value = Int(scalar.value - 0x41) + 10
                remainder = (remainder * 100 + value) % 97
            }
        }
        return remainder == 1
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 0x30 && scalar.value <= 0x39) || (scalar.value >= 0x41 && scalar.value <= 0x5A)
    }
}
