import CLibpq
#if canImport(Glibc)
import Glibc
#endif

/// A value bound to a `$n` parameter. Text is sent as text (PostgreSQL casts it to the column
/// type); bytes are sent in binary format so bodies arrive in `bytea` byte-identical.
public enum PostgresValue: Sendable, Hashable {
    case text(String)
    case bytes([UInt8])
    case null

    public static func int(_ value: Int64) -> PostgresValue { .text(String(value)) }
    public static func int(_ value: Int) -> PostgresValue { .text(String(value)) }
    public static func bool(_ value: Bool) -> PostgresValue { .text(value ? "t" : "f") }
    public static func optional(_ value: String?) -> PostgresValue { value.map(PostgresValue.text) ?? .null }
}

/// Why a PostgreSQL call failed. `isTransient` separates "try again later" (connection lost,
/// server shutting down, serialization failure, deadlock) from bugs and constraint violations.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let sqlState: String?
    public let message: String
    public let connectionLost: Bool

    public init(sqlState: String?, message: String, connectionLost: Bool) {
        self.sqlState = sqlState
        self.message = message
        self.connectionLost = connectionLost
    }

    public var isTransient: Bool {
        if connectionLost { return true }
        guard let state = sqlState else { return false }
        // 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now;
        // 40001 serialization failure, 40P01 deadlock: retry the transaction.
        return state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "53300"
    }

    public var isRetryableConflict: Bool { sqlState == "40001" || sqlState == "40P01" }
    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String { "PostgreSQL error\(sqlState.map { " \($0)" } ?? ""): \(message)" }
}

/// Rows of one result, copied out of the `PGresult` so it can be cleared at once.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    public let affectedRows: Int

    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }
    public subscript(row: Int) -> PostgresRow { PostgresRow(columns: columns, values: rows[row]) }
    public var all: [PostgresRow] { rows.map { PostgresRow(columns: columns, values: $0) } }
    public var first: PostgresRow? { rows.first.map { PostgresRow(columns: columns, values: $0) } }
}

/// One row; accessors name the column, and a wrong column name or type is a bug (precondition).
public struct PostgresRow: Sendable {
    public let columns: [String]
    public let values: [String?]

    func index(_ column: String) -> Int {
        guard let index = columns.firstIndex(of: column) else { preconditionFailure("no column \(column) in \(columns)") }
        return index
    }

    public func string(_ column: String) -> String? { values[index(column)] }
    public func requiredString(_ column: String) -> String {
        guard let value = string(column) else { preconditionFailure("column \(column) is NULL") }
        return value
    }
    public func int64(_ column: String) -> Int64? {
        guard let text = string(column) else { return nil }
        guard let value = Int64(text) else { preconditionFailure("column \(column) is not an integer: \(text)") }
        return value
    }
    public func requiredInt64(_ column: String) -> Int64 {
        guard let value = int64(column) else { preconditionFailure("column \(column) is NULL") }
        return value
    }
    public func bool(_ column: String) -> Bool? { string(column).map { $0 == "t" } }
    /// Decodes a `bytea` column returned in text (hex) format: `\x0a1b...`.
    public func bytes(_ column: String) -> [UInt8]? {
        guard let text = string(column) else { return nil }
        return PostgresRow.decodeHexBytea(text)
    }

    static func decodeHexBytea(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        precondition(utf8.count >= 2 && utf8[0] == UInt8(ascii: "\\") && utf8[1] == UInt8(ascii: "x"), "bytea not in hex format")
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: preconditionFailure("bad hex digit in bytea")
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index + 1 < utf8.count {
            out.append(nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
            index += 2
        }
        return out
    }
}

/// Settings for one libpq connection, rendered to a conninfo string with every value quoted.
public struct PostgresConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: String?
    /// libpq sslmode: disable, prefer, require, verify-ca, verify-full.
    public var sslMode: String
    public var sslRootCert: String?
    public var sslCert: String?
    public var sslKey: String?
    public var connectTimeoutSeconds: Int
    public var applicationName: String

    public init(host: String, port: Int, database: String, user: String, password: String?,
                sslMode: String = "prefer", sslRootCert: String? = nil, sslCert: String? = nil, sslKey: String? = nil,
                connectTimeoutSeconds: Int = 5, applicationName: String = "receivablesd") {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.sslMode = sslMode
        self.sslRootCert = sslRootCert
        self.sslCert = sslCert
        self.sslKey = sslKey
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.applicationName = applicationName
    }

