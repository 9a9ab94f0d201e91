import Foundation
import PostgresClient
import Synchronization
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Why the integration suite cannot run or a step of it failed; the message says what to do.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The environment `make test` (scripts/services.sh) provides. A missing variable is a FAILURE
/// with a clear message (the services are not running), never a skip.
enum TestEnvironment {
    static let required = [
        "RECEIVABLESD_BIN", "RECEIVABLESD_PYTHON", "RECEIVABLESD_SERVICES",
        "RECEIVABLESD_DB_HOST", "RECEIVABLESD_DB_PORT", "RECEIVABLESD_DB_NAME", "RECEIVABLESD_DB_USER", "RECEIVABLESD_DB_PASSWORD",
        "RECEIVABLESD_AMQP_HOST", "RECEIVABLESD_AMQP_PORT", "RECEIVABLESD_AMQP_USER",
        "RECEIVABLESD_TEST_AMQP_ADMIN_USER", "RECEIVABLESD_TEST_AMQP_ADMIN_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_BILLING_USER", "RECEIVABLESD_TEST_AMQP_BILLING_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_GATEWAY_USER", "RECEIVABLESD_TEST_AMQP_GATEWAY_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_PORTAL_USER", "RECEIVABLESD_TEST_AMQP_PORTAL_PASSWORD",
    ]

    static func load() throws -> [String: String] {
        let environment = ProcessInfo.processInfo.environment
        let missing = required.filter { (environment[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw HarnessError("""
                IntegrationTests need the private services and the daemon binary; missing: \(missing.joined(separator: ", ")). \
                Run `make test`, or `bash scripts/services.sh start && source .local/env.sh` and set RECEIVABLESD_BIN.
                """)
        }
        if environment["RECEIVABLESD_AMQP_PASSWORD"] == nil && environment["RECEIVABLESD_CREDENTIALS_DIRECTORY"] == nil {
            throw HarnessError("neither RECEIVABLESD_AMQP_PASSWORD nor RECEIVABLESD_CREDENTIALS_DIRECTORY is set: source .local/env.sh")
        }
        return environment
    }

    /// The checkout, found from this file's path (Tests/IntegrationTests/Support.swift).
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var blackboxDirectory: String { repositoryRoot + "/Tests/IntegrationTests/blackbox" }
}


/// One line of JSON a scenario script printed, with typed accessors.
struct ScenarioResult: Sendable {
    let line: String
    let stderr: String
    let exitStatus: Int32

    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }
    var failures: [String] { object["failures"] as? [String] ?? ["the result line has no failures list: \(line)"] }
    func string(_ key: String) -> String? { object[key] as? String }
    func array(_ key: String) -> [[String: Any]] { object[key] as? [[String: Any]] ?? [] }
    func strings(_ key: String) -> [String] { object[key] as? [String] ?? [] }
    func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
    var failureSummary: String { failures.joined(separator: "\n  ") + (stderr.isEmpty ? "" : "\nstderr:\n" + stderr) }
}

/// Owns the daemon processes, the private database and broker names of one suite run, and runs
/// the black-box scripts and the CLI with matching settings.
///
/// Isolation: another engineer's daemon may consume the shared `ar.inbound.work` queue at any
/// moment. Our daemons therefore consume a private work queue (also bound to `ar.inbound`), write
/// to a private database and publish to private events/dead-letter exchanges with a private
/// CloudEvents `source`, so nothing another consumer does can reach our assertions; and every
/// scenario still uses fresh uuid-prefixed ids.
final class Harness: Sendable {
    static let shared = Harness()

    let tag = "it\(getpid())"
    var database: String { "receivablesd_\(tag)" }
    var workQueue: String { "ar.\(tag).work" }
    var intakeQueue: String { "ar.\(tag).intake" }
    var partitionExchange: String { "ar.\(tag).partitions" }
    var partitionQueuePrefix: String { "ar.\(tag).part" }
    let partitions = 16
    /// Every partition queue of the run (customer partitions and the bank partition).
    var partitionQueues: [String] { (0..<partitions).map { partitionQueuePrefix + "." + ($0 < 10 ? "0\($0)" : "\($0)") } + [partitionQueuePrefix + ".bank"] }
    var eventsExchange: String { "ar.\(tag).events" }
    var deadLetterExchange: String { "ar.\(tag).dead-letter" }
    var eventSource: String { "receivablesd-\(tag)" }
    let holdSeconds = 6
    let logDirectory: String

