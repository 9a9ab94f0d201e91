import Foundation
import PostgresClient
import Synchronization
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 13: N instances give the books of one (SPEC section 7). One long book whose outcome
/// depends on each customer's order (blackbox/s13_book.py) is played at full speed into one
/// instance, then two, then three, into an instance killed with kill -9 mid-stream, into an
/// instance joined by a second mid-stream, and through an upgrade from the old single work queue.
/// Every run uses the same seed with a fresh id prefix; the books are compared customer by
/// customer with the single instance's: invoices, credit lots, the applications in the order they
/// were made, every event published about the customer in order (payment.confirmed contents
/// included), dead letters and held messages.
extension BlackBoxTests {
    static let bookCustomers = 50
    static let bookSeed = Int.random(in: 1...1_000_000)

    /// The single-instance books of the suite's seed (computed once, by the first test that needs them).
    static let reference = Mutex<[String: String]?>(nil)

    /// The single-instance books, playing the book into the primary alone when not known yet.
    func referenceBooks() async throws -> [String: String] {
        if let books = Self.reference.withLock({ $0 }) { return books }
        try await harness.ready()
        for name in ["secondary", "tertiary"] where harness.isRunning(name) { try await harness.stopDaemon(name) }
        try await waitUntilBalanced(instances: 1)
        let prefix = "it13r\(UInt32.random(in: 0...UInt32.max))"
        let played = try await playBook(prefix)
        let books = try await booksWhenDone(prefix, played)
        Self.reference.withLock { $0 = books }
        return books
    }

    @Test("13a. one long book: 2 and 3 instances give exactly the books of one, customer by customer; verify clean")
    func instancesGiveTheBooksOfOne() async throws {
        let one = try await referenceBooks()
        try await harness.startDaemon("secondary")
        do {
            try await waitUntilBalanced(instances: 2)
            let two = "it13b\(UInt32.random(in: 0...UInt32.max))"
            let booksTwo = try await booksWhenDone(two, try await playBook(two))
            expectSameBooks(booksTwo, one, "2 instances")
            expectBothApplied(two, ["primary", "secondary"])
            try expectExactlyOnce(two)

            try await harness.startDaemon("tertiary")
            try await waitUntilBalanced(instances: 3)
            let three = "it13c\(UInt32.random(in: 0...UInt32.max))"
            let booksThree = try await booksWhenDone(three, try await playBook(three))
            expectSameBooks(booksThree, one, "3 instances")
            expectBothApplied(three, ["primary", "secondary", "tertiary"])
            try expectExactlyOnce(three)
        } catch {
            for name in ["secondary", "tertiary"] where harness.isRunning(name) { _ = try? await harness.stopDaemon(name) }  // cleanup; the error is the one to report
            throw error
        }
        #expect(try await harness.stopDaemon("tertiary") == 0, "third instance exit status on SIGTERM")
        #expect(try await harness.stopDaemon("secondary") == 0, "second instance exit status on SIGTERM")
        try await expectVerifyPasses()
    }