    /// keyword='value' pairs; quotes and backslashes escaped as libpq requires.
    var connectionString: String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'"
        }
        var parts = [
            "host=\(quoted(host))", "port=\(port)", "dbname=\(quoted(database))", "user=\(quoted(user))",
            "sslmode=\(quoted(sslMode))", "connect_timeout=\(connectTimeoutSeconds)",
            "application_name=\(quoted(applicationName))",
            // Detect a dead server on an idle connection within ~30 s.
            "keepalives=1", "keepalives_idle=10", "keepalives_interval=5", "keepalives_count=3",
        ]
        if let password { parts.append("password=\(quoted(password))") }
        if let sslRootCert { parts.append("sslrootcert=\(quoted(sslRootCert))") }
        if let sslCert { parts.append("sslcert=\(quoted(sslCert))") }
        if let sslKey { parts.append("sslkey=\(quoted(sslKey))") }
        return parts.joined(separator: " ")
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var remainder = self[...]
        while let range = remainder.range(of: target) {
            result += remainder[..<range.lowerBound]
            result += replacement
            remainder = remainder[range.upperBound...]
        }
        return result + remainder
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        let targetCount = target.count
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) {
                return index..<self.index(index, offsetBy: targetCount)
            }
            index = self.index(after: index)
        }
        return nil
    }
}

/// How much one connection talked to the server: statements executed and round trips waited
/// for (a pipeline sync, a synchronous statement, a statement's first preparation). For tests
/// and benchmarks that count what a message costs; never used for a decision.
public struct PostgresStatistics: Sendable, Equatable {
    public var statements = 0
    public var roundTrips = 0

    public init(statements: Int = 0, roundTrips: Int = 0) {
        self.statements = statements
        self.roundTrips = roundTrips
    }

    public static func - (lhs: PostgresStatistics, rhs: PostgresStatistics) -> PostgresStatistics {
        PostgresStatistics(statements: lhs.statements - rhs.statements, roundTrips: lhs.roundTrips - rhs.roundTrips)
    }
}

/// One libpq connection. Not thread-safe (libpq's rule): exactly one thread owns it at a time.
/// Statements are prepared on first use and cached by their SQL text, so every query is a
/// parameterised prepared statement; nothing is ever spliced into SQL text.
///
/// Inside a transaction, statements whose results the caller does not need (`execute`, and
/// BEGIN / SAVEPOINT / RELEASE) are sent in libpq pipeline mode without waiting; they run on
/// the server in the order sent, and the next statement that needs a result (`query`), the
/// end of a savepoint and COMMIT send a Sync and read them all. The first error among them is
/// thrown there, so an error surfaces inside the savepoint (the message) that sent the failing
/// statement, before that savepoint is released, unless the savepoint was released unchecked
/// (`transaction(checkingAtRelease: false)`), in which case the error fails the whole
/// transaction; either way nothing is committed unless every statement sent succeeded.
public final class PostgresConnection {
    private let handle: OpaquePointer
    private var preparedNames: [String: String] = [:]
    /// Names are never reused: a preparation that failed in a pipeline is forgotten and redone
    /// under a new name.
    private var nextPreparedNumber = 0
    public private(set) var transactionDepth = 0
    public private(set) var statistics = PostgresStatistics()

    /// A statement sent in pipeline mode whose result has not been read yet, in sending order.
    private struct Unread {
        let sql: String
        /// Set for the preparation of a statement (forgotten again if it did not succeed).
        let preparing: String?
        /// The caller waits for these rows (`query`, `queries`).
        var wanted = false
    }
    /// True while libpq is in pipeline mode: from the first unwaited statement to the next Sync.
    private var pipelining = false
    private var unread: [Unread] = []
    /// The command status (e.g. `COMMIT`, `ROLLBACK`) of the last statement of the last sync.
    private var lastCommandStatus = ""
    /// Savepoints released without checking what they sent (`transaction(checkingAtRelease: false)`)
    /// since the last sync: an error that sync reports may be theirs.
    private var uncheckedSavepoints = 0
    /// A sync failed while unchecked savepoints were outstanding: the error cannot be pinned on
    /// one savepoint, so the whole transaction fails; it can no longer commit, whatever a caller catches.
    private var transactionFailed = false

    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        guard let connection = PQconnectdb(configuration.connectionString) else {
            throw PostgresError(sqlState: nil, message: "out of memory creating connection", connectionLost: true)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = PostgresConnection.trimmedMessage(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(sqlState: nil, message: "cannot connect to \(configuration.host):\(configuration.port)/\(configuration.database): \(message)", connectionLost: true)
        }
        handle = connection
        // Notices (e.g. "relation already exists, skipping") would go to stderr otherwise.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit { PQfinish(handle) }

    public var isConnected: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The server's process id for this session (used to tell sessions apart in logs).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Runs a parameterised statement, prepared once per connection, and returns its rows.
    /// Statements sent before it without waiting are executed first (one round trip for all);
    /// if one of them failed, its error is thrown.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> PostgresRows {
        if pipelining {
            try send(sql, parameters, wanted: true)
            guard let rows = try synchronize().last else { preconditionFailure("a pipeline sync lost the result of \(sql)") }
            return rows
        }
        let name: String
        if let cached = preparedNames[sql] {
            name = cached
        } else {
            name = newPreparedName()
            statistics.roundTrips += 1
            let result = PQprepare(handle, name, sql, Int32(parameters.count), nil)
            _ = try check(result, sql: sql)
            preparedNames[sql] = name
        }
        statistics.statements += 1
        statistics.roundTrips += 1
        return try withParameters(parameters) { values, lengths, formats throws(PostgresError) in
            let result = PQexecPrepared(handle, name, Int32(parameters.count), values, lengths, formats, 0)
            return try check(result, sql: sql)
        }
    }

