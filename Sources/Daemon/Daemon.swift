import AMQPClient
import ARContract
import ARDomain
import CSystemd
import Dispatch
import Logging
import Metrics
import PostgresClient
import Prometheus
import Store
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd serve`: checks the database (migrating it) and the broker topology, tells
/// systemd READY=1, runs the consumers and the outbox publisher on their own threads, pings the
/// watchdog while they are healthy, reloads policies and log level on SIGHUP and drains on
/// SIGTERM/SIGINT (SPEC section 6).
public final class Daemon: Sendable {
    let configuration: DaemonConfiguration
    let sources: ConfigurationSources
    let logger: Logger
    let logLevel: LogLevelControl
    let stop = StopSignal()
    let state = ServiceState()
    let policies: PolicyHolder
    let reconciliation: ReconciliationSettingsHolder
    private let drainDeadline = DrainDeadline()

    public init(configuration: DaemonConfiguration, sources: ConfigurationSources, logger: Logger, logLevel: LogLevelControl,
                policies: DunningPolicies) {
        self.configuration = configuration
        self.sources = sources
        self.logger = logger
        self.logLevel = logLevel
        self.policies = PolicyHolder(policies)
        self.reconciliation = ReconciliationSettingsHolder(configuration.reconciliation)
    }

    /// Runs until SIGTERM or SIGINT; returns the process exit status.
    public func run() -> Int32 {
        SignalPipe.install([SIGTERM, SIGINT, SIGHUP])

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        DaemonMetrics.registerSeries()
        let http = HTTPEndpoint()
        if let port = configuration.httpPort {
            do {
                try http.start(host: configuration.httpHost, port: port, registry: registry, state: state)
                logger.info("metrics and health endpoint listening", metadata: ["address": "\(configuration.httpHost):\(port)"])
            } catch {
                logger.error("cannot listen for metrics and health", metadata: ["address": "\(configuration.httpHost):\(port)", "error": "\(error)"])
                return 1
            }
        }
        defer { http.stop() }

        guard waitUntilDependenciesReady() else {
            logger.info("stopped before becoming ready")
            return 0
        }

        let decoder: InboundDecoder
        do { decoder = try InboundDecoder() } catch {
            preconditionFailure("the embedded JSON Schemas do not compile: \(error)")  // a build defect, caught by tests
        }
        let pipeline = MessagePipeline(configuration: configuration, logger: logger, decoder: decoder, policies: policies,
                                       reconciliation: reconciliation)
        var threads: [pthread_t] = []
        var healths: [WorkerHealth] = []
        // Partitioned intake (docs/partitioning.md): one router thread per instance (one routes
        // at a time) and the consumer threads, each a member of the partition assignment.
        let routerHealth = WorkerHealth(name: "router-0")
        healths.append(routerHealth)
        let router = IntakeRouter(configuration: configuration, stop: stop, health: routerHealth, logger: Logger.child(logger, "router", 0))
        threads.append(startThread(name: "router") { router.run() })
        let instance = "\(HostName.current)/\(getpid())/\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        for index in 0..<max(1, configuration.consumers) {
            let health = WorkerHealth(name: "consumer-\(index)")
            healths.append(health)
            let worker = ConsumerWorker(configuration: configuration, pipeline: pipeline, stop: stop, health: health,
                                        logger: Logger.child(logger, "consumer", index), memberID: "\(instance)/c\(index)")
            threads.append(startThread(name: "consumer-\(index)") { worker.run() })
        }
        let publisherHealth = WorkerHealth(name: "publisher-0")
        healths.append(publisherHealth)
        let publisher = OutboxPublisher(configuration: configuration, stop: stop, health: publisherHealth, logger: Logger.child(logger, "publisher", 0))
        let deadline = drainDeadline
        let publisherThread = startThread(name: "publisher") { publisher.run(drainDeadline: { deadline.value }) }

        // The dunning scheduler has no broker connection: it counts for "stuck", not "disconnected".
        var clocks: [WorkerHealth] = []
        var schedulerThread: pthread_t?
        if configuration.dunningIntervalSeconds > 0 {
            let health = WorkerHealth(name: "dunning-0")
            clocks.append(health)
            let scheduler = DunningScheduler(configuration: configuration, policies: policies, stop: stop, health: health,
                                             logger: Logger.child(logger, "dunning", 0))
            schedulerThread = startThread(name: "dunning") { scheduler.run() }
        }
        let workers = healths
        let timed = healths + clocks
        state.setProbe {
            let stuck = timed.filter { $0.millisecondsSinceLastTurn > 30_000 }.map(\.name)
            let down = workers.filter { !$0.isDatabaseUp || !$0.isBrokerUp }.map(\.name)
            let detail = stuck.isEmpty && down.isEmpty ? "all workers connected"
                : "stuck: \(stuck.joined(separator: ",")) disconnected: \(down.joined(separator: ","))"
            return (stuck.isEmpty, stuck.isEmpty && down.isEmpty, detail)
        }
        state.setReady(true)
        SystemdNotifier.notify("READY=1\nSTATUS=consuming \(configuration.topology.intakeQueue) through \(configuration.topology.partitionQueuePrefix).*")
        logger.info("receivablesd ready", metadata: ["queue": "\(configuration.topology.intakeQueue)", "partitions": "\(configuration.topology.partitionQueuePrefix).*",
                                                     "consumers": "\(configuration.consumers)", "instance": "\(instance)"])

        let watchdogMicroseconds = SystemdNotifier.watchdogMicroseconds()
        let tick = watchdogMicroseconds.map { max(100, Int($0 / 2_000)) } ?? 1_000
        while true {
            let received = SignalPipe.next(timeoutMilliseconds: Int32(tick))
            if received == SIGTERM || received == SIGINT {
                logger.info("stopping: finishing in-flight messages and flushing the outbox")
                SystemdNotifier.notify("STOPPING=1")
                break
            }
            if received == SIGHUP { reload() }
            // Ping only while every loop turns and reaches the database: a wedged daemon is
            // restarted by systemd instead of silently holding messages.
            let healthy = timed.allSatisfy { $0.millisecondsSinceLastTurn < 30_000 } && healths.contains { $0.isDatabaseUp }
            if healthy, watchdogMicroseconds != nil { SystemdNotifier.notify("WATCHDOG=1") }
        }
        state.setReady(false)
        drainDeadline.set(Monotonic.milliseconds() + 20_000)
        stop.stop()
        for thread in threads { pthread_join(thread, nil) }
        if let schedulerThread { pthread_join(schedulerThread, nil) }
        pthread_join(publisherThread, nil)
        logger.info("receivablesd stopped cleanly")
        return 0
    }

    /// SIGHUP: re-read the configuration's reloadable parts (dunning policies, log level).
    /// A broken file is refused and the running configuration kept.
    func reload() {
        SystemdNotifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Monotonic.nanoseconds() / 1000)")
        defer { SystemdNotifier.notify("READY=1") }
        let sources = self.sources
        let loaded = blockingAwait { () async -> Result<DaemonConfiguration, ConfigurationError> in
            do { return .success(try await ConfigurationLoader.load(sources)) } catch let error as ConfigurationError {
                return .failure(error)
            } catch {
                return .failure(ConfigurationError(problems: ["\(error)"]))
            }
        }
        switch loaded {
        case .failure(let error):
            logger.error("reload refused: configuration is invalid; keeping the running configuration", metadata: ["problems": "\(error.problems.joined(separator: "; "))"])
        case .success(let fresh):
            do throws(PolicyError) {
                let newPolicies = try PolicyLoader.load(fresh.policiesFile)
                policies.replace(newPolicies)
                reconciliation.replace(fresh.reconciliation)
                logLevel.level = Logger.Level(rawValue: fresh.logLevel) ?? .info
                logger.notice("configuration reloaded", metadata: ["policies": "\(newPolicies.policies.keys.sorted().joined(separator: ","))",
                                                                   "log_level": "\(fresh.logLevel)"])
            } catch {
                logger.error("reload refused: dunning policies are invalid; keeping the running policies", metadata: ["problems": "\(error.problems.joined(separator: "; "))"])
            }
        }
    }

    /// Waits (with backoff) until PostgreSQL answers and is migrated and the broker topology is
    /// declared. READY=1 must not be sent before (SPEC section 6). False if stopped meanwhile.
    private func waitUntilDependenciesReady() -> Bool {
        var backoff = Backoff()
        while true {
            do {
                let connection = try PostgresConnection(configuration.database)
                let applied = try Migrator().migrate(connection)
                if !applied.isEmpty { logger.info("database migrated", metadata: ["versions": "\(applied)"]) }
                let broker = try AMQPConnection(configuration.broker)
                try Topology.declare(on: broker, configuration.topology, inboundTypes: MessagePipeline.inboundTypes)
                broker.close()
                return true
            } catch {
                SystemdNotifier.notify("STATUS=waiting for dependencies: \(error)")
                logger.warning("waiting for PostgreSQL and RabbitMQ", metadata: ["error": "\(error)"])
            }
            let received = SignalPipe.next(timeoutMilliseconds: Int32(backoff.next()))
            if received == SIGTERM || received == SIGINT { return false }
        }
    }
}

/// The dunning policies in force; replaced whole on reload.
public final class PolicyHolder: Sendable {
    private let current: Mutex<DunningPolicies>
    init(_ policies: DunningPolicies) { current = Mutex(policies) }
    public var policies: DunningPolicies { current.withLock { $0 } }
    func replace(_ policies: DunningPolicies) { current.withLock { $0 = policies } }
}

/// Runs async work from a plain thread (the signal loop) and waits for it; never call it from
/// a task on the cooperative pool.
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let semaphore = DispatchSemaphore(value: 0)
    let box = Mutex<T?>(nil)
    Task {
        let value = await body()
        box.withLock { $0 = value }
        semaphore.signal()
    }
    semaphore.wait()
    return box.withLock { $0! }
}

/// The publisher's drain deadline, written by the main thread when stopping.
final class DrainDeadline: Sendable {
    private let deadline = Atomic<Int64>(0)
    func set(_ value: Int64) { deadline.store(value, ordering: .releasing) }
    var value: Int64? { let v = deadline.load(ordering: .acquiring); return v == 0 ? nil : v }
}

extension Logger {
    static func child(_ parent: Logger, _ role: String, _ index: Int) -> Logger {
        var logger = parent
        logger[metadataKey: "worker"] = "\(role)-\(index)"
        return logger
    }
}

/// sd_notify through libsystemd (Debian libsystemd-dev): the real protocol, including the
/// NOTIFY_SOCKET abstract-namespace and credential details we would otherwise re-implement.
public enum SystemdNotifier {
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// WATCHDOG_USEC when systemd asked for pings (and for this process), else nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var microseconds: UInt64 = 0
        return sd_watchdog_enabled(0, &microseconds) > 0 ? microseconds : nil
    }
}
