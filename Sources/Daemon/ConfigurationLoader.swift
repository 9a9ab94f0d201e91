import AMQPClient
import ARDomain
import Configuration
import PostgresClient
import SystemPackage
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// A configuration mistake, named so an operator can fix it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.map { "- " + $0 }.joined(separator: "\n") }
}

/// Where configuration comes from, highest precedence first:
/// 1. secrets from the systemd credentials directory (`$CREDENTIALS_DIRECTORY`, or
///    `RECEIVABLESD_CREDENTIALS_DIRECTORY`): files `db-password`, `amqp-password`, ...;
/// 2. environment variables `RECEIVABLESD_<KEY>` (`db.host` → `RECEIVABLESD_DB_HOST`);
/// 3. the YAML file (`--config`, `RECEIVABLESD_CONFIG`, default /etc/receivablesd/receivablesd.yaml);
/// 4. the built-in defaults documented in config/receivablesd.yaml.
public struct ConfigurationSources: Sendable {
    public var file: String?
    public var environment: [String: String]

    public init(file: String? = nil, environment: [String: String] = ProcessEnvironment.current) {
        self.file = file
        self.environment = environment
    }

    var filePath: String { file ?? environment["RECEIVABLESD_CONFIG"] ?? "/etc/receivablesd/receivablesd.yaml" }
    var fileIsExplicit: Bool { file != nil || environment["RECEIVABLESD_CONFIG"] != nil }
    var credentialsDirectory: String? { environment["CREDENTIALS_DIRECTORY"] ?? environment["RECEIVABLESD_CREDENTIALS_DIRECTORY"] }
}

public enum ConfigurationLoader {
    /// Every key the YAML file may contain (a misspelt key is an error, not silently ignored).
    static let knownKeys: Set<String> = [
        "db.host", "db.port", "db.name", "db.user", "db.password", "db.sslmode", "db.sslrootcert", "db.sslcert", "db.sslkey",
        "amqp.host", "amqp.port", "amqp.vhost", "amqp.user", "amqp.password", "amqp.heartbeat", "amqp.tls", "amqp.cacert",
        "amqp.cert", "amqp.key", "amqp.verify_peer", "amqp.verify_hostname",
        "inbound_exchange", "events_exchange", "dead_letter_exchange", "work_queue", "dead_letter_queue", "work_queue_type",
        "delivery_limit", "consumers", "prefetch", "batch_size", "batch_linger_ms", "max_body_bytes", "max_json_depth", "hold_seconds",
        "housekeeping_seconds", "event_source", "log_level", "http.host", "http.port", "policies_file", "publishers",
        "reply_queue_prefixes", "dunning_interval_seconds", "hard_decline_codes", "cursor.secret",
        "intake_queue", "partition_exchange", "partition_queue_prefix", "partitions", "partition_lease_seconds", "router_batch_size",
    ]