    /// Runs a parameterised statement whose result the caller does not need. Inside a
    /// transaction it is only sent (pipeline mode): it runs after everything sent before it, and
    /// its error, if any, is thrown by the next `query`, the end of the savepoint or COMMIT.
    /// Outside a transaction it runs at once, like `query`.
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) {
        guard transactionDepth > 0 else {
            try query(sql, parameters)
            return
        }
        try send(sql, parameters)
    }

    /// Runs several statements in one round trip inside a transaction (one after the other, after
    /// everything sent before) and returns each one's rows, in order; outside a transaction one
    /// by one, like `query`.
    public func queries(_ statements: [(sql: String, parameters: [PostgresValue])]) throws(PostgresError) -> [PostgresRows] {
        guard transactionDepth > 0, statements.count > 1 else {
            var all: [PostgresRows] = []
            for statement in statements { all.append(try query(statement.sql, statement.parameters)) }
            return all
        }
        for statement in statements { try send(statement.sql, statement.parameters, wanted: true) }
        let all = try synchronize()
        precondition(all.count == statements.count, "a pipeline sync lost results")
        return all
    }

    /// Executes everything sent without waiting and throws the first error among it.
    public func flush() throws(PostgresError) {
        _ = try synchronize()
    }

    /// Runs SQL text with no parameters and possibly several statements (migrations, BEGIN/COMMIT).
    @discardableResult
    public func simpleQuery(_ sql: String) throws(PostgresError) -> PostgresRows {
        // PQexec is not allowed in pipeline mode: what was sent runs (and is checked) first.
        _ = try synchronize()
        statistics.statements += 1
        statistics.roundTrips += 1
        return try check(PQexec(handle, sql), sql: sql)
    }

    /// Runs `body` in a transaction: COMMIT if it returns, ROLLBACK if it throws. Nested calls
    /// use savepoints, so one message of a batch can be rolled back without the others.
    ///
    /// A savepoint's statements are all executed and checked before the savepoint is released
    /// (one Sync at its end), so an error of a statement sent without waiting is thrown inside
    /// the savepoint that sent it; RELEASE itself is sent without waiting.
    ///
    /// With `checkingAtRelease: false` a savepoint is released without that Sync: what it sent is
    /// checked by the next statement that waits (one round trip less per savepoint). An error found
    /// then cannot be pinned on one savepoint, so it fails the whole transaction: it is thrown
    /// where it is found, no savepoint is rolled back to, and COMMIT is refused even if a caller
    /// caught it. For callers that fail the whole transaction on any `PostgresError` anyway (a
    /// batch of messages, isolated one by one afterwards).
    public func transaction<T>(checkingAtRelease: Bool = true, _ body: () throws -> T) throws -> T {
        let savepoint = transactionDepth == 0 ? nil : "sp\(transactionDepth)"
        if savepoint == nil {
            uncheckedSavepoints = 0
            transactionFailed = false
        }
        try sendUnprepared(savepoint.map { "SAVEPOINT \($0)" } ?? "BEGIN")
        transactionDepth += 1
        let value: T
        do {
            value = try body()
            if savepoint != nil {
                if checkingAtRelease { try flush() } else { uncheckedSavepoints += 1 }
            } else {
                if transactionFailed {
                    throw PostgresError(sqlState: "25P02", message: "a statement of this transaction failed after its savepoint was released: not committed",
                                        connectionLost: false)
                }
                let status = try commandStatus("COMMIT")
                // COMMIT of a failed transaction answers ROLLBACK: never report that as committed.
                guard status == "COMMIT" else {
                    throw PostgresError(sqlState: "25P02", message: "COMMIT was answered \(status): the transaction was rolled back", connectionLost: false)
                }
            }
        } catch {
            transactionDepth -= 1
            // A statement sent before the failure may have failed first: that is the real error
            // (without pipelining it would have been thrown before the body went on).
            var earlier: PostgresError?
            do { try flush() } catch let failure { earlier = failure }
            if isConnected {
                // The rollback's own failure would hide the real error; the connection is
                // discarded by the caller if it is broken. After an unpinned error no savepoint
                // is rolled back to (it could undo another savepoint's statements and let the
                // transaction go on): only the outermost ROLLBACK.
                if let savepoint {
                    if !transactionFailed { _ = try? simpleQuery("ROLLBACK TO SAVEPOINT \(savepoint); RELEASE SAVEPOINT \(savepoint)") }
                } else {
                    _ = try? simpleQuery("ROLLBACK")
                }
            }
            throw earlier ?? error
        }
        transactionDepth -= 1
        if let savepoint { try sendUnprepared("RELEASE SAVEPOINT \(savepoint)") }
        return value
    }

    // MARK: pipeline mode

    private func newPreparedName() -> String {
        defer { nextPreparedNumber += 1 }
        return "s\(nextPreparedNumber)"
    }

    private func enterPipelineMode() throws(PostgresError) {
        guard !pipelining else { return }
        guard PQenterPipelineMode(handle) == 1 else { throw protocolFailure("cannot enter pipeline mode") }
        pipelining = true
    }

    /// Sends a prepared statement (preparing it first if needed) without reading its result.
    private func send(_ sql: String, _ parameters: [PostgresValue], wanted: Bool = false) throws(PostgresError) {
        try enterPipelineMode()
        let name: String
        if let cached = preparedNames[sql] {
            name = cached
        } else {
            name = newPreparedName()
            guard PQsendPrepare(handle, name, sql, Int32(parameters.count), nil) == 1 else { throw protocolFailure("cannot send a statement") }
            preparedNames[sql] = name
            unread.append(Unread(sql: sql, preparing: name))
        }
        let sent = try withParameters(parameters) { values, lengths, formats in
            PQsendQueryPrepared(handle, name, Int32(parameters.count), values, lengths, formats, 0)
        }
        guard sent == 1 else { throw protocolFailure("cannot send a statement") }
        unread.append(Unread(sql: sql, preparing: nil, wanted: wanted))
        statistics.statements += 1
    }

    /// Sends fixed SQL text without parameters (transaction control) without reading its result.
    private func sendUnprepared(_ sql: String, wanted: Bool = false) throws(PostgresError) {
        try enterPipelineMode()
        guard PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, 0) == 1 else { throw protocolFailure("cannot send \(sql)") }
        unread.append(Unread(sql: sql, preparing: nil, wanted: wanted))
        statistics.statements += 1
    }

    /// Runs fixed SQL text after everything sent and returns its command status (COMMIT).
    private func commandStatus(_ sql: String) throws(PostgresError) -> String {
        try sendUnprepared(sql, wanted: true)
        try synchronize()
        return lastCommandStatus
    }

    /// Sends a Sync, reads every unread result in order and leaves pipeline mode. Returns the
    /// rows of the statements waited for, in order; throws the first error (the server skipped
    /// everything after it).
    @discardableResult
    private func synchronize() throws(PostgresError) -> [PostgresRows] {
        guard pipelining else { return [] }
        statistics.roundTrips += 1
        guard PQpipelineSync(handle) == 1 else { throw abandonPipeline("cannot send a pipeline sync") }
        var firstError: PostgresError?
        var rows: [PostgresRows] = []
        for entry in unread {
            guard let result = PQgetResult(handle) else { throw abandonPipeline("a pipelined statement returned no result: \(entry.sql)") }
            let status = PQresultStatus(result)
            switch status {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if entry.wanted {
                    rows.append(PostgresConnection.copyRows(result))
                    lastCommandStatus = String(cString: PQcmdStatus(result))
                }
            case PGRES_PIPELINE_ABORTED:
                if let name = entry.preparing { forget(prepared: name) }
            default:
                if let name = entry.preparing { forget(prepared: name) }
                if firstError == nil { firstError = error(of: result) }
            }
            PQclear(result)
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(handle) {
                let extraStatus = PQresultStatus(extra)
                PQclear(extra)
                if extraStatus == PGRES_PIPELINE_SYNC { throw abandonPipeline("a pipeline sync arrived before all results") }
            }
        }
        guard let sync = PQgetResult(handle) else { throw abandonPipeline("no pipeline sync result") }
        let syncStatus = PQresultStatus(sync)
        PQclear(sync)
        guard syncStatus == PGRES_PIPELINE_SYNC else { throw abandonPipeline("expected a pipeline sync result, got \(String(cString: PQresStatus(syncStatus)))") }
        unread.removeAll()
        guard PQexitPipelineMode(handle) == 1 else { throw abandonPipeline("cannot leave pipeline mode") }
        pipelining = false
        if firstError != nil && uncheckedSavepoints > 0 { transactionFailed = true }
        uncheckedSavepoints = 0
        if let firstError { throw firstError }
        return rows
    }

    private func forget(prepared name: String) {
        if let sql = preparedNames.first(where: { $0.value == name })?.key { preparedNames[sql] = nil }
    }

    /// The pipeline is in a state we cannot follow: treat the connection as lost (the caller
    /// reconnects; the transaction was not committed).
    private func abandonPipeline(_ what: String) -> PostgresError {
        let detail = PostgresConnection.trimmedMessage(PQerrorMessage(handle))
        unread.removeAll()
        pipelining = false
        preparedNames.removeAll()
        PQreset(handle)
        return PostgresError(sqlState: nil, message: "\(what): \(detail)", connectionLost: true)
    }

    private func protocolFailure(_ what: String) -> PostgresError {
        PostgresError(sqlState: nil, message: "\(what): \(PostgresConnection.trimmedMessage(PQerrorMessage(handle)))", connectionLost: !isConnected)
    }

    // MARK: LISTEN/NOTIFY

    /// Waits until a notification arrives or `timeoutMilliseconds` pass; returns the channels notified.
    public func waitForNotifications(timeoutMilliseconds: Int32) throws(PostgresError) -> [String] {
        try synchronize()
        var channels = drainNotifications()
        if !channels.isEmpty { return channels }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, timeoutMilliseconds)
        if ready > 0 {
            guard PQconsumeInput(handle) == 1 else {
                throw PostgresError(sqlState: nil, message: PostgresConnection.trimmedMessage(PQerrorMessage(handle)), connectionLost: true)
            }
            channels = drainNotifications()
        }
        return channels
    }

    private func drainNotifications() -> [String] {
        var channels: [String] = []
        while let notification = PQnotifies(handle) {
            channels.append(String(cString: notification.pointee.relname))
            PQfreemem(notification)
        }
        return channels
    }

    // MARK: results

    private func check(_ result: OpaquePointer?, sql: String) throws(PostgresError) -> PostgresRows {
        guard let result else {
            throw PostgresError(sqlState: nil, message: PostgresConnection.trimmedMessage(PQerrorMessage(handle)), connectionLost: !isConnected)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresConnection.copyRows(result)
        default:
            throw error(of: result)
        }
    }

    private func error(of result: OpaquePointer) -> PostgresError {
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let message = PostgresConnection.trimmedMessage(PQresultErrorMessage(result))
        return PostgresError(sqlState: sqlState, message: message, connectionLost: !isConnected)
    }

    private static func copyRows(_ result: OpaquePointer) -> PostgresRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, rows: rows, affectedRows: affected)
    }

    static func trimmedMessage(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "unknown error" }
        var text = String(cString: pointer)
        while text.last == "\n" || text.last == " " { text.removeLast() }
        return text
    }

    /// Hands libpq C arrays of the parameters for the duration of `body`; copies are freed after.
    private func withParameters<T>(
        _ parameters: [PostgresValue],
        _ body: ([UnsafePointer<CChar>?], [Int32], [Int32]) throws(PostgresError) -> T
    ) throws(PostgresError) -> T {
        var buffers: [UnsafeMutableRawPointer?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        buffers.reserveCapacity(parameters.count)
        defer { for buffer in buffers { free(buffer) } }
        for parameter in parameters {
            switch parameter {
            case .null:
                buffers.append(nil); lengths.append(0); formats.append(0)
            case .text(let text):
                // PostgreSQL text cannot hold U+0000 and a C string would end there silently:
                // store U+FFFD instead, so nothing after it is lost.
                let safe = text.utf8.contains(0) ? String(text.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : Character($0) }) : text
                buffers.append(UnsafeMutableRawPointer(strdup(safe))); lengths.append(0); formats.append(0)
            case .bytes(let bytes):
                let buffer = malloc(max(bytes.count, 1))
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress { buffer?.copyMemory(from: base, byteCount: bytes.count) }
                }
                buffers.append(buffer); lengths.append(Int32(bytes.count)); formats.append(1)
            }
        }
        let pointers = buffers.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } }
        return try body(pointers, lengths, formats)
    }
}