    @Test("13b. kill -9 of the routing instance mid-stream: its router role and partitions move; nothing lost, doubled or reordered")
    func killNineMidStream() async throws {
        let one = try await referenceBooks()
        try await harness.startDaemon("secondary")
        try await harness.startDaemon("tertiary")
        do {
            try await waitUntilBalanced(instances: 3)
            let router = ["primary", "secondary", "tertiary"].first { harness.daemon($0)?.stdout.contains("intake router active") == true }
            #expect(router != nil, "no instance says it routes the intake queue")
            let victim = router ?? "primary"
            let prefix = "it13k\(UInt32.random(in: 0...UInt32.max))"
            let publisher = try harness.spawnScript("s13_book.py", ["publish", stateFile(prefix), prefix, String(Self.bookSeed), String(Self.bookCustomers)])
            let db = try harness.connect()
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(90)
            var applied: Int64 = 0
            while clock.now < deadline {
                applied = try db.int("SELECT count(*) FROM inbox WHERE event_id LIKE $1 || '%'", [.text(prefix)])
                if applied >= 60 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(applied >= 60, "the stream never got going (\(applied) applied)")
            try await harness.killDaemon(victim)
            let killedAt = applied
            let played = try await harness.finish(publisher, timeout: .seconds(120))
            expectClean(played, "scenario 13b publish")
            let books = try await booksWhenDone(prefix, played)
            #expect(killedAt < Int64(played.int("messages") ?? 0), "the kill did not land mid-stream")
            expectSameBooks(books, one, "kill -9 of \(victim)")
            let survivors = ["primary", "secondary", "tertiary"].filter { $0 != victim }
            #expect(survivors.contains { harness.daemon($0)?.stdout.contains("intake router active") == true },
                    "no surviving instance took over the intake router")
            try expectExactlyOnce(prefix)
        } catch {
            for name in ["secondary", "tertiary"] where harness.isRunning(name) { _ = try? await harness.stopDaemon(name) }  // cleanup
            throw error
        }
        for name in ["secondary", "tertiary"] where harness.isRunning(name) {
            #expect(try await harness.stopDaemon(name) == 0, "\(name) exit status on SIGTERM")
        }
        try await harness.ready()  // the primary again, if it was the one killed
        try await expectVerifyPasses()
    }

    @Test("13c. an instance joins mid-stream: partitions rebalance to it; the books are those of one instance")
    func joinMidStream() async throws {
        let one = try await referenceBooks()
        try await harness.ready()
        try await waitUntilBalanced(instances: 1)
        let prefix = "it13j\(UInt32.random(in: 0...UInt32.max))"
        let arguments = ["publish", stateFile(prefix), prefix, String(Self.bookSeed), String(Self.bookCustomers)]
        // The first part of the book is being applied by one instance when the second starts;
        // the rest is published once the partitions are shared, so the joiner surely gets some
        // (a fast single instance could otherwise finish the whole book before the hand-over).
        let publisher = try harness.spawnScript("s13_book.py", arguments + ["0", "150"])
        let db = try harness.connect()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(90)
        while clock.now < deadline, try db.int("SELECT count(*) FROM inbox WHERE event_id LIKE $1 || '%'", [.text(prefix)]) < 40 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await harness.startDaemon("secondary")
        do {
            let played = try await harness.finish(publisher, timeout: .seconds(120))
            expectClean(played, "scenario 13c publish, part 1")
            try await waitUntilBalanced(instances: 2)
            expectClean(try await harness.runScript("s13_book.py", arguments + ["150", "100000"], timeout: .seconds(120)), "scenario 13c publish, part 2")
            let books = try await booksWhenDone(prefix, played)
            expectSameBooks(books, one, "an instance joining mid-stream")
            let secondLog = harness.daemon("secondary")?.stdout ?? ""
            #expect(secondLog.contains("partition acquired"), "the joining instance took no partition:\n\(harness.daemonLogTail("secondary"))")
            #expect(harness.daemon("primary")?.stdout.contains("reason=\"assigned to another consumer\"") == true,
                    "the first instance handed no partition over")
            expectBothApplied(prefix, ["primary", "secondary"])
        } catch {
            _ = try? await harness.stopDaemon("secondary")  // cleanup; the error is the one to report
            throw error
        }
        #expect(try await harness.stopDaemon("secondary") == 0, "second instance exit status on SIGTERM")
    }
}

