import ARDomain

/// The `entry_id` of a booking whose format gives no bank reference.
///
/// Rule (stable across runs, machines and versions of this code; documented in docs/bank-formats.md):
/// `"sha256:" + hex(SHA-256(fields))[0..<32]`, where `fields` is the UTF-8 of these values joined by
/// the byte 0x1F (unit separator), absent values as the empty string:
/// format, account, currency code, `credit`/`debit`, amount in minor units (decimal), booking date,
/// value date (`YYYY-MM-DD`), bank transaction code, customer reference, remittance text, and the
/// occurrence: 0 for the first booking with exactly these fields in its statement, 1 for the second...
/// The occurrence keeps two identical bookings on the same day (two 10.00 EUR card refunds) apart
/// while the same file parsed twice gives the same ids, so a re-sent file is recognised as a duplicate.
struct EntryIdentity {
    private var occurrencesByDigestInput: [[UInt8]: Int] = [:]

    /// Resets the occurrence counters at a new statement (occurrence is per statement).
    mutating func statementBegan() { occurrencesByDigestInput.removeAll(keepingCapacity: true) }

    mutating func digestID(
        format: BankFormat, account: String, amount: Money, creditDebit: CreditDebit, bookingDate: BankDate?,
        valueDate: BankDate?, transactionCode: String?, customerReference: String?, remittanceInfo: String?
    ) -> String {
        var input: [UInt8] = []
        let fields: [String] = [
            format.rawValue, account, amount.currency.code, creditDebit.rawValue, String(amount.minorUnits),
            bookingDate?.description ?? "", valueDate?.description ?? "", transactionCode ?? "",
            customerReference ?? "", remittanceInfo ?? "",
        ]
        for (index, field) in fields.enumerated() {
            if index > 0 { input.append(0x1F) }
            input.append(contentsOf: field.utf8)
        }
        let occurrence = occurrencesByDigestInput[input, default: 0]
        occurrencesByDigestInput[input] = occurrence + 1
        input.append(0x1F)
        input.append(contentsOf: String(occurrence).utf8)
        let digest = SHA256Digest.hash(input)
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in digest.prefix(16) {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return "sha256:" + String(decoding: hex, as: UTF8.self)
    }
}
