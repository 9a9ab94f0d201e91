import Foundation
import Synchronization
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Why an operations test cannot run or a step failed; the message says what to do.
struct OpsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The environment `make test` (scripts/services.sh) provides. Missing variables FAIL the test
/// with a clear message, never skip it.
enum OpsEnvironment {
    static let required = [
        "RECEIVABLESD_BIN", "RECEIVABLESD_PYTHON", "RECEIVABLESD_SERVICES", "RECEIVABLESD_PG_BIN",
        "PGHOST", "PGPORT", "PGUSER",
        "RECEIVABLESD_DB_HOST", "RECEIVABLESD_DB_PORT", "RECEIVABLESD_DB_NAME", "RECEIVABLESD_DB_USER", "RECEIVABLESD_DB_PASSWORD",
        "RECEIVABLESD_AMQP_HOST", "RECEIVABLESD_AMQP_PORT", "RECEIVABLESD_AMQP_USER", "RECEIVABLESD_AMQP_PASSWORD",
        "RECEIVABLESD_AMQPS_PORT", "RECEIVABLESD_CREDENTIALS_DIRECTORY", "RECEIVABLESD_MGMT_URL",
        "RECEIVABLESD_TEST_AMQP_ADMIN_USER", "RECEIVABLESD_TEST_AMQP_ADMIN_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_BILLING_USER", "RECEIVABLESD_TEST_AMQP_BILLING_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_GATEWAY_USER", "RECEIVABLESD_TEST_AMQP_GATEWAY_PASSWORD",
        "RECEIVABLESD_TEST_AMQP_BANK_USER", "RECEIVABLESD_TEST_AMQP_BANK_PASSWORD",
    ]

    static func load() throws -> [String: String] {
        let environment = ProcessInfo.processInfo.environment
        let missing = required.filter { (environment[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw OpsError("""
                OperationsTests need the private services and the daemon binary; missing: \(missing.joined(separator: ", ")). \
                Run `make test`, or `bash scripts/services.sh start && set -a && . .local/env.sh && set +a` and set RECEIVABLESD_BIN.
                """)
        }
        guard FileManager.default.isExecutableFile(atPath: environment["RECEIVABLESD_BIN"]!) else {
            throw OpsError("RECEIVABLESD_BIN=\(environment["RECEIVABLESD_BIN"]!) is not an executable (build it first)")
        }
        return environment
    }

    /// The checkout, from this file's path (Tests/OperationsTests/OpsSupport.swift).
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The secrets a log must never contain: every file of the credentials directory.
    static func secrets(_ environment: [String: String]) throws -> [String: String] {
        let directory = environment["RECEIVABLESD_CREDENTIALS_DIRECTORY"]!
        var result: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.count >= 8 { result[name] = text }
        }
        for key in ["RECEIVABLESD_DB_PASSWORD", "RECEIVABLESD_AMQP_PASSWORD"] { result[key] = environment[key] }
        guard result.count >= 3 else { throw OpsError("no credentials found in \(directory)") }
        return result
    }
}

typealias Child = ChildProcess

extension ChildProcess {
    convenience init(_ label: String, _ executable: String, _ arguments: [String], environment: [String: String], directory: String) throws {
        try self.init(label: label, executable: executable, arguments: arguments, environment: environment, logDirectory: directory)
    }
}

/// A NOTIFY_SOCKET listener: the unix datagram socket systemd would create. Every datagram the
/// daemon sends (via libsystemd's sd_notify) is kept, in order, with its arrival time.
final class NotifyListener: Sendable {
    let path: String
    private let fd: Int32
    private let received = Mutex<[(at: ContinuousClock.Instant, text: String)]>([])

    init() throws {
        path = "/tmp/ops-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw OpsError("socket(AF_UNIX, SOCK_DGRAM) failed: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
            raw[bytes.count] = 0
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else { throw OpsError("bind(\(path)) failed: \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Reads whatever has arrived (non-blocking).
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            received.withLock { $0.append((ContinuousClock.now, text)) }
        }
    }

    /// Every datagram so far.
    var messages: [String] { drain(); return received.withLock { $0.map(\.text) } }
    var timedMessages: [(at: ContinuousClock.Instant, text: String)] { drain(); return received.withLock { $0 } }

    /// Datagrams containing the line `assignment` (e.g. "READY=1").
    func count(_ assignment: String) -> Int {
        messages.filter { $0.split(separator: "\n").contains { $0 == assignment } }.count
    }

    /// Waits until `predicate(messages)` holds; false on timeout.
    func wait(timeout: Duration, _ predicate: ([String]) -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if predicate(messages) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return predicate(messages)
    }
}

/// One test's private world: database, work queue, exchanges, CloudEvents source, log folder,
/// and the daemons and helpers it started (all stopped and removed by `cleanup`).
final class OpsScope: Sendable {
    let tag: String
    let environment: [String: String]
    let directory: String
    private let children = Mutex<[Child]>([])
    private let counter = Mutex(0)

