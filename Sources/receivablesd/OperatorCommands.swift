import AMQPClient
import ARContract
import ArgumentParser
import Daemon
import Logging
import PostgresClient
import Store
#if canImport(Glibc)
import Glibc
#endif

/// Settings shared by every command that talks to PostgreSQL or RabbitMQ.
struct ConnectionOptions: ParsableArguments {
    func load() throws -> DaemonConfiguration {
        do { return try ConfigurationLoader.load() } catch {
            throw ValidationError("configuration is invalid:\n\(error)")
        }
    }

    func database() throws -> PostgresConnection {
        let configuration = try load()
        do { return try PostgresConnection(configuration.database) } catch {
            throw ValidationError("\(error)")
        }
    }
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the daemon (systemd ExecStart).")
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        let configuration = try connection.load()
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level) }
        let logger = Logger(label: "receivablesd")
        let status = Daemon(configuration: configuration, logger: logger).run()
        if status != 0 { throw ExitCode(status) }
    }
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply pending database migrations (safe to run concurrently).")
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        let db = try connection.database()
        do {
            let applied = try Migrator().migrate(db)
            print(applied.isEmpty ? "database is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration and print it with secrets redacted.")
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        let c = try connection.load()
        print("""
            database: \(c.database.user)@\(c.database.host):\(c.database.port)/\(c.database.database) sslmode=\(c.database.sslMode) password=\(c.database.password == nil ? "(none)" : "(redacted)")
            broker: \(c.broker.user)@\(c.broker.host):\(c.broker.port) vhost=\(c.broker.virtualHost) tls=\(c.broker.tls != nil) password=(redacted)
            topology: inbound=\(c.topology.inboundExchange) events=\(c.topology.eventsExchange) dead-letter=\(c.topology.deadLetterExchange) queue=\(c.topology.workQueue) (\(c.topology.workQueueType), delivery limit \(c.topology.deliveryLimit))
            consumers=\(c.consumers) prefetch=\(c.prefetch) batch=\(c.batchSize) max-body=\(c.maximumBodyBytes) max-depth=\(c.maximumJSONDepth) hold=\(c.holdSeconds)s
            publishers: \(c.publishers.allowed.sorted { $0.key < $1.key }.map { "\($0.key)=[\($0.value.joined(separator: ","))]" }.joined(separator: " "))
            """)
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify",
                                                    abstract: "Recompute balances and credit from the journal and check every invariant.")
    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        let store = Store(try connection.database())
        let violations: [Violation]
        do { violations = try store.verify() } catch { throw ValidationError("\(error)") }
        if violations.isEmpty {
            print("verify: all invariants hold")
            return
        }
        for violation in violations { print("VIOLATION \(violation)") }
        print("verify: \(violations.count) violation(s)")
        throw ExitCode(1)
    }
}

struct HeldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "held", abstract: "Messages waiting for something not yet known.",
                                                    subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List held messages, oldest first.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "At most this many rows.") var limit = 1000

        func run() throws {
            let store = Store(try connection.database())
            let held: [HeldMessage]
            do { held = try store.listHeld(limit: limit) } catch { throw ValidationError("\(error)") }
            print(Table.render(["HELD AT", "AGE", "TYPE", "WAITING FOR", "SOURCE", "ID"], held.map {
                [$0.heldAt, Table.age($0.ageSeconds), $0.type, "\($0.waitingKind) \($0.waitingID)", $0.source, $0.eventID]
            }))
            print("\(held.count) held message(s)")
        }
    }
}

/// Plain text tables for operator output.
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows.map { $0.map { String($0.prefix(60)) } }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in cell + String(repeating: " ", count: widths[index] - cell.count) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func age(_ seconds: Int64) -> String {
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86_400)d"
    }
}
