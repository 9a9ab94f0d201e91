/// ISO 11649 structured creditor references ("RF18 5390 0754 7034"): found in free remittance text so
/// that reconciliation rule 1 (SPEC section 3) can use them whatever the format.
enum CreditorReference {
    /// The first valid RF reference in `text` (spaces inside it removed), or nil. Valid means
    /// `RF` + 2 check digits + 1–21 alphanumerics whose ISO 7064 MOD 97-10 check passes.
    static func firstRF(in text: String) -> String? {
        let scalars = Array(text.uppercased().unicodeScalars)
        var index = 0
        while index + 4 < scalars.count {
            defer { index += 1 }
            guard scalars[index] == "R", scalars[index + 1] == "F" else { continue }
            if index > 0, isAlphanumeric(scalars[index - 1]) { continue }
            var candidate: [Unicode.Scalar] = ["R", "F"]
            var cursor = index + 2
            while cursor < scalars.count, candidate.count < 25 {
                let scalar = scalars[cursor]
                if isAlphanumeric(scalar) {
                    candidate.append(scalar)
                } else if scalar == " ", cursor + 1 < scalars.count, isAlphanumeric(scalars[cursor + 1]), candidate.count < 8 {
                    // "RF18 5390 0754 7034": groups of four in print form
                } else {
                    break
                }
                cursor += 1
            }
            // Try the longest candidate first, then shorter ones (text may run on after the reference).
            var length = candidate.count
            while length >= 5 {
                let reference = String(String.UnicodeScalarView(candidate[0..<length]))
                if isValidRF(reference) { return reference }
                length -= 1
            }
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
