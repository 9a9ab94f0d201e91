import AMQPClient
import ARContract
import CSystemd
import Logging
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd serve`: checks the database (migrating it) and the broker topology, tells
/// systemd READY=1, runs the consumers and the outbox publisher on their own threads, pings the
/// watchdog while they are healthy, reloads on SIGHUP and drains on SIGTERM/SIGINT.
public final class Daemon {
    let configuration: DaemonConfiguration
    let logger: Logger
    let stop = StopSignal()
    /// Publisher drain deadline (monotonic ms), set when stopping.
    private let drainDeadline = DrainDeadline()
    private let reload: (@Sendable () throws -> Void)?

    public init(configuration: DaemonConfiguration, logger: Logger, reload: (@Sendable () throws -> Void)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.reload = reload
    }

    /// Runs until SIGTERM or SIGINT; returns the process exit status.
    public func run() -> Int32 {
        // Signals are taken by sigwait on this thread only: block them before any thread starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        Glibc.signal(SIGPIPE, SIG_IGN)

        guard waitUntilDependenciesReady(signals: signals) else {
            logger.info("stopped before becoming ready")
            return 0
        }

        var threads: [pthread_t] = []
        var healths: [WorkerHealth] = []
        let decoder: InboundDecoder
        do { decoder = try InboundDecoder() } catch {
            preconditionFailure("the embedded JSON Schemas do not compile: \(error)")  // a build defect, caught by tests
        }
        let pipeline = MessagePipeline(configuration: configuration, logger: logger, decoder: decoder)
        for index in 0..<max(1, configuration.consumers) {
            let health = WorkerHealth()
            healths.append(health)
            let worker = ConsumerWorker(configuration: configuration, pipeline: pipeline, stop: stop, health: health,
                                        logger: Logger.child(logger, "consumer", index))
            threads.append(startThread(name: "consumer-\(index)") { [worker] in worker.run() })
        }
        let publisherHealth = WorkerHealth()
        healths.append(publisherHealth)
        let publisher = OutboxPublisher(configuration: configuration, stop: stop, health: publisherHealth, logger: Logger.child(logger, "publisher", 0))
        let deadline = drainDeadline
        let publisherThread = startThread(name: "publisher") { [publisher] in publisher.run(drainDeadline: { deadline.value }) }

        SystemdNotifier.notify("READY=1\nSTATUS=consuming \(configuration.topology.workQueue)")
        logger.info("receivablesd ready", metadata: ["queue": "\(configuration.topology.workQueue)", "consumers": "\(configuration.consumers)"])

        let watchdogMicroseconds = SystemdNotifier.watchdogMicroseconds()
        let tick = watchdogMicroseconds.map { max(100, Int($0 / 2_000)) } ?? 1_000
        while true {
            var timeout = timespec(tv_sec: tick / 1000, tv_nsec: (tick % 1000) * 1_000_000)
            let received = sigtimedwait(&signals, nil, &timeout)
            if received == SIGTERM || received == SIGINT {
                logger.info("stopping: finishing in-flight messages and flushing the outbox")
                SystemdNotifier.notify("STOPPING=1")
                break
            }
            if received == SIGHUP {
                SystemdNotifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Monotonic.milliseconds() * 1000)")
                do {
                    try reload?()
                    logger.info("configuration reloaded")
                } catch {
                    logger.error("reload refused; keeping the previous configuration", metadata: ["error": "\(error)"])
                }
                SystemdNotifier.notify("READY=1")
            }
            // Ping only while every loop turns and reaches the database: a wedged daemon is
            // restarted by systemd instead of silently holding messages.
            let healthy = healths.allSatisfy { $0.millisecondsSinceLastTurn < 30_000 } && healths.contains { $0.isDatabaseUp }
            if healthy, watchdogMicroseconds != nil { SystemdNotifier.notify("WATCHDOG=1") }
        }
        drainDeadline.set(Monotonic.milliseconds() + 20_000)
        stop.stop()
        for thread in threads { pthread_join(thread, nil) }
        pthread_join(publisherThread, nil)
        logger.info("receivablesd stopped cleanly")
        return 0
    }

    /// Waits (with backoff) until PostgreSQL answers and is migrated and the broker topology is
    /// declared. READY=1 must not be sent before (SPEC section 6). False if stopped meanwhile.
    private func waitUntilDependenciesReady(signals: sigset_t) -> Bool {
        var backoff = Backoff()
        var signals = signals
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
            let wait = backoff.next()
            var timeout = timespec(tv_sec: wait / 1000, tv_nsec: (wait % 1000) * 1_000_000)
            let received = sigtimedwait(&signals, nil, &timeout)
            if received == SIGTERM || received == SIGINT { return false }
        }
    }
}

/// The publisher's drain deadline, written by the main thread when stopping.
final class DrainDeadline: Sendable {
    private let deadline = AtomicInt64Box()
    func set(_ value: Int64) { deadline.store(value) }
    var value: Int64? { let v = deadline.load(); return v == 0 ? nil : v }
}

import Synchronization
final class AtomicInt64Box: Sendable {
    private let atomic = Atomic<Int64>(0)
    func store(_ value: Int64) { atomic.store(value, ordering: .releasing) }
    func load() -> Int64 { atomic.load(ordering: .acquiring) }
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