    public static func load(_ sources: ConfigurationSources = ConfigurationSources()) async throws(ConfigurationError) -> DaemonConfiguration {
        var problems: [String] = []
        var providers: [any ConfigProvider] = []
        if let directory = sources.credentialsDirectory, access(directory, R_OK | X_OK) == 0 {
            do { providers.append(try await DirectoryFilesProvider(directoryPath: FilePath(directory))) } catch {
                problems.append("credentials directory \(directory): \(error)")
            }
        }
        providers.append(EnvironmentVariablesProvider(
            environmentVariables: sources.environment,
            secretsSpecifier: .dynamic { key, _ in key.hasSuffix("PASSWORD") || key.hasSuffix("_KEY") || key.hasSuffix("_SECRET") }
        ).prefixKeys(with: "receivablesd"))
        var publishersFromFile: [String: [String]]?
        var fileText: String?
        let path = sources.filePath
        if access(path, F_OK) == 0 {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(path)))
                let text = try String(decoding: readAll(path), as: UTF8.self)
                fileText = text
                let (unknown, publishers) = try inspectYAML(text)
                problems += unknown.map { "\(path): unknown key '\($0)'" }
                publishersFromFile = publishers
            } catch {
                problems.append("\(path): \(error)")
            }
        } else if sources.fileIsExplicit {
            problems.append("configuration file \(path) does not exist")
        }
        let reader = ConfigReader(providers: providers)
        var settings = Settings(reader: reader)
        var configuration = settings.build(publishersFromFile: publishersFromFile, environment: sources.environment)
        problems += settings.problems
        let (reconciliation, reconciliationProblems) = ReconciliationConfiguration.read(yaml: fileText, environment: sources.environment, origin: path)
        problems += reconciliationProblems
        configuration?.reconciliation = reconciliation
        guard problems.isEmpty, let configuration else { throw ConfigurationError(problems: problems) }
        return configuration
    }

    /// Unknown keys of a YAML document, and the `publishers` map (user → type patterns).
    static func inspectYAML(_ text: String) throws -> (unknown: [String], publishers: [String: [String]]?) {
        guard let root = try Yams.load(yaml: text) else { return ([], nil) }
        guard let mapping = root as? [String: Any] else { throw ConfigurationError(problems: ["the top level must be a mapping"]) }
        var unknown: [String] = []
        var publishers: [String: [String]]?
        func walk(_ node: [String: Any], prefix: String) {
            for (key, value) in node {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if path == "reconciliation" { continue }  // read and checked by ReconciliationConfiguration
                if path == "publishers" {
                    var map: [String: [String]] = [:]
                    if let entries = value as? [String: Any] {
                        for (user, patterns) in entries {
                            map[user] = (patterns as? [Any])?.map { "\($0)" } ?? ["\(patterns)"]
                        }
                    } else {
                        unknown.append("publishers (must map broker users to lists of message types)")
                    }
                    publishers = map
                    continue
                }
                if let child = value as? [String: Any] {
                    walk(child, prefix: path)
                } else if !knownKeys.contains(path) {
                    unknown.append(path)
                }
            }
        }
        walk(mapping, prefix: "")
        return (unknown.sorted(), publishers)
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        guard let text = readFile(path, limit: 1_048_576) else { throw ConfigurationError(problems: ["cannot read \(path)"]) }
        return Array(text.utf8)
    }

    /// A file's contents without the trailing newline editors add; nil if unreadable or huge.
    static func readFile(_ path: String, limit: Int = 65_536) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > limit { return nil }
        }
        while let last = bytes.last, last == 0x0a || last == 0x0d { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads and checks each setting, collecting every problem instead of stopping at the first.
private struct Settings {
    let reader: ConfigReader
    var problems: [String] = []

    init(reader: ConfigReader) { self.reader = reader }

    mutating func string(_ key: String, _ fallback: String) -> String {
        guard let value = reader.string(forKey: ConfigKey(key)) ?? reader.int(forKey: ConfigKey(key)).map(String.init) else { return fallback }
        return value
    }

    mutating func optionalString(_ key: String) -> String? {
        reader.string(forKey: ConfigKey(key)).flatMap { $0.isEmpty ? nil : $0 }
    }

    mutating func int(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>) -> Int {
        if let value = reader.int(forKey: ConfigKey(key)) {
            guard range.contains(value) else {
                problems.append("\(key) = \(value): expected \(range.lowerBound)...\(range.upperBound)")
                return fallback
            }
            return value
        }
        if let text = reader.string(forKey: ConfigKey(key)) {
            problems.append("\(key) = '\(text)': expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return fallback
    }

    mutating func bool(_ key: String, _ fallback: Bool) -> Bool {
        if let value = reader.bool(forKey: ConfigKey(key)) { return value }
        if let text = reader.string(forKey: ConfigKey(key)) { problems.append("\(key) = '\(text)': expected true or false") }
        return fallback
    }

    mutating func oneOf(_ key: String, _ fallback: String, _ allowed: [String]) -> String {
        let value = string(key, fallback)
        if !allowed.contains(value) { problems.append("\(key) = '\(value)': expected one of \(allowed.joined(separator: ", "))") }
        return value
    }

    mutating func readablePath(_ key: String) -> String? {
        guard let path = optionalString(key) else { return nil }
        if access(path, R_OK) != 0 { problems.append("\(key) = \(path): file not readable") }
        return path
    }

    mutating func build(publishersFromFile: [String: [String]]?, environment: [String: String]) -> DaemonConfiguration? {
        let sslMode = oneOf("db.sslmode", "prefer", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])
        let database = PostgresConfiguration(
            host: string("db.host", "127.0.0.1"), port: int("db.port", 5432, 1...65535), database: string("db.name", "receivablesd"),
            user: string("db.user", "receivablesd"), password: optionalString("db.password"), sslMode: sslMode,
            sslRootCert: readablePath("db.sslrootcert"), sslCert: readablePath("db.sslcert"), sslKey: readablePath("db.sslkey"))
        if (sslMode == "verify-ca" || sslMode == "verify-full") && database.sslRootCert == nil {
            problems.append("db.sslmode = \(sslMode) needs db.sslrootcert (the CA that signed the server certificate)")
        }
        let tlsEnabled = bool("amqp.tls", false)
        var tls: AMQPTLSConfiguration?
        if tlsEnabled {
            tls = AMQPTLSConfiguration(caCertificatePath: readablePath("amqp.cacert"), clientCertificatePath: readablePath("amqp.cert"),
                                       clientKeyPath: readablePath("amqp.key"), verifyPeer: bool("amqp.verify_peer", true),
                                       verifyHostname: bool("amqp.verify_hostname", true))
            if tls?.verifyPeer == true && tls?.caCertificatePath == nil { problems.append("amqp.tls = true with peer verification needs amqp.cacert") }
            if (tls?.clientCertificatePath == nil) != (tls?.clientKeyPath == nil) { problems.append("amqp.cert and amqp.key go together") }
        }
        let password = optionalString("amqp.password")
        if password == nil { problems.append("no broker password: provide the credential amqp-password (or RECEIVABLESD_AMQP_PASSWORD)") }
        let broker = AMQPConfiguration(
            host: string("amqp.host", "127.0.0.1"), port: int("amqp.port", tlsEnabled ? 5671 : 5672, 1...65535),
            virtualHost: string("amqp.vhost", "/"), user: string("amqp.user", "receivablesd"), password: password ?? "",
            heartbeatSeconds: int("amqp.heartbeat", 30, 0...600), tls: tls)
        var configuration = DaemonConfiguration(database: database, broker: broker)
        configuration.topology.inboundExchange = string("inbound_exchange", configuration.topology.inboundExchange)
        configuration.topology.eventsExchange = string("events_exchange", configuration.topology.eventsExchange)
        configuration.topology.deadLetterExchange = string("dead_letter_exchange", configuration.topology.deadLetterExchange)
        configuration.topology.workQueue = string("work_queue", configuration.topology.workQueue)
        configuration.topology.deadLetterQueue = string("dead_letter_queue", configuration.topology.deadLetterQueue)
        configuration.topology.workQueueType = oneOf("work_queue_type", "quorum", ["quorum", "classic"])
        configuration.topology.deliveryLimit = int("delivery_limit", 20, 1...1000)
        configuration.topology.intakeQueue = string("intake_queue", configuration.topology.intakeQueue)
        configuration.topology.partitionExchange = string("partition_exchange", configuration.topology.partitionExchange)
        configuration.topology.partitionQueuePrefix = string("partition_queue_prefix", configuration.topology.partitionQueuePrefix)
        configuration.topology.partitions = int("partitions", 16, 1...1024)
        configuration.partitionLeaseMilliseconds = int("partition_lease_seconds", 6, 2...300) * 1000
        configuration.routerBatchSize = int("router_batch_size", 32, 1...1_000)
        configuration.consumers = int("consumers", 2, 1...64)
        configuration.prefetch = UInt16(int("prefetch", 256, 1...10_000))
        if configuration.routerBatchSize > Int(configuration.prefetch) {
            problems.append("router_batch_size = \(configuration.routerBatchSize) exceeds prefetch = \(configuration.prefetch): the order guard waits for early messages within the prefetch window")
        }
        configuration.batchSize = int("batch_size", 256, 1...1_000)
        configuration.batchLingerMilliseconds = int("batch_linger_ms", 2, 0...1_000)
        configuration.maximumBodyBytes = int("max_body_bytes", 1_048_576, 1_024...67_108_864)
        configuration.maximumJSONDepth = int("max_json_depth", 32, 4...256)
        configuration.holdSeconds = Int64(int("hold_seconds", 7 * 24 * 3600, 1...366 * 24 * 3600))
        configuration.housekeepingIntervalSeconds = int("housekeeping_seconds", 5, 1...3600)
        configuration.eventSource = string("event_source", "receivablesd")
        configuration.logLevel = oneOf("log_level", "info", ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        configuration.httpHost = string("http.host", "127.0.0.1")
        if optionalString("http.port") != nil || reader.int(forKey: "http.port") != nil {
            configuration.httpPort = int("http.port", 9464, 1...65535)
        }
        configuration.policiesFile = optionalString("policies_file")
        configuration.cursorSecret = optionalString("cursor.secret")
        if let secret = configuration.cursorSecret, secret.utf8.count < 16 {
            problems.append("cursor.secret (credential cursor-secret): at least 16 bytes (it signs payment-history cursors)")
        }
        if let prefixes = reader.stringArray(forKey: "reply_queue_prefixes") {
            if prefixes.isEmpty || prefixes.contains(where: \.isEmpty) {
                problems.append("reply_queue_prefixes: list non-empty queue name prefixes (e.g. amq.gen-, portal.)")
            } else {
                configuration.replyQueuePrefixes = prefixes
            }
        }
        configuration.dunningIntervalSeconds = int("dunning_interval_seconds", 60, 0...86_400)
        if let codes = reader.stringArray(forKey: "hard_decline_codes") {
            if codes.contains(where: { $0.trimmed.isEmpty || $0.utf8.count > 64 }) {
                problems.append("hard_decline_codes: list failure codes of 1 to 64 characters")
            } else {
                configuration.hardDeclineCodes = Set(codes.map { PaymentRetrySchedule.normalised($0) })
            }
        }
        if let publishers = publishersFromFile { configuration.publishers = PublisherPolicy(allowed: publishers) }
        // RECEIVABLESD_PUBLISHERS="billing=customer.upserted,invoice.*;gateway=payment.*" overrides the file.
        if let text = environment["RECEIVABLESD_PUBLISHERS"], !text.isEmpty {
            var map: [String: [String]] = [:]
            for entry in text.split(separator: ";") {
                let parts = entry.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { problems.append("RECEIVABLESD_PUBLISHERS: '\(entry)' is not user=type,type"); continue }
                map[String(parts[0]).trimmed] = parts[1].split(separator: ",").map { String($0).trimmed }
            }
            configuration.publishers = PublisherPolicy(allowed: map)
        }
        for (user, patterns) in configuration.publishers.allowed {
            for pattern in patterns where !PublisherPolicy.isValidPattern(pattern) {
                problems.append("publishers.\(user): '\(pattern)' is not a message type or a prefix ending in .*")
            }
        }
        return problems.isEmpty ? configuration : nil
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}

/// The process environment as a dictionary.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
