import Foundation
import Testing
import TestSupport

/// SPEC section 2: an unknown descriptive label is applied and counted in a metric by field name,
/// never by value (the value is publisher-controlled text: a dimension per value is a cardinality attack).
extension DaemonOperationsTests {
    @Suite struct UnknownLabelMetrics {
        @Test func unknownMethodsAreCountedByFieldNameOnly() async throws {
            try await withScope("lbl") { scope in
                let port = try HTTPGet.freePort()
                _ = try await scope.startDaemon(["RECEIVABLESD_HTTP_PORT": String(port)])
                let p = scope.tag
                func payment(_ n: Int, _ method: String) -> [String: Any] {
                    ["role": "GATEWAY", "body": ["specversion": "1.0", "id": "\(p)-P\(n)", "source": "gateway-ops", "type": "payment.succeeded",
                                                 "time": "2026-01-05T10:00:00Z",
                                                 "data": ["payment_id": "\(p)-P\(n)", "customer_id": "\(p)-C", "currency": "EUR", "amount": "12.00",
                                                          "method": method, "received_at": "2026-01-05T09:59:00Z"]] as [String: Any]]
                }
                let items: [[String: Any]] = [
                    ["role": "BILLING", "body": ["specversion": "1.0", "id": "\(p)-1", "source": "billing-ops", "type": "customer.upserted",
                                                 "time": "2026-01-05T10:00:00Z", "data": ["customer_id": "\(p)-C", "name": "Labels"]] as [String: Any]],
                    payment(1, "Zahlung per Handy \(p)"), payment(2, "zyxw-rail-\(p)"), payment(3, "klarna"),
                ]
                let file = scope.directory + "/labels.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: file))
                let published = try await scope.python(["publish", file])
                #expect(published.status == 0, "publishing failed: \(published.output)")
                #expect(try await scope.waitForCount("SELECT count(*) FROM payments WHERE payment_id LIKE '\(p)-P%'", atLeast: 3, timeout: .seconds(30)) == 3,
                        "every payment is applied, whatever its label")
                // Counted just after the commit that made the rows visible: poll until it shows.
                var metrics = ""
                var line: Substring?
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(10)
                repeat {
                    metrics = HTTPGet.get(port: port, path: "/metrics")?.body ?? ""
                    line = metrics.split(separator: "\n").first { $0.hasPrefix("receivablesd_unknown_labels_total{") && $0.contains("field=\"method\"") }
                    if line.map({ MetricsHealth.value($0) }) == 2 { break }
                    try await Task.sleep(for: .milliseconds(200))
                } while clock.now < deadline
                #expect(line.map { MetricsHealth.value($0) } == 2, "unknown method labels counted: \(String(describing: line))")
                // The label values themselves (queue names carry the scope tag, so look for the labels).
                for value in ["Zahlung per Handy", "zyxw-rail-"] { #expect(!metrics.contains(value), "a label value reached /metrics: \(value)") }
            }
        }
    }
}