    var database: String { "receivablesd_\(tag)" }
    var workQueue: String { "ar.\(tag).work" }
    var intakeQueue: String { "ar.\(tag).intake" }
    var partitionExchange: String { "ar.\(tag).partitions" }
    var partitionQueuePrefix: String { "ar.\(tag).part" }
    /// Few partitions: these tests run one daemon; each partition is a quorum queue to declare.
    let partitions = 2
    var partitionQueues: [String] { (0..<partitions).map { partitionQueuePrefix + ".0\($0)" } + [partitionQueuePrefix + ".bank"] }
    var eventsExchange: String { "ar.\(tag).events" }
    var deadLetterExchange: String { "ar.\(tag).dead-letter" }
    var captureQueue: String { "ar.\(tag).capture" }
    var eventSource: String { "receivablesd-\(tag)" }

    init(_ name: String) throws {
        environment = try OpsEnvironment.load()
        tag = "ops\(getpid())\(name)\(UInt16.random(in: 0...UInt16.max))"
        directory = NSTemporaryDirectory() + "receivablesd-\(tag)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Creates the private database and a capture queue on the private exchanges.
    func setUp() async throws {
        let created = try await psql("CREATE DATABASE \"\(database)\" OWNER \"\(environment["RECEIVABLESD_DB_USER"]!)\"", database: "postgres")
        guard created.status == 0 else { throw OpsError("cannot create database \(database): \(created.output)") }
        let capture = try await python(["capture-create", captureQueue, eventsExchange, deadLetterExchange])
        guard capture.status == 0 else { throw OpsError("cannot create the capture queue: \(capture.output)") }
    }

    /// Kills what is still running, deletes the private broker objects and database.
    func cleanup() async {
        for child in children.withLock({ $0 }) where child.isRunning { await child.kill9() }
        _ = try? await python(["cleanup", workQueue, deadLetterExchange, eventsExchange, captureQueue, intakeQueue, partitionExchange] + partitionQueues)
        _ = try? await psql("DROP DATABASE IF EXISTS \"\(database)\" WITH (FORCE)", database: "postgres")
        if environment["OPS_KEEP"] != "1" { try? FileManager.default.removeItem(atPath: directory) }
    }

    func nextLabel(_ prefix: String) -> String {
        let n = counter.withLock { $0 += 1; return $0 }
        return "\(prefix)-\(n)"
    }

    /// The daemon's settings: private names, no HTTP endpoint unless asked, no systemd variables.
    func daemonEnvironment(_ overrides: [String: String] = [:]) -> [String: String] {
        var env = environment
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"] { env.removeValue(forKey: key) }
        env["RECEIVABLESD_DB_NAME"] = database
        env["RECEIVABLESD_WORK_QUEUE"] = workQueue
        env["RECEIVABLESD_INTAKE_QUEUE"] = intakeQueue
        env["RECEIVABLESD_PARTITION_EXCHANGE"] = partitionExchange
        env["RECEIVABLESD_PARTITION_QUEUE_PREFIX"] = partitionQueuePrefix
        env["RECEIVABLESD_PARTITIONS"] = String(partitions)
        env["RECEIVABLESD_EVENTS_EXCHANGE"] = eventsExchange
        env["RECEIVABLESD_DEAD_LETTER_EXCHANGE"] = deadLetterExchange
        env["RECEIVABLESD_DEAD_LETTER_QUEUE"] = deadLetterExchange
        env["RECEIVABLESD_EVENT_SOURCE"] = eventSource
        env["RECEIVABLESD_HTTP_PORT"] = ""
        env["RECEIVABLESD_LOG_LEVEL"] = "info"
        env["RECEIVABLESD_HOUSEKEEPING_SECONDS"] = "1"
        for (key, value) in overrides { env[key] = value }
        return env
    }

    /// Starts `receivablesd serve` (not waiting).
    func spawnDaemon(_ overrides: [String: String] = [:], notify: NotifyListener? = nil) throws -> Child {
        var env = daemonEnvironment(overrides)
        if let notify { env["NOTIFY_SOCKET"] = notify.path }
        let child = try Child(nextLabel("daemon"), environment["RECEIVABLESD_BIN"]!, ["serve"], environment: env, directory: directory)
        children.withLock { $0.append(child) }
        return child
    }

    /// Starts the daemon and waits for its "receivablesd ready" log line.
    func startDaemon(_ overrides: [String: String] = [:], notify: NotifyListener? = nil, timeout: Duration = .seconds(90)) async throws -> Child {
        let child = try spawnDaemon(overrides, notify: notify)
        guard await waitForLog(child, "receivablesd ready", timeout: timeout) else {
            let status = child.poll()
            await child.kill9()
            throw OpsError("daemon not ready within \(timeout) (exit status \(status.map(String.init) ?? "none")):\n\(child.tail())")
        }
        return child
    }

    func waitForLog(_ child: Child, _ text: String, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if child.stdout.contains(text) { return true }
            if child.poll() != nil { return child.stdout.contains(text) }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return child.stdout.contains(text)
    }

    /// Runs a program to completion; (status, stdout + stderr).
    func run(_ executable: String, _ arguments: [String], environment env: [String: String]? = nil,
             timeout: Duration = .seconds(120)) async throws -> (status: Int32, output: String) {
        let child = try Child(nextLabel((executable as NSString).lastPathComponent), executable, arguments,
                              environment: env ?? environment, directory: directory)
        guard let status = await child.wait(timeout: timeout) else {
            await child.kill9()
            throw OpsError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout):\n\(child.tail())")
        }
        return (status, child.output)
    }