extension BlackBoxTests {
    @Test("13d. upgrade: the old single work queue, still consumed by an old instance, is drained into the partitions in order and deleted")
    func upgradeFromTheSingleWorkQueue() async throws {
        let one = try await referenceBooks()
        try await harness.ready()
        for name in ["secondary", "tertiary"] where harness.isRunning(name) { try await harness.stopDaemon(name) }
        #expect(try await harness.stopDaemon("primary") == 0, "primary exit status on SIGTERM")
        let setup = try await harness.runScript("s13_upgrade.py", ["legacy-setup"])
        expectClean(setup, "old work queue set-up")
        // The old release's traffic: the first part of the book lands in the old queue only.
        let prefix = "it13u\(UInt32.random(in: 0...UInt32.max))"
        let arguments = ["publish", stateFile(prefix), prefix, String(Self.bookSeed), String(Self.bookCustomers)]
        let first = try await harness.runScript("s13_book.py", arguments + ["0", "150"], timeout: .seconds(120))
        expectClean(first, "book part 1 into the old work queue")
        let before = try await harness.runScript("s13_upgrade.py", ["legacy-status"])
        #expect(before.object["messages"] as? Int == first.int("published"), "the old work queue holds the first part: \(before.line)")
        // An old instance still consumes it while the new release starts and the rest is published.
        let oldInstance = try harness.spawnScript("s13_upgrade.py", ["hold-legacy", "4"])
        try await Task.sleep(for: .milliseconds(500))
        try await harness.startDaemon("primary")
        let rest = try harness.spawnScript("s13_book.py", arguments + ["150", "100000"])
        expectClean(try await harness.finish(oldInstance, timeout: .seconds(60)), "old instance")
        expectClean(try await harness.finish(rest, timeout: .seconds(120)), "book part 2")
        let books = try await booksWhenDone(prefix, first)
        expectSameBooks(books, one, "an upgrade from the single work queue")
        let after = try await harness.runScript("s13_upgrade.py", ["legacy-status"])
        #expect(after.object["exists"] as? Bool == false, "the old work queue was not deleted: \(after.line)")
        let log = harness.daemon("primary")?.stdout ?? ""
        #expect(log.contains("an older receivablesd still consumes the old work queue"), "the router did not wait for the old instance")
        #expect(log.contains("old work queue drained into the partitions and deleted"), "no upgrade line in the log:\n\(harness.daemonLogTail("primary"))")
        try await expectVerifyPasses()
    }

    @Test("13e. a publisher cannot forge the router's headers to pass as another publisher")
    func routerHeadersCannotBeForged() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s13_forged_headers.py")
        expectClean(result, "scenario 13e")
        let db = try harness.connect()
        let payments = result.strings("payments")
        #expect(payments.count == 2)
        #expect(try db.int("SELECT count(*) FROM payments WHERE payment_id = ANY($1::text[])", [.text("{" + payments.joined(separator: ",") + "}")]) == 0,
                "a forged payment was booked")
    }
}

extension BlackBoxTests {
    func stateFile(_ prefix: String) -> String { harness.logDirectory + "/\(prefix)-book.json" }

    /// Publishes the whole book and returns the script's result (fails the test on a script error).
    func playBook(_ prefix: String) async throws -> ScenarioResult {
        let result = try await harness.runScript("s13_book.py", ["publish", stateFile(prefix), prefix, String(Self.bookSeed), String(Self.bookCustomers)],
                                                 timeout: .seconds(180))
        expectClean(result, "book \(prefix) (seed \(Self.bookSeed))")
        return result
    }

