import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Type=notify, watchdog, reload and stop, through a NOTIFY_SOCKET the test owns (the protocol
/// systemd uses; systemd itself is never booted on the host).
extension DaemonOperationsTests {
    @Suite struct SystemdNotify {
        /// READY=1 is withheld while PostgreSQL is down, sent once it is up; WATCHDOG=1 pings
        /// follow (WATCHDOG_USEC without WATCHDOG_PID, which sd_watchdog_enabled accepts); SIGTERM
        /// sends STOPPING=1 and exits 0.
        @Test func readyOnlyOncePostgresIsUpThenWatchdogPings() async throws {
            try await withScope("sdn") { scope in
                let notify = try NotifyListener()
                var started: Child?
                try await withPostgresStopped(scope) {
                    let daemon = try scope.spawnDaemon(["WATCHDOG_USEC": "2000000"], notify: notify)
                    started = daemon
                    let waiting = await scope.waitForLog(daemon, "waiting for PostgreSQL and RabbitMQ", timeout: .seconds(60))
                    #expect(waiting, "no 'waiting for PostgreSQL and RabbitMQ' log line while PostgreSQL is down:\n\(daemon.tail())")
                    try await Task.sleep(for: .seconds(3))
                    #expect(daemon.isRunning, "the daemon exited while PostgreSQL was down:\n\(daemon.tail())")
                    #expect(notify.count("READY=1") == 0, "READY=1 sent while PostgreSQL is down: \(notify.messages)")
                    #expect(notify.count("WATCHDOG=1") == 0, "watchdog pings before ready: \(notify.messages)")
                    #expect(notify.messages.contains { $0.contains("STATUS=waiting for dependencies") },
                            "no STATUS=waiting… while PostgreSQL is down: \(notify.messages)")
                }
                let daemon = try #require(started)
                let ready = await notify.wait(timeout: .seconds(60)) { $0.contains { $0.split(separator: "\n").contains("READY=1") } }
                #expect(ready, "READY=1 not sent within 60 s of PostgreSQL coming back:\n\(daemon.tail())\nnotify: \(notify.messages)")
                #expect(daemon.stdout.contains("receivablesd ready"), "no ready log line:\n\(daemon.tail())")

                // Watchdog: WATCHDOG_USEC=2 s → a ping about every second while healthy.
                let before = notify.count("WATCHDOG=1")
                try await Task.sleep(for: .milliseconds(4_500))
                let pings = notify.count("WATCHDOG=1") - before
                #expect(pings >= 3, "expected ≥ 3 WATCHDOG=1 in 4.5 s with WATCHDOG_USEC=2000000, got \(pings): \(notify.messages.suffix(8))")
                let times = notify.timedMessages.filter { $0.text.split(separator: "\n").contains("WATCHDOG=1") }.map(\.at)
                if times.count >= 2 {
                    let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
                    #expect(gaps.allSatisfy { $0 < .milliseconds(2_000) }, "a watchdog gap reached WATCHDOG_USEC: \(gaps)")
                }

                daemon.signal(SIGTERM)
                let status = await daemon.wait(timeout: .seconds(60))
                #expect(status == 0, "exit status on SIGTERM: \(status.map(String.init) ?? "still running")\n\(daemon.tail())")
                #expect(notify.count("STOPPING=1") == 1, "STOPPING=1 not sent exactly once: \(notify.messages)")
            }
        }

        /// SIGHUP re-reads the dunning policies: a valid change is applied, a broken file (unknown
        /// event, then a YAML syntax error) is refused with "reload refused", the daemon keeps
        /// running; every SIGHUP is framed by RELOADING=1 and READY=1.
        @Test func reloadAppliesValidPoliciesAndRefusesBrokenOnes() async throws {
            try await withScope("rld") { scope in
                let original = try String(contentsOfFile: OpsEnvironment.repositoryRoot + "/config/dunning-policies.yaml", encoding: .utf8)
                let file = scope.directory + "/dunning-policies.yaml"
                try original.write(toFile: file, atomically: true, encoding: .utf8)
                let notify = try NotifyListener()
                let daemon = try await scope.startDaemon(["RECEIVABLESD_POLICIES_FILE": file], notify: notify)
                defer { daemon.signal(SIGKILL) }
                #expect(await notify.wait(timeout: .seconds(10)) { $0.contains { $0.hasPrefix("READY=1") } }, "no READY=1: \(notify.messages)")
                let readyBefore = notify.count("READY=1")

                func hangUp(expectingLog text: String, occurrence: Int) async -> Bool {
                    daemon.signal(SIGHUP)
                    let clock = ContinuousClock()
                    let deadline = clock.now + .seconds(20)
                    while clock.now < deadline {
                        if daemon.stdout.components(separatedBy: text).count - 1 >= occurrence { return true }
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    return false
                }

                // 1. a valid change: a new policy
                let extra = original + """

                  opsextra:
                    grace_days: 2
                    steps:
                      - { offset_days: 5, event: reminder.overdue, channel: sms, template: ops-extra }

                """
                try extra.write(toFile: file, atomically: true, encoding: .utf8)
                #expect(await hangUp(expectingLog: "configuration reloaded", occurrence: 1), "valid policies not reloaded:\n\(daemon.tail())")
                let reloadedLine = daemon.stdout.split(separator: "\n").last { $0.contains("configuration reloaded") } ?? ""
                #expect(reloadedLine.contains("opsextra"), "the reloaded policies do not list the new one: \(reloadedLine)")

                // 2. an unknown event: refused
                try extra.replacingOccurrences(of: "event: reminder.due,", with: "event: reminder.bogus,")
                    .write(toFile: file, atomically: true, encoding: .utf8)
                #expect(await hangUp(expectingLog: "reload refused", occurrence: 1), "broken policies (unknown event) not refused:\n\(daemon.tail())")
                let refusedLine = daemon.stdout.split(separator: "\n").last { $0.contains("reload refused") } ?? ""
                #expect(refusedLine.contains("reminder.bogus"), "the refusal does not name the mistake: \(refusedLine)")

                // 3. not YAML at all: refused
                try "policies: [unclosed\n  default_policy: {\n".write(toFile: file, atomically: true, encoding: .utf8)
                #expect(await hangUp(expectingLog: "reload refused", occurrence: 2), "broken policies (syntax) not refused:\n\(daemon.tail())")

                #expect(daemon.isRunning, "the daemon exited after a refused reload:\n\(daemon.tail())")
                #expect(await notify.wait(timeout: .seconds(5)) { _ in notify.count("RELOADING=1") == 3 && notify.count("READY=1") == readyBefore + 3 },
                        "expected 3 × RELOADING=1 and 3 more READY=1: \(notify.messages)")
                // RELOADING=1 always precedes the READY=1 that ends it
                let sequence = notify.messages.compactMap { m -> String? in
                    let lines = m.split(separator: "\n")
                    if lines.contains("RELOADING=1") { return "R" }
                    if lines.contains("READY=1") { return "Y" }
                    return nil
                }.joined()
                #expect(sequence.hasSuffix("RYRYRY"), "notify order (R=RELOADING, Y=READY): \(sequence)")
                #expect(!daemon.stdout.contains("level=critical"), "critical log lines:\n\(daemon.tail())")

                daemon.signal(SIGTERM)
                let status = await daemon.wait(timeout: .seconds(60))
                #expect(status == 0, "exit status on SIGTERM: \(status.map(String.init) ?? "still running")")
            }
        }

        /// SIGTERM in the middle of a burst (published by an independent client): exit 0 with
        /// STOPPING=1; a second instance finishes the queue; every message applied exactly once
        /// (rows, inbox, journal) and every outbox event published exactly once.
        @Test func sigtermDuringBurstLosesAndDoublesNothing() async throws {
            try await withScope("trm") { scope in
                let prefix = scope.tag
                let customer = "\(prefix)-C"
                let invoices = 300, payments = 60
                let items: [[String: Any]] = [["role": "BILLING", "body": [
                    "specversion": "1.0", "id": "\(prefix)-cust", "source": "billing-ops", "type": "customer.upserted",
                    "time": "2026-01-05T10:00:00Z", "subject": customer, "data": ["customer_id": customer, "name": "Ops \(prefix)"],
                ] as [String: Any]]]
                let itemsFile = scope.directory + "/customer.json"
                try JSONSerialization.data(withJSONObject: items).write(to: URL(fileURLWithPath: itemsFile))

                let notify = try NotifyListener()
                let first = try await scope.startDaemon(["RECEIVABLESD_BATCH_SIZE": "16", "RECEIVABLESD_PREFETCH": "32"], notify: notify)
                let published = try await scope.python(["publish", itemsFile])
                #expect(published.status == 0, "publishing the customer failed: \(published.output)")
                #expect(try await scope.waitForCount("SELECT count(*) FROM customers WHERE customer_id = '\(customer)'", atLeast: 1, timeout: .seconds(30)) == 1)

                let burst = try scope.spawnPython(["burst", prefix, customer, String(invoices), String(payments)])
                let invoiceCount = "SELECT count(*) FROM invoices WHERE invoice_id LIKE '\(prefix)-I%'"
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(60)
                var atSignal = 0
                while clock.now < deadline {
                    atSignal = try await scope.count(invoiceCount)
                    if atSignal >= 15 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                first.signal(SIGTERM)
                let status = await first.wait(timeout: .seconds(60))
                #expect(status == 0, "first daemon's exit status on SIGTERM: \(status.map(String.init) ?? "still running")\n\(first.tail())")
                #expect(notify.count("STOPPING=1") == 1, "STOPPING=1 not sent exactly once: \(notify.messages)")
                let afterStop = try await scope.count(invoiceCount)
                #expect(afterStop < invoices, "the burst was fully applied before SIGTERM landed (\(afterStop)): the test proves nothing")
                #expect(first.stdout.contains("receivablesd stopped cleanly"), "no clean-stop log line:\n\(first.tail())")

                let burstStatus = await burst.wait(timeout: .seconds(120))
                #expect(burstStatus == 0, "the burst publisher failed:\n\(burst.tail())")

                let second = try await scope.startDaemon()
                let applied = try await scope.waitForCount(invoiceCount, atLeast: invoices, timeout: .seconds(180))
                let paymentCount = try await scope.waitForCount("SELECT count(*) FROM payments WHERE payment_id LIKE '\(prefix)-P%'",
                                                                atLeast: payments, timeout: .seconds(60))
                _ = try await scope.waitForCount("SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM outbox WHERE published_at IS NULL",
                                                 atLeast: 1, timeout: .seconds(60))
                try await Task.sleep(for: .seconds(2))
                second.signal(SIGTERM)
                let secondStatus = await second.wait(timeout: .seconds(60))
                #expect(secondStatus == 0, "second daemon's exit status: \(secondStatus.map(String.init) ?? "still running")\n\(second.tail())")

                // rows: each exactly once
                #expect(applied == invoices, "invoices applied: \(applied) of \(invoices) (after SIGTERM at \(atSignal))")
                #expect(paymentCount == payments, "payments applied: \(paymentCount) of \(payments)")
                // (the private queue is bound to the shared ar.inbound: other suites' traffic arrives too; only ours is counted)
                let inbox = try await scope.psql("SELECT outcome || ':' || count(*) FROM inbox WHERE source IN ('billing-ops', 'gateway-ops') GROUP BY outcome ORDER BY 1")
                #expect(inbox.output.trimmingCharacters(in: .whitespacesAndNewlines) == "applied:\(1 + invoices + payments)",
                        "inbox outcomes: \(inbox.output)")
                let doubledJournal = try await scope.count("""
                    SELECT count(*) FROM (SELECT reference FROM journal_entries WHERE reference LIKE '\(prefix)-I%' AND kind = (
                        SELECT kind FROM journal_entries WHERE reference = '\(prefix)-I0' ORDER BY posted_at LIMIT 1)
                    GROUP BY reference HAVING count(*) <> 1) x
                    """)
                #expect(doubledJournal == 0, "\(doubledJournal) invoices have more than one issuing journal entry")
                let paidTotal = try await scope.count("SELECT COALESCE(sum(amount_minor - balance_minor), 0) FROM invoices WHERE customer_id = '\(customer)'")
                #expect(paidTotal == payments * 700, "money applied to invoices: \(paidTotal), expected \(payments * 700)")
                let amountTotal = try await scope.count("SELECT COALESCE(sum(amount_minor), 0) FROM invoices WHERE customer_id = '\(customer)'")
                #expect(amountTotal == (0..<invoices).reduce(0) { $0 + 10_000 + $1 }, "invoice amounts differ: \(amountTotal)")

                // events: every outbox row published once, nothing else, no duplicate ids
                let events = try await scope.captured()
                let fromEvents = events.filter { ($0["exchange"] as? String) == scope.eventsExchange }
                let deadLetters = events.filter { ($0["exchange"] as? String) == scope.deadLetterExchange && (($0["body"] as? String)?.contains(prefix) ?? false) }
                #expect(deadLetters.isEmpty, "dead letters: \(deadLetters.prefix(3))")
                let outboxRows = try await scope.count("SELECT count(*) FROM outbox WHERE exchange = '\(scope.eventsExchange)'")
                let ids = fromEvents.compactMap { event -> String? in
                    guard let body = event["body"] as? String,
                          let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return nil }
                    return json["id"] as? String
                }
                #expect(ids.count == fromEvents.count, "events without an id")
                #expect(Set(ids).count == ids.count, "\(ids.count - Set(ids).count) events published twice")
                #expect(fromEvents.count == outboxRows, "captured \(fromEvents.count) events, the outbox holds \(outboxRows)")
                let issued = fromEvents.filter { ($0["routing_key"] as? String) == "invoice.status_changed" }.compactMap { event -> String? in
                    guard let body = event["body"] as? String, let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                          let data = json["data"] as? [String: Any], data["from"] is NSNull || data["from"] == nil else { return nil }
                    return data["invoice_id"] as? String
                }.filter { $0.hasPrefix("\(prefix)-I") }
                #expect(issued.count == invoices && Set(issued).count == invoices,
                        "invoice.status_changed from null: \(issued.count) events for \(Set(issued).count) invoices (expected \(invoices) each once)")
                let confirmed = fromEvents.filter { ($0["routing_key"] as? String) == "payment.confirmed" && (($0["body"] as? String)?.contains("\(prefix)-P") ?? false) }.count
                #expect(confirmed == payments, "payment.confirmed events: \(confirmed), expected \(payments)")
            }
        }
    }
}