    /// `receivablesd ARGS` with the daemon's private settings plus `overrides`.
    func cli(_ arguments: [String], _ overrides: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> (status: Int32, output: String) {
        try await run(environment["RECEIVABLESD_BIN"]!, arguments, environment: daemonEnvironment(overrides), timeout: timeout)
    }

    /// psql as the superuser (trust on loopback) against `database` (default: ours), unaligned.
    func psql(_ sql: String, database name: String? = nil) async throws -> (status: Int32, output: String) {
        var env = environment
        env["PGDATABASE"] = name ?? database
        env["PGSSLMODE"] = "disable"
        return try await run(environment["RECEIVABLESD_PG_BIN"]! + "/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             environment: env, timeout: .seconds(60))
    }

    /// One integer from a query on our database.
    func count(_ sql: String) async throws -> Int {
        let result = try await psql(sql)
        guard result.status == 0, let value = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw OpsError("query failed: \(sql)\n\(result.output)")
        }
        return value
    }

    /// Polls a count until it reaches `expected`; returns the last value.
    func waitForCount(_ sql: String, atLeast expected: Int, timeout: Duration) async throws -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = -1
        while clock.now < deadline {
            last = try await count(sql)
            if last >= expected { return last }
            try await Task.sleep(for: .milliseconds(300))
        }
        return last
    }

    /// The embedded independent client (pika, Debian's python3): see OpsClientScript.
    func python(_ arguments: [String], _ extra: [String: String] = [:], timeout: Duration = .seconds(180)) async throws -> (status: Int32, output: String) {
        let script = directory + "/ops_client.py"
        if !FileManager.default.fileExists(atPath: script) {
            try OpsClientScript.source.write(toFile: script, atomically: true, encoding: .utf8)
        }
        var env = environment
        env["OPS_REPOSITORY"] = OpsEnvironment.repositoryRoot
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for (key, value) in extra { env[key] = value }
        return try await run(environment["RECEIVABLESD_PYTHON"]!, [script] + arguments, environment: env, timeout: timeout)
    }

    /// Starts the client in the background.
    func spawnPython(_ arguments: [String]) throws -> Child {
        let script = directory + "/ops_client.py"
        if !FileManager.default.fileExists(atPath: script) {
            try OpsClientScript.source.write(toFile: script, atomically: true, encoding: .utf8)
        }
        var env = environment
        env["OPS_REPOSITORY"] = OpsEnvironment.repositoryRoot
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        let child = try Child(nextLabel("client"), environment["RECEIVABLESD_PYTHON"]!, [script] + arguments, environment: env, directory: directory)
        children.withLock { $0.append(child) }
        return child
    }

    /// Reads (and removes) what the capture queue holds: events and dead letters of our daemon.
    func captured() async throws -> [[String: Any]] {
        let result = try await python(["capture-read", captureQueue])
        guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("[") }),
              let list = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [[String: Any]] else {
            throw OpsError("capture-read failed: \(result.output)")
        }
        return list
    }

    /// `scripts/services.sh COMMAND` (synchronous).
    func services(_ command: String) async throws {
        let result = try await run("/bin/bash", [environment["RECEIVABLESD_SERVICES"]!, command], environment: ProcessInfo.processInfo.environment,
                                   timeout: .seconds(180))
        guard result.status == 0 else { throw OpsError("services.sh \(command) failed (\(result.status)):\n\(result.output)") }
    }
}

/// Runs `body` with a fresh scope; always cleans up.
func withScope(_ name: String, _ body: (OpsScope) async throws -> Void) async throws {
    let scope = try OpsScope(name)
    do {
        try await scope.setUp()
        try await body(scope)
    } catch {
        await scope.cleanup()
        throw error
    }
    await scope.cleanup()
}

/// Runs `body` with PostgreSQL stopped, restarting it in every case (also when `body` throws).
func withPostgresStopped(_ scope: OpsScope, _ body: () async throws -> Void) async throws {
    try await scope.services("pg-stop")
    do {
        try await body()
    } catch {
        try? await scope.services("pg-start")
        throw error
    }
    try await scope.services("pg-start")
}

/// A tiny HTTP/1.1 GET over a blocking socket with timeouts; (status code, body).
enum HTTPGet {
    static func get(port: Int, path: String, timeoutSeconds: Int = 5) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let code = Int(text.split(separator: " ").dropFirst().first ?? "") else { return nil }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (code, body)
    }

    /// A TCP port below the ephemeral range (the project's port rule: below 32768) that nobody
    /// listens on right now: random candidates in 24000..<32000, each bound and released.
    static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 24_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(candidate).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            if bound == 0 { return candidate }
        }
        throw OpsError("cannot find a free port below 32768")
    }
}

/// All the daemon-starting suites run one at a time (they stop PostgreSQL and use the shared broker).
@Suite(.serialized) struct DaemonOperationsTests {}
