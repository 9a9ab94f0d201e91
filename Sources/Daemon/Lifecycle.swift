import ARDomain
import CSystemd  // release builds resolve timespec/clock_gettime through this module (MemberImportVisibility)
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Shared between the worker threads and the signal handler: "stop taking work".
public final class StopSignal: Sendable {
    private let stopping = Atomic<Bool>(false)
    public init() {}
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }
    public func stop() { stopping.store(true, ordering: .releasing) }

    /// Sleeps up to `milliseconds`, waking early when stop is requested.
    public func sleep(milliseconds: Int) {
        var left = milliseconds
        while left > 0 && !isStopping {
            let step = min(left, 50)
            usleep(UInt32(step * 1000))
            left -= step
        }
    }
}

/// Health of one worker, read by readiness, watchdog and metrics.
public final class WorkerHealth: Sendable {
    let name: String
    private let databaseUp = Atomic<Bool>(false)
    private let brokerUp = Atomic<Bool>(false)
    /// Monotonic milliseconds of the last loop turn: a stuck loop stops the watchdog pings.
    private let lastTurn = Atomic<Int64>(0)

    public init(name: String) { self.name = name }

    public func set(database: Bool? = nil, broker: Bool? = nil) {
        if let database {
            databaseUp.store(database, ordering: .relaxed)
            DaemonMetrics.connection("database", worker: name, up: database)
        }
        if let broker {
            brokerUp.store(broker, ordering: .relaxed)
            DaemonMetrics.connection("broker", worker: name, up: broker)
        }
    }
    public func turned() { lastTurn.store(Monotonic.milliseconds(), ordering: .relaxed) }
    public var isDatabaseUp: Bool { databaseUp.load(ordering: .relaxed) }
    public var isBrokerUp: Bool { brokerUp.load(ordering: .relaxed) }
    public var millisecondsSinceLastTurn: Int64 { Monotonic.milliseconds() - lastTurn.load(ordering: .relaxed) }
}

/// The wall clock, read only at the edges (the domain gets instants as values).
public enum WallClock {
    public static func now() -> Instant {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Instant(microsecondsSinceEpoch: Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)
    }
}

public enum Monotonic {
    public static func nanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// Exponential backoff with a cap, for reconnecting to PostgreSQL and RabbitMQ.
struct Backoff {
    var nextMilliseconds = 100
    let maximumMilliseconds = 5_000
    mutating func next() -> Int {
        let current = nextMilliseconds
        nextMilliseconds = min(nextMilliseconds * 2, maximumMilliseconds)
        return current
    }
    mutating func reset() { nextMilliseconds = 100 }
}

/// Runs `body` on a dedicated OS thread: rabbitmq-c and libpq calls block, and on two cores
/// they must not occupy Swift's cooperative pool.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {  // handed to exactly one new thread, then released there
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, _ name: String) { self.body = body; self.name = name }
    }
    let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(status == 0, "cannot start thread \(name): \(status)")
    return thread
}