    private struct State {
        var environment: [String: String]?
        var setupError: String?
        var daemons: [String: ChildProcess] = [:]
        var starts = 0
        var isSetUp = false
    }
    private let state = Mutex(State())

    private init() {
        logDirectory = NSTemporaryDirectory() + "receivablesd-\(tag)"
        try? FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
    }

    // MARK: environment

    /// The settings for our daemons, CLI runs and scripts.
    func environment() throws -> [String: String] {
        if let error = state.withLock({ $0.setupError }) { throw HarnessError(error) }
        var environment = try TestEnvironment.load()
        environment["RECEIVABLESD_DB_NAME"] = database
        environment["RECEIVABLESD_WORK_QUEUE"] = workQueue
        environment["RECEIVABLESD_INTAKE_QUEUE"] = intakeQueue
        environment["RECEIVABLESD_PARTITION_EXCHANGE"] = partitionExchange
        environment["RECEIVABLESD_PARTITION_QUEUE_PREFIX"] = partitionQueuePrefix
        environment["RECEIVABLESD_PARTITIONS"] = String(partitions)
        // A killed instance's partitions move after the lease: short, so the tests are quick.
        environment["RECEIVABLESD_PARTITION_LEASE_SECONDS"] = "2"
        environment["RECEIVABLESD_EVENTS_EXCHANGE"] = eventsExchange
        environment["RECEIVABLESD_DEAD_LETTER_EXCHANGE"] = deadLetterExchange
        environment["RECEIVABLESD_DEAD_LETTER_QUEUE"] = deadLetterExchange
        environment["RECEIVABLESD_EVENT_SOURCE"] = eventSource
        environment["RECEIVABLESD_HOLD_SECONDS"] = String(holdSeconds)
        environment["RECEIVABLESD_HOUSEKEEPING_SECONDS"] = "1"
        environment["RECEIVABLESD_MAX_BODY_BYTES"] = "65536"
        environment["RECEIVABLESD_LOG_LEVEL"] = "info"
        // No dunning passes on the daemons' own clock: scenarios drive time with `dunning tick --now`.
        environment["RECEIVABLESD_DUNNING_INTERVAL_SECONDS"] = "0"
        environment["RECEIVABLESD_POLICIES_FILE"] = TestEnvironment.repositoryRoot + "/config/dunning-policies.yaml"
        // Two instances (scenario 8) and another engineer's daemon must not fight over a port.
        environment["RECEIVABLESD_HTTP_PORT"] = ""
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.removeValue(forKey: "WATCHDOG_USEC")
        environment["IT_EVENTS_EXCHANGE"] = eventsExchange
        environment["IT_DEAD_LETTER_EXCHANGE"] = deadLetterExchange
        environment["IT_EVENT_SOURCE"] = eventSource
        environment["IT_TAG"] = tag
        environment["IT_INTAKE_QUEUE"] = intakeQueue
        environment["IT_WORK_QUEUE"] = workQueue
        environment["IT_PARTITION_QUEUES"] = partitionQueues.joined(separator: ",")
        environment["IT_HOLD_SECONDS"] = String(holdSeconds)
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return environment
    }

    /// A superuser-free connection as the daemon's role, to `database` (default: our private one).
    func connect(database name: String? = nil) throws -> PostgresConnection {
        let environment = try TestEnvironment.load()
        let configuration = PostgresConfiguration(
            host: environment["RECEIVABLESD_DB_HOST"]!, port: Int(environment["RECEIVABLESD_DB_PORT"]!) ?? 5432,
            database: name ?? database, user: environment["RECEIVABLESD_DB_USER"]!, password: environment["RECEIVABLESD_DB_PASSWORD"],
            applicationName: "receivablesd-integration-tests")
        do { return try PostgresConnection(configuration) } catch {
            throw HarnessError("cannot connect to PostgreSQL database \(name ?? database): \(error)")
        }
    }

    // MARK: suite lifecycle

