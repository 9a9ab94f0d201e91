import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Logs leak nothing (SPEC section 6): no password, no full IBAN or account number, no card number,
/// whatever the daemon does with the message (applies it, holds it, dead-letters it).
extension DaemonOperationsTests {
    @Suite struct Redaction {
        static func luhnCheckDigit(_ digits: [Int]) -> Int {
            var sum = 0
            for (index, digit) in digits.reversed().enumerated() {
                var value = digit
                if index % 2 == 0 { value *= 2; if value > 9 { value -= 9 } }
                sum += value
            }
            return (10 - sum % 10) % 10
        }

        static func randomDigits(_ count: Int) -> [Int] { (0..<count).map { _ in Int.random(in: 0...9) } }

        /// A 16-digit Visa-shaped number that passes Luhn (a card number to the daemon).
        static func cardNumber() -> String {
            let body = [4] + randomDigits(14)
            return (body + [luhnCheckDigit(body)]).map(String.init).joined()
        }

        /// An 18-digit account number that fails Luhn (an account, not a card).
        static func accountNumber() -> String {
            let body = [7] + randomDigits(16)
            return (body + [(luhnCheckDigit(body) + 1) % 10]).map(String.init).joined()
        }

        /// A syntactically IBAN-shaped number with random digits (the check digits are irrelevant to logs).
        static func iban(_ country: String, digits: Int) -> String { country + randomDigits(digits).map(String.init).joined() }

