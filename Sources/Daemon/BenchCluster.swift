import AMQPClient
import ARContract
import ARDomain
import Partitioning
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// Instances of `receivablesd serve` (child processes of this binary) on a throwaway database and
/// private broker objects, for the benchmarks that measure the whole daemon: started, waited for
/// until their partitions are balanced, stopped and removed with everything they made.
struct BenchCluster {
    let configuration: DaemonConfiguration
    let executable: String
    let consumersPerInstance: Int
    let tag: String
    /// Extra settings for the instances (environment variables of `serve`).
    var overrides: [String: String] = [:]

    var databaseName: String { "receivablesd_\(tag)" }

    /// Private names for every broker object, so nobody's consumers see benchmark traffic.
    var names: TopologyNames {
        let prefix = "receivablesd.\(tag)"
        var names = configuration.topology
        names.inboundExchange = prefix + ".inbound"
        names.eventsExchange = prefix + ".events"
        names.deadLetterExchange = prefix + ".dead-letter"
        names.deadLetterQueue = prefix + ".dead-letter"
        names.workQueue = prefix + ".work"
        names.intakeQueue = prefix + ".intake"
        names.partitionExchange = prefix + ".partitions"
        names.partitionQueuePrefix = prefix + ".part"
        return names
    }

    /// The connection settings of the instances' database.
    var database: PostgresConfiguration {
        var settings = configuration.database
        settings.database = databaseName
        return settings
    }

    func logPath(_ index: Int) -> String { "/tmp/receivablesd-\(tag)-\(index).log" }

    func createDatabase() throws {
        let admin = try PostgresConnection(configuration.database)
        // CREATE DATABASE takes no parameters; the name is built from digits and letters only.
        try admin.simpleQuery("CREATE DATABASE \(databaseName)")
    }

    func dropDatabase() {
        guard let admin = try? PostgresConnection(configuration.database) else { return }
        _ = try? admin.simpleQuery("DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)")  // best effort cleanup
    }

    func environment() -> [String: String] {
        let names = self.names
        var environment = ProcessEnvironment.current
        let settings = [
            "RECEIVABLESD_DB_NAME": databaseName, "RECEIVABLESD_INBOUND_EXCHANGE": names.inboundExchange,
            "RECEIVABLESD_EVENTS_EXCHANGE": names.eventsExchange, "RECEIVABLESD_DEAD_LETTER_EXCHANGE": names.deadLetterExchange,
            "RECEIVABLESD_DEAD_LETTER_QUEUE": names.deadLetterQueue, "RECEIVABLESD_WORK_QUEUE": names.workQueue,
            "RECEIVABLESD_INTAKE_QUEUE": names.intakeQueue, "RECEIVABLESD_PARTITION_EXCHANGE": names.partitionExchange,
            "RECEIVABLESD_PARTITION_QUEUE_PREFIX": names.partitionQueuePrefix, "RECEIVABLESD_PARTITIONS": String(names.partitions),
            "RECEIVABLESD_CONSUMERS": String(consumersPerInstance), "RECEIVABLESD_HTTP_PORT": "", "RECEIVABLESD_LOG_LEVEL": "warning",
            "RECEIVABLESD_PUBLISHERS": "\(configuration.broker.user)=*", "RECEIVABLESD_EVENT_SOURCE": "receivablesd-bench",
        ]
        for (key, value) in settings { environment[key] = value }
        for (key, value) in overrides { environment[key] = value }
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { environment.removeValue(forKey: key) }
        return environment
    }

    /// Starts `instances` daemons and returns their pids once their partitions are balanced.
    func start(instances: Int) throws -> [pid_t] {
        let environment = environment()
        var children: [pid_t] = []
        do {
            for index in 0..<instances { children.append(try spawn(environment: environment, log: logPath(index))) }
            let db = try waitForDatabase(children: children)
            try waitUntilBalanced(db, members: instances * consumersPerInstance, partitions: names.partitions + 1, children: children)
            return children
        } catch {
            stop(children)
            throw error
        }
    }

    /// SIGTERM (the daemon drains and exits 0) and wait.
    func stop(_ children: [pid_t]) {
        for child in children { kill(child, SIGTERM) }
        for child in children { var status: Int32 = 0; waitpid(child, &status, 0) }
    }

    func checkAlive(_ children: [pid_t]) throws {
        for child in children where waitpid(child, nil, WNOHANG) == child {
            throw BenchError("an instance exited during the run (see /tmp/receivablesd-\(tag)-*.log)")
        }
    }

    func removeLogs(instances: Int) {
        for index in 0..<instances { unlink(logPath(index)) }
    }

    private func spawn(environment: [String: String], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let arguments = [executable, "serve"]
        let variables = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings(arguments) { argv in
            withCStrings(variables) { envp in posix_spawn(&pid, executable, &actions, nil, argv, envp) }
        }
        guard status == 0 else { throw BenchError("cannot start \(executable) serve: \(String(cString: strerror(status)))") }
        return pid
    }

    func waitForDatabase(children: [pid_t]) throws -> PostgresConnection {
        let db = try PostgresConnection(database)
        let deadline = Monotonic.milliseconds() + 120_000
        while Monotonic.milliseconds() < deadline {
            try checkAlive(children)
            if try db.query("SELECT to_regclass('partition_members') IS NOT NULL AS ready").first?.bool("ready") == true { return db }
            usleep(100_000)
        }
        throw BenchError("the instances did not migrate the database within 2 minutes")
    }

    /// Until every consumer thread of every instance is live and the partitions are shared evenly.
    private func waitUntilBalanced(_ db: PostgresConnection, members: Int, partitions: Int, children: [pid_t]) throws {
        let deadline = Monotonic.milliseconds() + 120_000
        while Monotonic.milliseconds() < deadline {
            try checkAlive(children)
            let held = try db.query("""
                SELECT cardinality(holds) AS held FROM partition_members
                WHERE heartbeat_at > now() - make_interval(secs => $1::double precision / 1000)
                """, [.int(configuration.partitionLeaseMilliseconds)]).all.map { Int($0.requiredInt64("held")) }
            let routing = try Store(db).routerLockHeld()
            if held.count == members, held.reduce(0, +) == partitions, (held.max() ?? 0) - (held.min() ?? 0) <= 1, routing {
                usleep(2_500_000)  // the router's settle time before it subscribes to the intake queue
                return
            }
            usleep(100_000)
        }
        throw BenchError("the partitions were not shared evenly by \(members) consumer threads within 2 minutes")
    }

    func removeTopology(log: (String) -> Void) {
        let names = self.names
        do {
            let broker = try AMQPConnection(configuration.broker)
            defer { broker.close() }
            let layout = names.layout(partitions: names.partitions)
            for queue in layout.slots.map(layout.queueName) + [names.intakeQueue, names.deadLetterQueue] { try broker.deleteQueue(queue) }
            for exchange in [names.inboundExchange, names.eventsExchange, names.deadLetterExchange, names.partitionExchange] {
                try broker.deleteExchange(exchange)
            }
        } catch {
            log("warning: could not remove the bench's broker objects: \(error)")
        }
    }

    /// Resident memory of a process in KiB (VmRSS), nil when it is gone.
    static func residentKiB(_ pid: pid_t) -> Int? {
        guard let file = fopen("/proc/\(pid)/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") {
                return Int(text.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
            }
        }
        return nil
    }

    /// CPU time (user + system) of a process in clock ticks, nil when it is gone.
    static func cpuTicks(_ pid: pid_t) -> Int64? { ServiceCPU.ticks(pid, withReapedChildren: false) }
}
