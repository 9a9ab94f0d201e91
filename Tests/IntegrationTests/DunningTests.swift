import Foundation
import PostgresClient
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Dunning and payment retries (SPEC section 4, docs/dunning.md), black-box: histories driven by
/// `receivablesd dunning tick --now` compared with an independent model, a stopped daemon's
/// catch-up, and several instances (daemon clocks and CLI ticks) over the same data.
extension BlackBoxTests {
    @Test("11. a 140-day dunning history ticked hourly equals the independent model; time zones, holds, retries, explain, summary")
    func dunningHistory() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s10_dunning_history.py", timeout: .seconds(540))
        expectClean(result, "scenario 10")
        let prefix = result.string("prefix") ?? "?"
        let db = try harness.connect()
        let kinds = result.object["kinds"] as? [String: Int] ?? [:]
        let reminders = kinds.filter { $0.key.hasPrefix("reminder.") || $0.key == "dunning.escalated" }.values.reduce(0, +)
        #expect(reminders > 0)
        #expect(try db.int("SELECT count(*) FROM dunning_reminders WHERE customer_id LIKE $1 || '%'", [.text(prefix)]) == Int64(reminders),
                "one claim row per reminder sent")
        #expect(try db.int("SELECT count(*) FROM payment_retries WHERE payment_id LIKE $1 || '%' AND state = 'requested'", [.text(prefix)])
                + (try db.int("SELECT count(*) FROM payment_retries WHERE payment_id LIKE $1 || '%' AND state IN ('superseded', 'cancelled') AND event_id IS NOT NULL", [.text(prefix)]))
                == Int64(kinds["payment.retry_requested"] ?? -1), "every requested retry has its row")
        #expect(try db.int("SELECT count(*) FROM payment_retries WHERE payment_id LIKE $1 || '%' AND state = 'scheduled'", [.text(prefix)]) == 0,
                "no retry left scheduled at the end of the history")
        try await expectVerifyPasses()
    }

    @Test("12. a daemon stopped for 20 simulated days catches up with one reminder per invoice")
    func dunningCatchUp() async throws {
        try await harness.ready()
        let state = harness.logDirectory + "/s11-state.pickle"
        let before = try await harness.runScript("s11_dunning_catchup.py", ["before", state])
        expectClean(before, "scenario 11 (before)")
        let status = try await harness.stopDaemon("primary")
        #expect(status == 0, "primary daemon exit status on SIGTERM")
        let during = try await harness.runScript("s11_dunning_catchup.py", ["during", state])
        expectClean(during, "scenario 11 (while the daemon is stopped)")
        try await harness.startDaemon("primary")
        let after = try await harness.runScript("s11_dunning_catchup.py", ["after", state], timeout: .seconds(240))
        expectClean(after, "scenario 11 (after)")
        let prefix = after.string("prefix") ?? "?"
        let db = try harness.connect()
        #expect(try db.int("""
            SELECT count(*) FROM dunning_steps_sent s JOIN dunning_reminders r USING (reminder_id)
            WHERE s.customer_id LIKE $1 || '%' AND r.pass_at = '2033-02-26T00:00:00Z'
            """, [.text(prefix)]) == Int64(after.int("catchup_invoices") ?? -1), "steps recorded in the catch-up pass: one per invoice")
    }

    @Test("13. two instances and concurrent dunning ticks send each reminder once; SIGHUP changes the policies, a broken file is refused")
    func dunningInstances() async throws {
        try await harness.ready()
        let policies = harness.logDirectory + "/s12-policies.yaml"
        let original = try String(contentsOfFile: TestEnvironment.repositoryRoot + "/config/dunning-policies.yaml", encoding: .utf8)
        try original.replacingOccurrences(of: "template: ", with: "template: v1-").write(toFile: policies, atomically: true, encoding: .utf8)
        let state = harness.logDirectory + "/s12-state.pickle"
        let setup = try await harness.runScript("s12_dunning_instances.py", ["setup", state, policies])
        expectClean(setup, "scenario 12 (setup)")

        let clocks = ["RECEIVABLESD_DUNNING_INTERVAL_SECONDS": "1", "RECEIVABLESD_POLICIES_FILE": policies]
        let names = ["dunning-a", "dunning-b"]
        // The race script starts its ticks while both daemons start and run their first passes.
        let race = try harness.spawnScript("s12_dunning_instances.py", ["race", state, policies])
        do {
            async let first: Void = harness.startDaemon(names[0], extraEnvironment: clocks)
            async let second: Void = harness.startDaemon(names[1], extraEnvironment: clocks)
            _ = try await (first, second)
        } catch {
            for name in names where harness.isRunning(name) { _ = try? await harness.stopDaemon(name) }  // cleanup; the start error is reported
            throw error
        }
        let raced = try await harness.finish(race, timeout: .seconds(240))
        expectClean(raced, "scenario 12 (race: \(raced.int("sent_by_cli") ?? -1) sent by CLI ticks, \(raced.int("sent_by_daemons") ?? -1) by the daemons)")

        try original.replacingOccurrences(of: "template: ", with: "template: v2-").write(toFile: policies, atomically: true, encoding: .utf8)
        try await hangUp(names, expecting: "configuration reloaded", occurrence: 1)
        let reload = try await harness.runScript("s12_dunning_instances.py", ["reload", state, policies])
        expectClean(reload, "scenario 12 (after a reload)")

        try "policies: [unclosed\n  default_policy: {\n".write(toFile: policies, atomically: true, encoding: .utf8)
        try await hangUp(names, expecting: "reload refused", occurrence: 1)
        let refused = try await harness.runScript("s12_dunning_instances.py", ["refused", state, policies])
        expectClean(refused, "scenario 12 (after a refused reload)")

        for name in names {
            #expect(try await harness.stopDaemon(name) == 0, "\(name) exit status on SIGTERM")
        }
        let prefix = raced.string("prefix") ?? "?"
        let db = try harness.connect()
        #expect(try db.int("SELECT count(*) FROM dunning_reminders WHERE customer_id LIKE $1 || '%'", [.text(prefix)])
                == Int64((raced.int("reminders") ?? -10) + 2), "claim rows: the race's reminders and the two after reloads")
    }

    /// SIGHUP to each daemon, then waits until each log shows `expecting` `occurrence` times.
    func hangUp(_ names: [String], expecting text: String, occurrence: Int) async throws {
        for name in names { harness.daemon(name)?.signal(SIGHUP) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        for name in names {
            while clock.now < deadline {
                if let child = harness.daemon(name), child.stdout.components(separatedBy: text).count - 1 >= occurrence { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let seen = (harness.daemon(name)?.stdout.components(separatedBy: text).count ?? 1) - 1
            #expect(seen >= occurrence, "\(name) did not log '\(text)' after SIGHUP:\n\(harness.daemonLogTail(name))")
        }
    }
}