        @Test func logsContainNoSecretsAccountNumbersOrCardNumbers() async throws {
            try await withScope("red") { scope in
                let p = scope.tag
                let customer = "\(p)-C"
                let ibanDE = Self.iban("DE", digits: 20)           // DE + 20 digits = 22 characters
                let ibanNL = "NL" + Self.randomDigits(2).map(String.init).joined() + "ABNA" + Self.randomDigits(10).map(String.init).joined()
                let ibanGB = "GB" + Self.randomDigits(2).map(String.init).joined() + "NWBK" + Self.randomDigits(14).map(String.init).joined()
                let account = Self.accountNumber()
                let card = Self.cardNumber()
                let cardGrouped = stride(from: 0, to: 16, by: 4).map { i in String(card.dropFirst(i).prefix(4)) }.joined(separator: " ")
                let spacedIBAN = stride(from: 0, to: ibanDE.count, by: 4).map { i in String(ibanDE.dropFirst(i).prefix(4)) }.joined(separator: " ")

                func event(_ type: String, _ id: String, _ source: String, _ data: [String: Any]) -> [String: Any] {
                    ["specversion": "1.0", "id": id, "source": source, "type": type, "time": "2026-02-01T10:00:00Z", "data": data]
                }
                let items: [[String: Any]] = [
                    // applied: a customer with an IBAN and a long account number on file
                    ["role": "BILLING", "body": event("customer.upserted", "\(p)-1", "billing-ops",
                                                      ["customer_id": customer, "name": "Redaction \(p)", "bank_accounts": [ibanDE, account]])],
                    // rejected (schema): an account number with spaces is not a bank_account
                    ["role": "BILLING", "body": event("customer.upserted", "\(p)-2", "billing-ops",
                                                      ["customer_id": "\(p)-C2", "name": "Bad account", "bank_accounts": [spacedIBAN]])],
                    // applied or held: a bank credit naming the payer's IBAN and account, and an IBAN in free text
                    ["role": "BANK", "body": event("bank.credit.received", "\(p)-3", "bank-ops", [
                        "entry_id": "\(p)-E1", "account": ibanGB, "currency": "EUR", "amount": "12.34", "booking_date": "2026-02-01",
                        "debtor_name": "Payer \(p)", "debtor_account": ibanNL, "remittance_info": "from \(ibanNL) account \(account) ref \(p)",
                    ])],
                    ["role": "BANK", "body": event("bank.credit.received", "\(p)-4", "bank-ops", [
                        "entry_id": "\(p)-E2", "account": account, "currency": "EUR", "amount": "5.00", "booking_date": "2026-02-01",
                        "debtor_account": account,
                    ])],
                    // rejected card_data_present: a card number, bare and grouped
                    ["role": "GATEWAY", "body": event("payment.succeeded", "\(p)-5", "gateway-ops", [
                        "payment_id": "\(p)-P1", "customer_id": customer, "currency": "EUR", "amount": "1.00", "method": "card",
                        "received_at": "2026-02-01T10:00:00Z", "card_number": card,
                    ])],
                    ["role": "GATEWAY", "body": event("payment.succeeded", "\(p)-6", "gateway-ops", [
                        "payment_id": "\(p)-P2", "customer_id": customer, "currency": "EUR", "amount": "1.00", "method": "card",
                        "received_at": "2026-02-01T10:00:00Z", "gateway_reference": cardGrouped,
                    ])],
                    // rejected (not JSON) with the secrets in its body
                    ["role": "BILLING", "body": "not json \(p) \(ibanDE) \(card) \(account)"],
                ]
                let file = scope.directory + "/redaction.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: file))

                let daemon = try await scope.startDaemon(["RECEIVABLESD_LOG_LEVEL": "trace"])
                let published = try await scope.python(["publish", file])
                #expect(published.status == 0, "publishing failed: \(published.output)")
                let customers = try await scope.waitForCount("SELECT count(*) FROM customers WHERE customer_id = '\(customer)' AND bank_accounts::text LIKE '%\(ibanDE)%'",
                                                             atLeast: 1, timeout: .seconds(30))
                #expect(customers == 1, "the customer with bank accounts was not applied:\n\(daemon.tail())")
                // the bank credits are applied or rejected (this build: not_supported_yet): wait until all 7 messages are handled
                var captured: [[String: Any]] = []
                var handled = 0
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(30)
                while clock.now < deadline {
                    captured += try await scope.captured()
                    let inbox = try await scope.count("SELECT count(*) FROM inbox WHERE event_id IN ('\(p)-1', '\(p)-3', '\(p)-4')")
                    handled = inbox + captured.filter { ($0["exchange"] as? String) == scope.deadLetterExchange && (($0["body"] as? String)?.contains(p) ?? false) }.count
                    if handled >= 7 { break }
                    try await Task.sleep(for: .milliseconds(500))
                }
                #expect(handled == 7, "only \(handled) of 7 messages were applied or dead-lettered:\n\(daemon.tail())")
                let reasons = captured.filter { ($0["exchange"] as? String) == scope.deadLetterExchange && (($0["body"] as? String)?.contains(p) ?? false) }.map { ($0["reason"] as? String) ?? "?" }
                #expect(reasons.contains("schema_violation") && reasons.contains("not_json"), "expected schema_violation and not_json among \(reasons)")
                #expect(reasons.filter { $0 == "card_data_present" }.count == 2, "card messages not rejected card_data_present: \(reasons)")
                daemon.signal(SIGTERM)
                let status = await daemon.wait(timeout: .seconds(60))
                #expect(status == 0, "exit status on SIGTERM: \(status.map(String.init) ?? "still running")")

                let log = daemon.stdout + daemon.stderr
                #expect(log.contains("card_data_present"), "the log does not mention the rejections (nothing to check):\n\(daemon.tail())")
                #expect(log.split(separator: "\n").count >= 8, "suspiciously short log:\n\(log)")
                var leaks: [String] = []
                for (name, secret) in try OpsEnvironment.secrets(scope.environment) where log.contains(secret) { leaks.append("secret \(name)") }
                for (name, value) in [("IBAN DE", ibanDE), ("IBAN NL", ibanNL), ("IBAN GB", ibanGB), ("account number", account),
                                      ("card number", card), ("grouped card number", cardGrouped), ("spaced IBAN", spacedIBAN)]
                where log.contains(value) {
                    leaks.append("\(name) \(value)")
                }
                // digits only: a card or account number must not appear with other separators either
                for (name, value) in [("card number", card), ("account number", account)] {
                    let separated = log.replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "-", with: "")
                    if separated.contains(value) && !leaks.contains(where: { $0.hasPrefix(name) }) { leaks.append("\(name) with separators removed") }
                }
                #expect(leaks.isEmpty, "the daemon's log leaks: \(leaks.joined(separator: ", "))\n\(log.split(separator: "\n").filter { line in leaks.isEmpty ? false : [ibanDE, ibanNL, ibanGB, account, card, cardGrouped].contains { line.contains($0) } }.prefix(5).joined(separator: "\n"))")
            }
        }
    }
}