    /// Creates the private database (dropping leftovers of dead runs) and starts the primary daemon.
    func setUp() async {
        do {
            _ = try TestEnvironment.load()
            let admin = try connect(database: try TestEnvironment.load()["RECEIVABLESD_DB_NAME"]!)
            for row in try admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'receivablesd\\_it%'").all {
                let name = row.requiredString("datname")
                if let pid = Int32(name.dropFirst("receivablesd_it".count)), pid != getpid(), kill(pid, 0) == 0 { continue }
                _ = try admin.query("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)")
            }
            _ = try admin.query("CREATE DATABASE \"\(database)\"")
            try await startDaemon("primary")
        } catch {
            state.withLock { $0.setupError = "integration suite setup failed: \(error)" }
        }
        state.withLock { $0.isSetUp = true }
    }

    /// SIGTERM to every daemon (each must exit 0), then removes the private broker objects and
    /// the private database (kept when IT_KEEP=1, for a post-mortem).
    func tearDown() async {
        for name in state.withLock({ Array($0.daemons.keys) }) {
            do {
                let status = try await stopDaemon(name)
                if status != 0 { Issue.record("daemon \(name) exited \(status) on SIGTERM (expected 0)") }
            } catch {
                Issue.record("stopping daemon \(name): \(error)")
            }
        }
        guard let environment = try? environment() else { return }
        if environment["IT_KEEP"] == "1" { return }
        if let result = try? await runScript("topology.py", ["cleanup", workQueue, deadLetterExchange, eventsExchange, intakeQueue, partitionExchange]
                                             + partitionQueues, timeout: .seconds(60)),
           result.exitStatus != 0 {
            Issue.record("broker cleanup failed: \(result.stderr)")
        }
        if let admin = try? connect(database: environment["RECEIVABLESD_DB_NAME"]!) {
            _ = try? admin.query("DROP DATABASE IF EXISTS \"\(database)\" WITH (FORCE)")
        }
    }

    /// Every test calls this first: it fails (never skips) when setup failed, and restarts the
    /// primary daemon if a previous test left it stopped.
    func ready() async throws {
        if let error = state.withLock({ $0.setupError }) { throw HarnessError(error) }
        if !isRunning("primary") { try await startDaemon("primary") }
    }

    // MARK: daemons

    func daemon(_ name: String) -> ChildProcess? { state.withLock { $0.daemons[name] } }
    func isRunning(_ name: String) -> Bool { daemon(name)?.isRunning ?? false }

