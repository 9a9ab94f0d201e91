import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// TLS to RabbitMQ and PostgreSQL is configuration only (SPEC section 6): with a throwaway CA
/// (`scripts/services.sh tls-setup`), verified connections work end to end; with a wrong CA each
/// side is refused with a certificate error and the daemon never becomes ready.
extension DaemonOperationsTests {
    @Suite struct TLS {
        static func tlsDirectory(_ environment: [String: String]) -> String {
            if let directory = environment["RECEIVABLESD_TLS_DIR"], !directory.isEmpty { return directory }
            let services = URL(fileURLWithPath: environment["RECEIVABLESD_SERVICES"]!)
            return services.deletingLastPathComponent().deletingLastPathComponent().path + "/.local/tls"
        }

        @Test func verifiedTLSWorksEndToEndAndAWrongCAIsRefused() async throws {
            try await withScope("tls") { scope in
                try await scope.services("tls-setup")   // idempotent: no-op when the listener and ssl=on are there
                let tls = Self.tlsDirectory(scope.environment)
                let ca = tls + "/ca.pem"
                #expect(FileManager.default.fileExists(atPath: ca), "no CA at \(ca) after tls-setup")

                // A throwaway CA that signed nothing of ours.
                let wrongCA = scope.directory + "/wrong-ca.pem"
                let made = try await scope.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                                                  "-subj", "/CN=not the receivablesd CA", "-keyout", scope.directory + "/wrong-ca.key",
                                                                  "-out", wrongCA])
                #expect(made.status == 0, "openssl failed: \(made.output)")
                let amqps = scope.environment["RECEIVABLESD_AMQPS_PORT"]!

