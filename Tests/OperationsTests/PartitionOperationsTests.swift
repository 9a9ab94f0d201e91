import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 13, operations: check-config explains the partitioned topology and says where a customer
/// goes; /metrics has per-partition series; `receivablesd partitions` shows who holds what.
@Suite struct PartitionConfigTests {
    /// The partition an independent implementation (Python's hashlib) gives a customer id.
    static func expectedPartition(_ customer: String, partitions: Int) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["RECEIVABLESD_PYTHON"] ?? "/usr/bin/python3")
        process.arguments = ["-c", "import hashlib,sys; print('%02d' % (int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8], 'big') % int(sys.argv[2])))",
                             customer, String(partitions)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func checkConfigExplainsTheTopologyAndWhereACustomerGoes() throws {
        let config = try CheckConfigTests.documentedConfig()
        let result = try CheckConfigTests.run(["check-config", "--config", config, "--customer", "CUST-0042", "--customer", "Ünïcödé 7"],
                                              environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"])
        #expect(result.status == 0, "check-config failed:\n\(result.output)")
        #expect(result.output.contains("topology: ar.inbound (topic, routing key = type) → ar.inbound.intake (quorum, delivery limit 20, single active consumer)"),
                "no topology line:\n\(result.output)")
        #expect(result.output.contains("16 customer partitions ar.inbound.part.00 … ar.inbound.part.15 + ar.inbound.part.bank"), "\(result.output)")
        #expect(result.output.contains("partition key: data.customer_id"), "\(result.output)")
        #expect(result.output.contains("upgrade: the single work queue of older releases (ar.inbound.work)"), "\(result.output)")
        for customer in ["CUST-0042", "Ünïcödé 7"] {
            let expected = "customer \(customer) → ar.inbound.part.\(try Self.expectedPartition(customer, partitions: 16))"
            #expect(result.output.contains(expected), "expected '\(expected)':\n\(result.output)")
        }
        let eight = try CheckConfigTests.run(["check-config", "--config", config, "--customer", "CUST-0042"],
                                             environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x", "RECEIVABLESD_PARTITIONS": "8"])
        #expect(eight.output.contains("customer CUST-0042 → ar.inbound.part.\(try Self.expectedPartition("CUST-0042", partitions: 8))"), "\(eight.output)")
    }

    @Test func partitionSettingsAreChecked() throws {
        let broken = try CheckConfigTests.temporaryFile("partitions.yaml", """
            partitions: 0
            partition_lease_seconds: 1
            prefetch: 16
            router_batch_size: 32
            """)
        let result = try CheckConfigTests.run(["check-config", "--config", broken], environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"])
        #expect(result.status != 0, "accepted:\n\(result.output)")
        for mistake in ["partitions = 0", "partition_lease_seconds = 1", "router_batch_size = 32 exceeds prefetch = 16"] {
            #expect(result.output.contains(mistake), "no line naming \(mistake):\n\(result.output)")
        }
    }
}

extension DaemonOperationsTests {
    @Suite struct PartitionMetrics {
        @Test func metricsPerPartitionAndThePartitionsCommand() async throws {
            try await withScope("par") { scope in
                let port = try HTTPGet.freePort()
                let daemon = try await scope.startDaemon(["RECEIVABLESD_HTTP_PORT": String(port)])
                let p = scope.tag
                let items: [[String: Any]] = [
                    ["role": "BILLING", "body": ["specversion": "1.0", "id": "\(p)-1", "source": "billing-ops", "type": "customer.upserted",
                                                 "time": "2026-01-05T10:00:00Z", "data": ["customer_id": "\(p)-C", "name": "Partitions"]] as [String: Any]],
                ]
                let file = scope.directory + "/partitions.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: file))
                #expect(try await scope.python(["publish", file]).status == 0)
                #expect(try await scope.waitForCount("SELECT count(*) FROM customers WHERE customer_id = '\(p)-C'", atLeast: 1, timeout: .seconds(30)) == 1)

                let queues = scope.partitionQueues
                var lines: [Substring] = []
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(30)
                func series(_ name: String, _ queue: String) -> Double? {
                    lines.first { $0.hasPrefix(name + "{") && $0.contains("partition=\"\(queue)\"") }.map(MetricsHealth.value)
                }
                while clock.now < deadline {
                    lines = (HTTPGet.get(port: port, path: "/metrics")?.body ?? "").split(separator: "\n")
                    // The depth and consumers are sampled every 5 s by the router thread.
                    if queues.allSatisfy({ series("receivablesd_partition_consumers", $0) == 1 && series("receivablesd_partition_oldest_age_seconds", $0) != nil }) { break }
                    try await Task.sleep(for: .milliseconds(300))
                }
                for queue in queues {
                    #expect(series("receivablesd_partition_depth", queue) == 0, "depth of \(queue):\n\(lines.filter { $0.contains("partition") })")
                    #expect(series("receivablesd_partition_consumers", queue) == 1, "consumers of \(queue)")
                    #expect(series("receivablesd_partition_backlog", queue) == 0, "backlog of \(queue)")
                    // A series per consumer thread that held it: exactly one holds it now.
                    let owned = lines.filter { $0.hasPrefix("receivablesd_partition_owned{") && $0.contains("partition=\"\(queue)\"") }.map(MetricsHealth.value)
                    #expect(owned.reduce(0, +) == 1, "owned gauges of \(queue): \(owned)")
                    #expect(series("receivablesd_partition_oldest_age_seconds", queue) != nil, "oldest age of \(queue)")
                }
                #expect(lines.contains { $0.hasPrefix("receivablesd_router_active") && MetricsHealth.value($0) == 1 }, "router_active")
                #expect(lines.contains { $0.hasPrefix("receivablesd_routed_messages_total") && MetricsHealth.value($0) >= 1 }, "routed counter")

                let status = try await scope.cli(["partitions"])
                #expect(status.status == 0, "receivablesd partitions failed:\n\(status.output)")
                // Two threads: `consumers: 2` is the default.
                #expect(status.output.contains("an instance routes") && status.output.contains("2 live consumer thread(s)"), "\(status.output)")
                for queue in queues { #expect(status.output.contains(queue), "\(queue) not listed:\n\(status.output)") }

                daemon.signal(SIGTERM)
                let exit = await daemon.wait(timeout: .seconds(60))
                #expect(exit == 0, "exit status on SIGTERM: \(exit.map(String.init) ?? "still running")")
            }
        }
    }
}