    /// Starts `receivablesd serve` and waits for `msg="receivablesd ready"` in its log.
    func startDaemon(_ name: String, timeout: Duration = .seconds(90), extraEnvironment: [String: String] = [:]) async throws {
        let environment = try environment().merging(extraEnvironment) { _, extra in extra }
        let number = state.withLock { $0.starts += 1; return $0.starts }
        let child = try ChildProcess(label: "daemon-\(name)-\(number)", executable: environment["RECEIVABLESD_BIN"]!, arguments: ["serve"],
                                     environment: environment, logDirectory: logDirectory)
        state.withLock { $0.daemons[name] = child }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if child.stdout.contains("msg=\"receivablesd ready\"") || child.stdout.contains("receivablesd ready") { return }
            if let status = child.poll() {
                throw HarnessError("daemon \(name) exited \(status) before it was ready:\n\(child.tail(child.stdout + child.stderr))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        child.signal(SIGKILL)
        _ = await child.wait(timeout: .seconds(5))
        throw HarnessError("daemon \(name) not ready within \(timeout):\n\(child.tail(child.stdout + child.stderr))")
    }

    /// SIGTERM and wait for the drain; returns the exit status.
    @discardableResult
    func stopDaemon(_ name: String, timeout: Duration = .seconds(60)) async throws -> Int32 {
        guard let child = daemon(name) else { throw HarnessError("no daemon \(name)") }
        defer { state.withLock { _ = $0.daemons.removeValue(forKey: name) } }
        if let status = child.poll() { throw HarnessError("daemon \(name) had already exited with \(status):\n\(child.tail(child.stdout + child.stderr))") }
        child.signal(SIGTERM)
        guard let status = await child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            _ = await child.wait(timeout: .seconds(5))
            throw HarnessError("daemon \(name) did not exit within \(timeout) of SIGTERM:\n\(child.tail(child.stdout + child.stderr))")
        }
        return status
    }

    /// kill -9, reaped.
    func killDaemon(_ name: String) async throws {
        guard let child = daemon(name) else { throw HarnessError("no daemon \(name)") }
        child.signal(SIGKILL)
        guard await child.wait(timeout: .seconds(10)) != nil else { throw HarnessError("daemon \(name) survived SIGKILL") }
        state.withLock { _ = $0.daemons.removeValue(forKey: name) }
    }

    /// Log of a running (or the last) daemon, for failure messages.
    func daemonLogTail(_ name: String) -> String {
        guard let child = daemon(name) else { return "(no daemon \(name))" }
        return child.tail(child.stdout + child.stderr, lines: 15)
    }

    // MARK: scripts and commands

    /// Starts a black-box script without waiting.
    func spawnScript(_ script: String, _ arguments: [String] = []) throws -> ChildProcess {
        let environment = try environment()
        let number = state.withLock { $0.starts += 1; return $0.starts }
        return try ChildProcess(label: "\((script as NSString).deletingPathExtension)-\(number)", executable: environment["RECEIVABLESD_PYTHON"]!,
                                arguments: ["\(TestEnvironment.blackboxDirectory)/\(script)"] + arguments, environment: environment,
                                logDirectory: logDirectory)
    }

    /// Waits for a script and reads its one JSON result line. A script that printed no JSON
    /// (crashed, timed out) throws with its stderr, so the test fails with the reason.
    func finish(_ child: ChildProcess, timeout: Duration) async throws -> ScenarioResult {
        guard let status = await child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            _ = await child.wait(timeout: .seconds(5))
            throw HarnessError("\(child.label) did not finish within \(timeout); stderr:\n\(child.tail(child.stderr))\nstdout:\n\(child.tail(child.stdout))")
        }
        let lines = child.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        guard let line = lines.last, (try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil else {
            throw HarnessError("\(child.label) exited \(status) without a JSON result; stderr:\n\(child.tail(child.stderr, lines: 40))\nstdout:\n\(child.tail(child.stdout))")
        }
        return ScenarioResult(line: line, stderr: child.tail(child.stderr), exitStatus: status)
    }

    func runScript(_ script: String, _ arguments: [String] = [], timeout: Duration = .seconds(120)) async throws -> ScenarioResult {
        try await finish(try spawnScript(script, arguments), timeout: timeout)
    }

    /// `receivablesd <arguments>` with our settings; (exit status, stdout + stderr).
    func cli(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (status: Int32, output: String) {
        let environment = try environment()
        let number = state.withLock { $0.starts += 1; return $0.starts }
        let child = try ChildProcess(label: "cli-\(arguments.first ?? "")-\(number)", executable: environment["RECEIVABLESD_BIN"]!,
                                     arguments: arguments, environment: environment, logDirectory: logDirectory)
        guard let status = await child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            throw HarnessError("receivablesd \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        return (status, child.stdout + child.stderr)
    }

    /// `scripts/services.sh <command>` (pg-stop, pg-start, ...), synchronous.
    func services(_ command: String) async throws {
        let environment = try environment()
        let child = try ChildProcess(label: "services-\(command)", executable: "/bin/bash", arguments: [environment["RECEIVABLESD_SERVICES"]!, command],
                                     environment: ProcessInfo.processInfo.environment, logDirectory: logDirectory)
        guard let status = await child.wait(timeout: .seconds(120)), status == 0 else {
            throw HarnessError("services.sh \(command) failed:\n\(child.tail(child.stdout + child.stderr))")
        }
    }
}

/// Suite-level setup and teardown: the private database and the primary daemon before the first
/// test, SIGTERM (exit 0 expected) and cleanup after the last.
struct DaemonHarnessTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await Harness.shared.setUp()
        do {
            try await function()
        } catch {
            await Harness.shared.tearDown()
            throw error
        }
        await Harness.shared.tearDown()
    }
}

extension Trait where Self == DaemonHarnessTrait {
    static var daemonHarness: Self { DaemonHarnessTrait() }
}

/// SQL helpers over our private database.
extension PostgresConnection {
    func int(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int64 {
        let rows = try query(sql, parameters)
        guard let first = rows.first, let value = first.values.first ?? nil, let number = Int64(value) else {
            throw HarnessError("no integer from: \(sql)")
        }
        return number
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int64? { (self[key] as? NSNumber)?.int64Value }
}