    /// Waits until every message of the book is settled (in the inbox or dead-lettered, none
    /// held, every event published), then reads the books.
    func booksWhenDone(_ prefix: String, _ played: ScenarioResult, timeout: Duration = .seconds(240)) async throws -> [String: String] {
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stateFile(prefix)))) as? [String: Any] ?? [:]
        let ids = state["event_ids"] as? [String] ?? []
        #expect(ids.count == played.int("messages"), "the state file lists \(ids.count) messages")
        let literal = "{" + ids.joined(separator: ",") + "}"
        let db = try harness.connect()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var settled: Int64 = 0, held: Int64 = 0, unpublished: Int64 = 0
        while clock.now < deadline {
            // Applied or rejected, and nothing of the run still held (a refund of a rejected
            // payment waits until hold_seconds, then it is dead-lettered unknown_reference).
            settled = try db.int("""
                SELECT count(*) FROM (SELECT event_id FROM inbox WHERE event_id = ANY($1::text[]) AND outcome <> 'held'
                                      UNION SELECT event_id FROM dead_letters WHERE event_id = ANY($1::text[])) AS settled
                """, [.text(literal)])
            held = try db.int("SELECT count(*) FROM held_messages WHERE event_id = ANY($1::text[])", [.text(literal)])
            unpublished = try db.int("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if settled >= Int64(ids.count) && held == 0 && unpublished == 0 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(settled == Int64(ids.count), "\(settled) of \(ids.count) messages of \(prefix) settled within \(timeout)")
        #expect(unpublished == 0, "\(unpublished) outbox rows not published")
        return try books(prefix)
    }

    /// Each customer's books as text with the run's prefix replaced, so runs compare directly.
    func books(_ prefix: String) throws -> [String: String] {
        let db = try harness.connect()
        var books: [String: [String]] = [:]
        func add(_ customer: String?, _ line: String) {
            guard let customer else { return }
            books[customer.replacingOccurrences(of: prefix, with: "P"), default: []].append(line.replacingOccurrences(of: prefix, with: "P"))
        }
        let like = [PostgresValue.text(prefix)]
        for row in try db.query("SELECT customer_id, name FROM customers WHERE customer_id LIKE $1 || '%' ORDER BY customer_id", like).all {
            add(row.string("customer_id"), "customer \(row.string("name") ?? "-")")
        }
        for row in try db.query("""
            SELECT customer_id, invoice_id, currency, amount_minor, balance_minor, written_off_minor, status FROM invoices
            WHERE customer_id LIKE $1 || '%' ORDER BY invoice_id
            """, like).all {
            add(row.string("customer_id"), "invoice \(row.values.dropFirst().map { $0 ?? "-" }.joined(separator: " "))")
        }
        for row in try db.query("""
            SELECT customer_id, currency, origin_kind, origin_id, original_minor, remaining_minor, reserved_for_invoice FROM credit_lots
            WHERE customer_id LIKE $1 || '%' ORDER BY lot_id
            """, like).all {
            add(row.string("customer_id"), "credit \(row.values.dropFirst().map { $0 ?? "-" }.joined(separator: " "))")
        }
        for row in try db.query("""
            SELECT customer_id, invoice_id, origin_kind, origin_id, amount_minor, unwound_minor FROM applications
            WHERE customer_id LIKE $1 || '%' ORDER BY application_id
            """, like).all {
            add(row.string("customer_id"), "applied \(row.values.dropFirst().map { $0 ?? "-" }.joined(separator: " "))")
        }
        // Every event about the customer, in publishing order, without what names the run
        // (hashed ids) or the clock.
        for row in try db.query("""
            SELECT convert_from(body, 'UTF8') AS body FROM outbox
            WHERE exchange = $2 AND position(convert_to($1, 'UTF8') in body) > 0 ORDER BY seq
            """, [.text(prefix), .text(harness.eventsExchange)]).all {
            guard let text = row.string("body"), let event = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  var data = event["data"] as? [String: Any] else { continue }
            data.removeValue(forKey: "entry_id")
            data.removeValue(forKey: "posted_at")
            let canonical = try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys])
            add(event["subject"] as? String ?? data["customer_id"] as? String, "event \(event["type"] as? String ?? "?") \(String(decoding: canonical, as: UTF8.self))")
        }
        for row in try db.query("""
            SELECT reason, type, convert_from(body, 'UTF8') AS body FROM dead_letters
            WHERE position(convert_to($1, 'UTF8') in body) > 0 ORDER BY dead_letter_id
            """, like).all {
            let body = row.string("body") ?? ""
            let customer = body.range(of: "\(prefix)-C[0-9]+", options: .regularExpression).map { String(body[$0]) }
            add(customer ?? "\(prefix)-unknown", "dead-letter \(row.string("reason") ?? "?") \(row.string("type") ?? "?")")
        }
        #expect(try db.int("SELECT count(*) FROM held_messages WHERE position(convert_to($1, 'UTF8') in body) > 0", like) == 0,
                "messages of \(prefix) still held")
        return books.mapValues { $0.joined(separator: "\n") }
    }

    func expectSameBooks(_ actual: [String: String], _ expected: [String: String], _ what: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(expected.count >= Self.bookCustomers, "the reference has books for \(expected.count) customers", sourceLocation: sourceLocation)
        let differing = expected.keys.sorted().filter { actual[$0] != expected[$0] }
        let report = differing.prefix(2).map { customer in
            "customer \(customer)\n--- one instance:\n\(expected[customer] ?? "(none)")\n--- \(what):\n\(actual[customer] ?? "(none)")"
        }.joined(separator: "\n")
        #expect(differing.isEmpty && actual.count == expected.count,
                "\(what): \(differing.count) of \(expected.count) customers differ from one instance (seed \(Self.bookSeed)):\n\(report)",
                sourceLocation: sourceLocation)
    }

    /// Each instance applied messages of the run (the work was shared, not done by one).
    func expectBothApplied(_ prefix: String, _ names: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for name in names {
            let applied = (harness.daemon(name)?.stdout ?? "").split(separator: "\n").filter { $0.contains("message applied") && $0.contains(prefix) }.count
            #expect(applied > 0, "instance \(name) applied no message of \(prefix)", sourceLocation: sourceLocation)
        }
    }

    /// Each booked payment confirmed exactly once, and every message of the run in the inbox
    /// once (its primary key) or dead-lettered as in the reference (the books compare those).
    func expectExactlyOnce(_ prefix: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let db = try harness.connect()
        let booked = try db.int("SELECT count(*) FROM payments WHERE payment_id LIKE $1 || '%'", [.text(prefix)])
        #expect(booked > 0, "no payment of \(prefix) booked", sourceLocation: sourceLocation)
        let confirmations = try db.query("""
            SELECT convert_from(body, 'UTF8')::jsonb -> 'data' ->> 'payment_id' AS payment, count(*) AS n FROM outbox
            WHERE type = 'payment.confirmed' AND exchange = $2 AND position(convert_to($1, 'UTF8') in body) > 0 GROUP BY 1
            """, [.text(prefix), .text(harness.eventsExchange)]).all
        #expect(Int64(confirmations.count) == booked, "\(confirmations.count) payments confirmed, \(booked) booked", sourceLocation: sourceLocation)
        let twice = confirmations.filter { $0.requiredInt64("n") != 1 }.compactMap { $0.string("payment") }
        #expect(twice.isEmpty, "payments confirmed more than once: \(twice)", sourceLocation: sourceLocation)
    }

    /// Waits until `instances` instances' consumer threads are live and share the partitions
    /// evenly (each holds ⌊P/M⌋ or ⌈P/M⌉ and every partition is held).
    /// Every instance runs the default `consumers: 2`, and each thread is a member.
    func waitUntilBalanced(instances: Int, timeout: Duration = .seconds(60)) async throws {
        let members = instances * 2
        let db = try harness.connect()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let total = harness.partitions + 1
        var last = ""
        while clock.now < deadline {
            let rows = try db.query("""
                SELECT member_id, cardinality(holds) AS held FROM partition_members
                WHERE heartbeat_at > now() - interval '2 seconds' ORDER BY member_id
                """).all
            let held = rows.map { Int($0.requiredInt64("held")) }
            last = rows.map { "\($0.requiredString("member_id"))=\($0.requiredInt64("held"))" }.joined(separator: " ")
            if rows.count == members, held.reduce(0, +) == total, (held.max() ?? 0) - (held.min() ?? 0) <= 1 { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("partitions not balanced over \(instances) instance(s) (\(members) threads) within \(timeout): \(last)")
    }
}
