import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Prometheus /metrics, /healthz and /readyz on the HTTP port (SPEC section 6).
extension DaemonOperationsTests {
    @Suite struct MetricsHealth {
        /// The sample value of a Prometheus text line ("name{labels} 1.0").
        static func value(_ line: Substring) -> Double { Double(line.split(separator: " ").last ?? "") ?? .nan }

        @Test func metricsAndHealthEndpoints() async throws {
            try await withScope("met") { scope in
                let port = try HTTPGet.freePort()
                let daemon = try await scope.startDaemon(["RECEIVABLESD_HTTP_PORT": String(port)])
                let p = scope.tag
                let items: [[String: Any]] = [
                    ["role": "BILLING", "body": ["specversion": "1.0", "id": "\(p)-1", "source": "billing-ops", "type": "customer.upserted",
                                                 "time": "2026-01-05T10:00:00Z", "data": ["customer_id": "\(p)-C", "name": "Metrics"]] as [String: Any]],
                    ["role": "BILLING", "body": "this is not JSON \(p)"],
                ]
                let file = scope.directory + "/metrics.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: file))
                let published = try await scope.python(["publish", file])
                #expect(published.status == 0, "publishing failed: \(published.output)")
                #expect(try await scope.waitForCount("SELECT count(*) FROM customers WHERE customer_id = '\(p)-C'", atLeast: 1, timeout: .seconds(30)) == 1)

                // the rejection is counted once it is dead-lettered
                var metrics = ""
                let clock = ContinuousClock()
                var deadline = clock.now + .seconds(20)
                while clock.now < deadline {
                    metrics = HTTPGet.get(port: port, path: "/metrics")?.body ?? ""
                    if metrics.contains("receivablesd_rejections_total{") && metrics.contains("receivablesd_messages_total{") { break }
                    try await Task.sleep(for: .milliseconds(300))
                }
                let metricsResponse = HTTPGet.get(port: port, path: "/metrics")
                #expect(metricsResponse?.status == 200, "/metrics status: \(String(describing: metricsResponse?.status))")
                for name in ["receivablesd_messages_total{", "receivablesd_rejections_total{reason=", "receivablesd_processing_duration_seconds",
                             "receivablesd_outbox_backlog", "receivablesd_connection_up{"] {
                    #expect(metrics.contains(name), "/metrics lacks \(name):\n\(metrics.prefix(3000))")
                }
                let lines = metrics.split(separator: "\n")
                #expect(lines.contains { $0.hasPrefix("receivablesd_rejections_total{") && Self.value($0) > 0 },
                        "no non-zero rejection counter:\n\(lines.filter { $0.contains("rejections") })")
                #expect(lines.contains { $0.hasPrefix("receivablesd_connection_up{") && $0.contains("database") && Self.value($0) == 1 },
                        "no database connection_up = 1:\n\(lines.filter { $0.contains("connection_up") })")

                let health = HTTPGet.get(port: port, path: "/healthz")
                #expect(health?.status == 200, "/healthz: \(String(describing: health))")
                let ready = HTTPGet.get(port: port, path: "/readyz")
                #expect(ready?.status == 200, "/readyz while ready: \(String(describing: ready))")
                #expect(HTTPGet.get(port: port, path: "/nope")?.status == 404, "unknown path is not 404")

                // PostgreSQL down: /readyz turns 503 once the daemon notices; /healthz stays 200 (alive)
                var downReady: Int?
                var downHealth: Int?
                var downMetrics = ""
                try await withPostgresStopped(scope) {
                    deadline = clock.now + .seconds(30)
                    while clock.now < deadline {
                        downReady = HTTPGet.get(port: port, path: "/readyz")?.status
                        if downReady == 503 { break }
                        try await Task.sleep(for: .milliseconds(250))
                    }
                    downHealth = HTTPGet.get(port: port, path: "/healthz")?.status
                    downMetrics = HTTPGet.get(port: port, path: "/metrics")?.body ?? ""
                }
                #expect(downReady == 503, "/readyz while PostgreSQL is down: \(String(describing: downReady))\n\(daemon.tail(10))")
                #expect(downHealth == 200, "/healthz while PostgreSQL is down: \(String(describing: downHealth))")
                #expect(downMetrics.split(separator: "\n").contains { $0.hasPrefix("receivablesd_connection_up{") && $0.contains("database") && Self.value($0) == 0 },
                        "no database connection_up = 0 while PostgreSQL is down:\n\(downMetrics.split(separator: "\n").filter { $0.contains("connection_up") })")

                // back up: ready again
                var backReady: Int?
                deadline = clock.now + .seconds(60)
                while clock.now < deadline {
                    backReady = HTTPGet.get(port: port, path: "/readyz")?.status
                    if backReady == 200 { break }
                    try await Task.sleep(for: .milliseconds(300))
                }
                #expect(backReady == 200, "/readyz after PostgreSQL came back: \(String(describing: backReady))\n\(daemon.tail(10))")

                daemon.signal(SIGTERM)
                let status = await daemon.wait(timeout: .seconds(60))
                #expect(status == 0, "exit status on SIGTERM: \(status.map(String.init) ?? "still running")")
            }
        }
    }
}
