import AMQPClient
import ARContract
import ARDomain
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
    @Option(name: .customLong("config"), help: "YAML configuration file (default: $RECEIVABLESD_CONFIG or /etc/receivablesd/receivablesd.yaml).")
    var configFile: String?

    var sources: ConfigurationSources { ConfigurationSources(file: configFile) }

    func load() async throws -> DaemonConfiguration {
        do { return try await ConfigurationLoader.load(sources) } catch {
            throw CommandFailure("configuration is invalid:\n\(error)")
        }
    }

    func policies(_ configuration: DaemonConfiguration) throws -> DunningPolicies {
        do { return try PolicyLoader.load(configuration.policiesFile) } catch {
            throw CommandFailure("dunning policies are invalid:\n\(error.problems.map { "- " + $0 }.joined(separator: "\n"))")
        }
    }

    func database() async throws -> PostgresConnection {
        let configuration = try await load()
        do { return try PostgresConnection(configuration.database) } catch {
            throw CommandFailure("\(error)")
        }
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the daemon (systemd ExecStart).")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let configuration = try await connection.load()
        let policies = try connection.policies(configuration)
        let level = LogLevelControl(Logger.Level(rawValue: configuration.logLevel) ?? .info)
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level) }
        let logger = Logger(label: "receivablesd")
        let daemon = Daemon(configuration: configuration, sources: connection.sources, logger: logger, logLevel: level, policies: policies)
        // The daemon blocks in its signal loop: run it on a thread of its own, not the pool.
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            _ = startDetachedThread { continuation.resume(returning: daemon.run()) }
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply pending database migrations (safe to run concurrently).")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let db = try await connection.database()
        do {
            let applied = try Migrator().migrate(db)
            print(applied.isEmpty ? "database is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration and print it with secrets redacted.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Also say which partition queue this customer id's messages go to.") var customer: [String] = []

    func run() async throws {
        let c = try await connection.load()
        let policies = try connection.policies(c)
        print("""
            database: \(c.database.user)@\(c.database.host):\(c.database.port)/\(c.database.database) sslmode=\(c.database.sslMode) password=\(c.database.password == nil ? "(none)" : "(redacted)")
            broker: \(c.broker.user)@\(c.broker.host):\(c.broker.port) vhost=\(c.broker.virtualHost) tls=\(c.broker.tls != nil) password=(redacted)
            \(TopologyExplanation.lines(c, customers: customer).joined(separator: "\n"))
            consumers=\(c.consumers) prefetch=\(c.prefetch) batch=\(c.batchSize) max-body=\(c.maximumBodyBytes) max-depth=\(c.maximumJSONDepth) hold=\(c.holdSeconds)s
            publishers: \(c.publishers.allowed.sorted { $0.key < $1.key }.map { "\($0.key)=[\($0.value.joined(separator: ","))]" }.joined(separator: " "))
            http: \(c.httpPort.map { "\(c.httpHost):\($0)" } ?? "off") log_level=\(c.logLevel)
            reply queues: \(c.replyQueuePrefixes.map { $0 + "*" }.joined(separator: " "))
            amqp tls: \(c.broker.tls.map { "ca=\($0.caCertificatePath ?? "-") cert=\($0.clientCertificatePath ?? "-") verify_peer=\($0.verifyPeer) verify_hostname=\($0.verifyHostname)" } ?? "off")
            db tls: sslmode=\(c.database.sslMode) sslrootcert=\(c.database.sslRootCert ?? "-")
            dunning: pass every \(c.dunningIntervalSeconds == 0 ? "off (dunning_interval_seconds: 0)" : "\(c.dunningIntervalSeconds)s"); hard declines: \(c.hardDeclineCodes.sorted().joined(separator: ","))
            dunning policies (\(c.policiesFile ?? "built-in")): default \(policies.defaultPolicyName); \(policies.policies.keys.sorted().map { name in
                "\(name): " + policies.policies[name]!.steps.map { "\($0.offsetDays >= 0 ? "+" : "")\($0.offsetDays)d \($0.action.rawValue)" }.joined(separator: ", ")
            }.joined(separator: "; "))
            reconciliation: \(c.reconciliation.summary)
            configuration is valid
            """)
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify",
                                                    abstract: "Recompute balances and credit from the journal and check every invariant.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let store = Store(try await connection.database())
        let violations: [Violation]
        do { violations = try store.verify() } catch { throw CommandFailure("\(error)") }
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List held messages, oldest first.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "At most this many rows.") var limit = 1000

        func run() async throws {
            let store = Store(try await connection.database())
            let held: [HeldMessage]
            do { held = try store.listHeld(limit: limit) } catch { throw CommandFailure("\(error)") }
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

/// Starts a detached OS thread for blocking work (the daemon's signal loop).
func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {  // handed to exactly one new thread, then released there
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(status == 0, "cannot start thread: \(status)")
    pthread_detach(thread)
    return thread
}

/// A command that could not do its job: printed as "Error: …" with exit status 1 (no usage
/// text, which is for mistakes in the command line itself).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
