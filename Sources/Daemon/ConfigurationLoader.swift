import AMQPClient
import PostgresClient
#if canImport(Glibc)
import Glibc
#endif

/// A configuration mistake, named so an operator can fix it.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

/// Reads settings from the environment (`RECEIVABLESD_*`) and secrets from the systemd
/// credentials directory (`$CREDENTIALS_DIRECTORY`, files `db-password`, `amqp-password`),
/// falling back to `RECEIVABLESD_CREDENTIALS_DIRECTORY` and then to `RECEIVABLESD_DB_PASSWORD` /
/// `RECEIVABLESD_AMQP_PASSWORD`.
public enum ConfigurationLoader {
    public static func load(environment: [String: String] = ProcessEnvironment.current) throws(ConfigurationError) -> DaemonConfiguration {
        var problems: [String] = []
        func string(_ key: String, _ fallback: String) -> String { environment[key].flatMap { $0.isEmpty ? nil : $0 } ?? fallback }
        func int(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>) -> Int {
            guard let text = environment[key], !text.isEmpty else { return fallback }
            guard let value = Int(text), range.contains(value) else {
                problems.append("\(key)=\(text): expected an integer in \(range.lowerBound)...\(range.upperBound)")
                return fallback
            }
            return value
        }
        func secret(_ file: String, _ key: String) -> String? {
            for directory in [environment["CREDENTIALS_DIRECTORY"], environment["RECEIVABLESD_CREDENTIALS_DIRECTORY"]].compactMap({ $0 }) {
                if let text = readFile(directory + "/" + file) { return text }
            }
            return environment[key]
        }
        let database = PostgresConfiguration(
            host: string("RECEIVABLESD_DB_HOST", "127.0.0.1"), port: int("RECEIVABLESD_DB_PORT", 5432, 1...65535),
            database: string("RECEIVABLESD_DB_NAME", "receivablesd"), user: string("RECEIVABLESD_DB_USER", "receivablesd"),
            password: secret("db-password", "RECEIVABLESD_DB_PASSWORD"), sslMode: string("RECEIVABLESD_DB_SSLMODE", "prefer"),
            sslRootCert: environment["RECEIVABLESD_DB_SSLROOTCERT"], sslCert: environment["RECEIVABLESD_DB_SSLCERT"],
            sslKey: environment["RECEIVABLESD_DB_SSLKEY"])
        let validModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
        if !validModes.contains(database.sslMode) {
            problems.append("RECEIVABLESD_DB_SSLMODE=\(database.sslMode): expected one of \(validModes.joined(separator: ", "))")
        }
        let amqpPassword = secret("amqp-password", "RECEIVABLESD_AMQP_PASSWORD")
        if amqpPassword == nil { problems.append("no broker password: set the credential amqp-password or RECEIVABLESD_AMQP_PASSWORD") }
        var tls: AMQPTLSConfiguration?
        if string("RECEIVABLESD_AMQP_TLS", "false") == "true" {
            tls = AMQPTLSConfiguration(caCertificatePath: environment["RECEIVABLESD_AMQP_CACERT"],
                                       clientCertificatePath: environment["RECEIVABLESD_AMQP_CERT"],
                                       clientKeyPath: environment["RECEIVABLESD_AMQP_KEY"],
                                       verifyPeer: string("RECEIVABLESD_AMQP_VERIFY_PEER", "true") == "true",
                                       verifyHostname: string("RECEIVABLESD_AMQP_VERIFY_HOSTNAME", "true") == "true")
        }
        let broker = AMQPConfiguration(
            host: string("RECEIVABLESD_AMQP_HOST", "127.0.0.1"), port: int("RECEIVABLESD_AMQP_PORT", tls == nil ? 5672 : 5671, 1...65535),
            virtualHost: string("RECEIVABLESD_AMQP_VHOST", "/"), user: string("RECEIVABLESD_AMQP_USER", "receivablesd"),
            password: amqpPassword ?? "", heartbeatSeconds: int("RECEIVABLESD_AMQP_HEARTBEAT", 30, 0...600), tls: tls)
        var configuration = DaemonConfiguration(database: database, broker: broker)
        configuration.consumers = int("RECEIVABLESD_CONSUMERS", 1, 1...64)
        configuration.prefetch = UInt16(int("RECEIVABLESD_PREFETCH", 64, 1...10_000))
        configuration.batchSize = int("RECEIVABLESD_BATCH_SIZE", 32, 1...1_000)
        configuration.maximumBodyBytes = int("RECEIVABLESD_MAX_BODY_BYTES", 1_048_576, 1_024...67_108_864)
        configuration.maximumJSONDepth = int("RECEIVABLESD_MAX_JSON_DEPTH", 32, 4...256)
        configuration.holdSeconds = Int64(int("RECEIVABLESD_HOLD_SECONDS", 7 * 24 * 3600, 1...366 * 24 * 3600))
        configuration.housekeepingIntervalSeconds = int("RECEIVABLESD_HOUSEKEEPING_SECONDS", 5, 1...3600)
        configuration.eventSource = string("RECEIVABLESD_EVENT_SOURCE", "receivablesd")
        configuration.logLevel = string("RECEIVABLESD_LOG_LEVEL", "info")
        if let port = environment["RECEIVABLESD_HTTP_PORT"], !port.isEmpty { configuration.httpPort = int("RECEIVABLESD_HTTP_PORT", 0, 1...65535) }
        configuration.topology.workQueueType = string("RECEIVABLESD_WORK_QUEUE_TYPE", "quorum")
        configuration.topology.workQueue = string("RECEIVABLESD_WORK_QUEUE", configuration.topology.workQueue)
        configuration.topology.inboundExchange = string("RECEIVABLESD_INBOUND_EXCHANGE", configuration.topology.inboundExchange)
        configuration.topology.eventsExchange = string("RECEIVABLESD_EVENTS_EXCHANGE", configuration.topology.eventsExchange)
        configuration.topology.deadLetterExchange = string("RECEIVABLESD_DEAD_LETTER_EXCHANGE", configuration.topology.deadLetterExchange)
        configuration.topology.deadLetterQueue = string("RECEIVABLESD_DEAD_LETTER_QUEUE", configuration.topology.deadLetterQueue)
        if !["quorum", "classic"].contains(configuration.topology.workQueueType) {
            problems.append("RECEIVABLESD_WORK_QUEUE_TYPE=\(configuration.topology.workQueueType): expected quorum or classic")
        }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(configuration.logLevel) {
            problems.append("RECEIVABLESD_LOG_LEVEL=\(configuration.logLevel): expected trace, debug, info, notice, warning, error or critical")
        }
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        return configuration
    }

    /// A secret file's contents without the trailing newline editors add; nil if unreadable.
    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > 65_536 { return nil }
        }
        while let last = bytes.last, last == 0x0a || last == 0x0d { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
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