                // Independent checks: openssl, pika and psql verify the servers' certificates.
                let sClient = try await scope.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(amqps)", "-CAfile", ca,
                                                                     "-verify_return_error", "-verify_hostname", "localhost", "-brief"], timeout: .seconds(30))
                #expect(sClient.output.contains("Verification: OK") || sClient.output.contains("Verify return code: 0"),
                        "openssl s_client could not verify the broker's certificate:\n\(sClient.output)")
                let pikaGood = try await scope.python(["tls-check", ca])
                #expect(pikaGood.status == 0, "pika over TLS with the right CA failed: \(pikaGood.output)")
                let pikaWrong = try await scope.python(["tls-check", wrongCA])
                #expect(pikaWrong.status != 0 && pikaWrong.output.uppercased().contains("CERTIFICATE_VERIFY_FAILED"),
                        "pika over TLS with a wrong CA was not refused for the certificate: \(pikaWrong.output)")
                var psqlEnvironment = scope.environment
                psqlEnvironment["PGUSER"] = scope.environment["RECEIVABLESD_DB_USER"]!
                psqlEnvironment["PGPASSWORD"] = scope.environment["RECEIVABLESD_DB_PASSWORD"]!
                psqlEnvironment["PGDATABASE"] = scope.database
                psqlEnvironment["PGSSLMODE"] = "verify-full"
                psqlEnvironment["PGSSLROOTCERT"] = ca
                let psqlGood = try await scope.run(scope.environment["RECEIVABLESD_PG_BIN"]! + "/psql",
                                                   ["-X", "-At", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], environment: psqlEnvironment)
                #expect(psqlGood.status == 0 && psqlGood.output.trimmingCharacters(in: .whitespacesAndNewlines) == "t",
                        "psql sslmode=verify-full with the right CA: \(psqlGood.output)")

                // amqp.host is a DNS name of the certificate: rabbitmq-c 0.11 verifies host names against DNS
                // subjectAltNames and the CN only, never IP addresses (127.0.0.1 fails "SSL hostname verification failed").
                let good = [
                    "RECEIVABLESD_AMQP_HOST": "localhost",
                    "RECEIVABLESD_AMQP_TLS": "true", "RECEIVABLESD_AMQP_PORT": amqps, "RECEIVABLESD_AMQP_CACERT": ca,
                    "RECEIVABLESD_DB_SSLMODE": "verify-full", "RECEIVABLESD_DB_SSLROOTCERT": ca,
                ]

                // check-config shows the TLS settings
                let check = try await scope.cli(["check-config"], good)
                #expect(check.status == 0, "check-config with TLS settings failed:\n\(check.output)")
                #expect(check.output.contains("tls=true") && check.output.contains("sslmode=verify-full") && check.output.contains("ca=\(ca)"),
                        "check-config does not show the TLS settings:\n\(check.output)")

                // migrate: verified, then refused with the wrong CA
                let migrate = try await scope.cli(["migrate"], good)
                #expect(migrate.status == 0, "migrate over verified TLS failed:\n\(migrate.output)")
                var wrongDatabase = good
                wrongDatabase["RECEIVABLESD_DB_SSLROOTCERT"] = wrongCA
                let refused = try await scope.cli(["migrate"], wrongDatabase)
                #expect(refused.status != 0, "migrate with a wrong CA succeeded:\n\(refused.output)")
                #expect(refused.output.lowercased().contains("certificate verify failed"), "migrate's error does not name the certificate problem:\n\(refused.output)")

                // serve over verified TLS: ready, and a message published over TLS is applied
                let notify = try NotifyListener()
                let daemon = try await scope.startDaemon(good, notify: notify, timeout: .seconds(60))
                #expect(await notify.wait(timeout: .seconds(10)) { $0.contains { $0.hasPrefix("READY=1") } }, "no READY=1 over TLS: \(notify.messages)")
                let customer = "\(scope.tag)-C"
                let items: [[String: Any]] = [["role": "BILLING", "body": [
                    "specversion": "1.0", "id": "\(scope.tag)-cust", "source": "billing-ops", "type": "customer.upserted",
                    "time": "2026-01-05T10:00:00Z", "subject": customer, "data": ["customer_id": customer, "name": "TLS customer"],
                ] as [String: Any]], ["role": "BILLING", "body": [
                    "specversion": "1.0", "id": "\(scope.tag)-inv", "source": "billing-ops", "type": "invoice.issued",
                    "time": "2026-01-05T10:00:01Z", "subject": customer, "data": [
                        "invoice_id": "\(scope.tag)-I1", "customer_id": customer, "number": "\(scope.tag)-I1", "currency": "EUR",
                        "amount": "42.00", "issue_date": "2026-01-05", "due_date": "2026-02-05"],
                ] as [String: Any]]]
                let file = scope.directory + "/tls-customer.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: file))
                let published = try await scope.python(["publish", file], ["OPS_TLS_CA": ca])
                #expect(published.status == 0, "publishing over TLS failed: \(published.output)")
                let rows = try await scope.waitForCount("SELECT count(*) FROM invoices WHERE invoice_id = '\(scope.tag)-I1'", atLeast: 1, timeout: .seconds(30))
                #expect(rows == 1, "the message published over TLS was not applied:\n\(daemon.tail())")
                let plain = try await scope.count("""
                    SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                    WHERE a.datname = current_database() AND a.usename = '\(scope.environment["RECEIVABLESD_DB_USER"]!)' AND NOT s.ssl
                    """)
                let encrypted = try await scope.count("""
                    SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                    WHERE a.datname = current_database() AND a.usename = '\(scope.environment["RECEIVABLESD_DB_USER"]!)' AND s.ssl
                    """)
                #expect(plain == 0 && encrypted >= 1, "the daemon's database sessions: \(encrypted) with TLS, \(plain) without")
                var events: [[String: Any]] = []
                for _ in 0..<20 where !events.contains(where: { ($0["routing_key"] as? String) == "invoice.status_changed" }) {
                    events += try await scope.captured()
                    try await Task.sleep(for: .milliseconds(300))
                }
                #expect(events.contains { ($0["exchange"] as? String) == scope.eventsExchange && ($0["routing_key"] as? String) == "invoice.status_changed"
                            && (($0["body"] as? String)?.contains("\(scope.tag)-I1") ?? false) },
                        "no invoice.status_changed published over TLS (captured \(events.map { $0["routing_key"] ?? "?" }))")
                daemon.signal(SIGTERM)
                let status = await daemon.wait(timeout: .seconds(60))
                #expect(status == 0, "exit status on SIGTERM: \(status.map(String.init) ?? "still running")")

                // a wrong CA on either side: never ready, a certificate error in the log
                var wrongBroker = good
                wrongBroker["RECEIVABLESD_AMQP_CACERT"] = wrongCA
                for (side, overrides) in [("RabbitMQ", wrongBroker), ("PostgreSQL", wrongDatabase)] {
                    let notify = try NotifyListener()
                    let daemon = try scope.spawnDaemon(overrides, notify: notify)
                    let logged = await scope.waitForLog(daemon, "waiting for PostgreSQL and RabbitMQ", timeout: .seconds(30))
                    try await Task.sleep(for: .seconds(3))
                    let log = daemon.stdout.lowercased()
                    #expect(logged && (log.contains("certificate") || log.contains("verify")),
                            "\(side) with a wrong CA: no certificate/verification error logged:\n\(daemon.tail())")
                    #expect(notify.count("READY=1") == 0 && !daemon.stdout.contains("receivablesd ready"),
                            "\(side) with a wrong CA: the daemon became ready:\n\(daemon.tail())")
                    #expect(daemon.isRunning, "\(side) with a wrong CA: the daemon exited instead of retrying:\n\(daemon.tail())")
                    daemon.signal(SIGTERM)
                    let status = await daemon.wait(timeout: .seconds(30))
                    #expect(status == 0, "\(side) with a wrong CA: exit status on SIGTERM while waiting: \(status.map(String.init) ?? "still running")\n\(daemon.tail())")
                }
            }
        }
    }
}
