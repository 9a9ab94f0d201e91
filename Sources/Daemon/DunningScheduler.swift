import ARDomain
import Logging
import PostgresClient
import Store

/// The daemon's own dunning clock (SPEC section 4): a pass every `dunning_interval_seconds`, as
/// of the wall clock, on its own thread with its own PostgreSQL connection, with the policies in
/// force at that pass (SIGHUP may replace them between passes). The first pass runs right after
/// start, so an instance that was down catches up at once (highest due step only).
// @unchecked Sendable: created on the main thread and handed to exactly one thread, which alone
// touches it (and its connection) from then on.
final class DunningScheduler: @unchecked Sendable {
    let runner: DunningRunner
    let policies: PolicyHolder
    let interval: Int
    let stop: StopSignal
    let health: WorkerHealth
    let logger: Logger
    private var store: Store?
    private var backoff = Backoff()

    init(configuration: DaemonConfiguration, policies: PolicyHolder, stop: StopSignal, health: WorkerHealth, logger: Logger) {
        self.runner = DunningRunner(configuration: configuration, logger: logger)
        self.policies = policies
        self.interval = configuration.dunningIntervalSeconds
        self.stop = stop
        self.health = health
        self.logger = logger
    }

    func run() {
        var nextPass = Monotonic.milliseconds()
        var refreshedZones = false
        while !stop.isStopping {
            health.turned()
            guard Monotonic.milliseconds() >= nextPass else {
                stop.sleep(milliseconds: 250)
                continue
            }
            do {
                let store = try connect()
                if !refreshedZones {
                    try store.refreshTimeZoneNames()  // new tz data after an upgrade
                    refreshedZones = true
                }
                let started = Monotonic.milliseconds()
                let report = try runner.pass(store: store, policies: policies.policies, now: WallClock.now(), progress: { [health] in health.turned() })
                backoff.reset()
                nextPass = started + Int64(interval) * 1000
                if !report.reminders.isEmpty || !report.retries.isEmpty {
                    logger.info("dunning pass", metadata: ["reminders": "\(report.reminders.count)", "retries": "\(report.retries.count)",
                                                           "waiting": "\(report.waitingInvoices)", "customers": "\(report.customers)",
                                                           "milliseconds": "\(Monotonic.milliseconds() - started)"])
                }
            } catch let error as PostgresError {
                logger.warning("dunning scheduler: database unavailable; the pass is retried", metadata: ["error": "\(error)"])
                store = nil
                health.set(database: false)
                nextPass = Monotonic.milliseconds() + Int64(backoff.next())
            } catch {
                logger.error("dunning scheduler: pass failed; retried at the next interval", metadata: ["error": "\(error)"])
                store = nil
                nextPass = Monotonic.milliseconds() + Int64(interval) * 1000
            }
        }
        logger.info("dunning scheduler stopped")
    }

    private func connect() throws(PostgresError) -> Store {
        if let store, store.db.isConnected { return store }
        health.set(database: false)
        let fresh = Store(try PostgresConnection(configuration()))
        store = fresh
        health.set(database: true)
        return fresh
    }

    private func configuration() -> PostgresConfiguration {
        var database = runner.configuration.database
        database.applicationName = "receivablesd dunning"
        return database
    }
}
