import AMQPClient
import Logging
import PostgresClient
import Store

/// How a worker loop (consumer, router, outbox publisher) handles a turn that failed: it says
/// which side is down (a database or broker error is an outage; anything else is unexpected),
/// drops both connections (nothing of the turn was acked, so the broker redelivers it and the
/// inbox makes that exact) and backs off before the next turn.
enum WorkerRecovery {
    /// `role` names the worker in the log line; `consequence` says what happens to the messages.
    static func recover(from error: any Error, role: String, consequence: String, logger: Logger, backoff: inout Backoff,
                        stop: StopSignal, dropConnections: () -> Void) {
        let suffix = consequence.isEmpty ? "" : ", " + consequence
        switch error {
        case let error as PostgresError:
            logger.warning("\(role): database unavailable\(suffix)", metadata: ["error": "\(error)"])
        case let error as AMQPError:
            logger.warning("\(role): broker unavailable\(suffix)", metadata: ["error": "\(error)"])
        default:
            logger.error("\(role): unexpected error\(suffix)", metadata: ["error": "\(error)"])
        }
        dropConnections()
        stop.sleep(milliseconds: backoff.next())
    }
}

extension WorkerHealth {
    /// A database session for a worker that holds session locks (router, consumers): server-side
    /// keepalives on, so a dead host's locks are freed; health reported.
    func openLockingSession(_ configuration: PostgresConfiguration) throws(PostgresError) -> Store {
        set(database: false)
        let store = Store(try PostgresConnection(configuration))
        try store.enableSessionKeepalives()
        set(database: true)
        return store
    }

    /// A broker connection named `name` (shown in the management UI); health reported.
    func openBroker(_ configuration: AMQPConfiguration, name: String) throws(AMQPError) -> AMQPConnection {
        set(broker: false)
        var settings = configuration
        settings.connectionName = name
        let connection = try AMQPConnection(settings)
        set(broker: true)
        return connection
    }
}
