import ARDomain

/// What a format parser hands on, in file order: the entries of a statement, then the statement.
struct BankEventSink {
    let entryFound: (BankEntry) -> Void
    let statementCompleted: (BankStatement) -> Void
}

/// A format parser fed with chunks of the file. Errors are final: after one, the parser is not fed again.
protocol BankChunkParser: AnyObject {
    func feed(_ chunk: UnsafeRawBufferPointer) throws(BankFormatError)
    func finish() throws(BankFormatError)
}

/// Streaming parser for large files: feed chunks of any size, entries and statements arrive through the
/// callbacks as soon as they are complete, memory stays bounded by the longest line / element.
///
/// Unlike `BankFormats.parse(_:)`, entries are delivered before the whole file has been validated: a
/// caller that must be all-or-nothing has to discard what it received when `feed` or `finish` throws.
public final class BankStreamParser {
    private let requestedFormat: BankFormat?
    private let limits: BankParseLimits
    private let sink: BankEventSink
    private var parser: (any BankChunkParser)?
    private var prefix: [UInt8] = []
    private var finished = false
    public private(set) var detectedFormat: BankFormat?

    /// Bytes collected before the format is decided when `format` is nil (auto-detection).
    static let detectionPrefixBytes = 4096

    /// - Parameters:
    ///   - format: the format, or nil to detect it from the first bytes.
    ///   - onEntry: called for each entry, before the `onStatement` of its statement.
    ///   - onStatement: called when a statement is complete (its `entries` is empty; `entryCount` is set).
    public init(
        format: BankFormat?, limits: BankParseLimits = BankParseLimits(),
        onEntry: @escaping (BankEntry) -> Void, onStatement: @escaping (BankStatement) -> Void
    ) {
        self.requestedFormat = format
        self.limits = limits
        self.sink = BankEventSink(entryFound: onEntry, statementCompleted: onStatement)
    }

    public func feed(_ chunk: UnsafeRawBufferPointer) throws(BankFormatError) {
        precondition(!finished, "BankStreamParser fed after finish")
        if let parser {
            try parser.feed(chunk)
            return
        }
        prefix.append(contentsOf: chunk)
        if prefix.count >= Self.detectionPrefixBytes { try startParser() }
    }

    public func feed(_ bytes: [UInt8]) throws(BankFormatError) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(BankFormatError) in try feed(buffer) } }.get()
    }

    /// Ends the input; checks what can only be checked at the end (trailers, open statements).
    public func finish() throws(BankFormatError) {
        precondition(!finished, "BankStreamParser finished twice")
        finished = true
        if parser == nil { try startParser() }
        try parser?.finish()
    }

    private func startParser() throws(BankFormatError) {
        let format: BankFormat
        if let requestedFormat {
            format = requestedFormat
        } else if let detected = BankFormats.detectFormat(prefix: prefix) {
            format = detected
        } else {
            let message = prefix.isEmpty ? "file is empty" : "not a camt.053/camt.054, BAI2 or MT940 file"
            throw BankFormatError(format: nil, position: .file, message: message)
        }
        detectedFormat = format
        let created: any BankChunkParser
        switch format {
        case .camt053, .camt054: created = try CamtParser(expected: format, limits: limits, sink: sink)
        case .bai2: created = BAI2Parser(limits: limits, sink: sink)
        case .mt940: created = MT940Parser(limits: limits, sink: sink)
        }
        parser = created
        let buffered = prefix
        prefix = []
        try buffered.withUnsafeBytes { buffer in Result { () throws(BankFormatError) in try created.feed(buffer) } }.get()
    }
}

/// Entry points of the module.
public enum BankFormats {
    /// Parses a whole file held in memory, all-or-nothing: statements come back only when every byte
    /// validated (balances, control totals, structure); otherwise the first problem is thrown.
    public static func parse(
        _ bytes: [UInt8], format: BankFormat? = nil, limits: BankParseLimits = BankParseLimits()
    ) throws(BankFormatError) -> [BankStatement] {
        guard bytes.count <= limits.maximumInputBytes else {
            throw BankFormatError(
                format: format, position: .file,
                message: "file of \(bytes.count) bytes exceeds the limit of \(limits.maximumInputBytes)")
        }
        let collector = StatementCollector()
        let parser = BankStreamParser(
            format: format, limits: limits, onEntry: { collector.pending.append($0) },
            onStatement: { statement in
                var complete = statement
                complete.entries = collector.pending
                collector.pending = []
                collector.statements.append(complete)
            })
        // Feed in slices so no single XML chunk hits libxml2's 10 MB lookup limit.
        let sliceBytes = 256 << 10
        var start = 0
        while start < bytes.count {
            let end = min(start + sliceBytes, bytes.count)
            try bytes[start..<end].withUnsafeBytes { buffer in
                Result { () throws(BankFormatError) in try parser.feed(buffer) }
            }.get()
            start = end
        }
        try parser.finish()
        return collector.statements
    }

    /// Guesses the format from the first bytes of a file (4 KiB is plenty): XML with a camt.053 or
    /// camt.054 root, a BAI2 `01,` file header, or an MT940 message (`{1:` header, or `:20:` tag lines,
    /// possibly after a few bank-specific header lines). Nil when none fits.
    public static func detectFormat(prefix: some Collection<UInt8>) -> BankFormat? {
        var bytes = Array(prefix.prefix(64 << 10))
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let firstVisible = bytes.firstIndex(where: { !isBlankOrBreak($0) }) else { return nil }
        let content = bytes[firstVisible...]
        if content.first == UInt8(ascii: "<") {
            let text = String(decoding: content, as: UTF8.self)
            if text.contains("camt.054") || text.contains("BkToCstmrDbtCdtNtfctn") { return .camt054 }
            if text.contains("camt.053") || text.contains("BkToCstmrStmt") { return .camt053 }
            return nil
        }
        if content.starts(with: Array("01,".utf8)) { return .bai2 }
        if content.starts(with: Array("{1:".utf8)) || startsWithTag(content) { return .mt940 }
        // Some banks (e.g. ABN AMRO) put a few header lines before the first tag.
        var lineStart = content.startIndex
        var linesSeen = 0
        while lineStart < content.endIndex, linesSeen < 8 {
            let lineEnd = content[lineStart...].firstIndex(of: 0x0A) ?? content.endIndex
            let line = content[lineStart..<lineEnd]
            if line.starts(with: Array(":20:".utf8)) || line.starts(with: Array("{4:".utf8)) { return .mt940 }
            lineStart = lineEnd == content.endIndex ? lineEnd : lineEnd + 1
            linesSeen += 1
        }
        return nil
    }

    /// `:NN:` or `:NNa:`: an MT940 field tag (snippets may start with any tag, not only `:20:`).
    static func startsWithTag(_ bytes: ArraySlice<UInt8>) -> Bool {
        let start = bytes.startIndex
        func digit(_ offset: Int) -> Bool { bytes.count > offset && bytes[start + offset] >= 0x30 && bytes[start + offset] <= 0x39 }
        guard bytes.count >= 4, bytes[start] == UInt8(ascii: ":"), digit(1), digit(2) else { return false }
        if bytes[start + 3] == UInt8(ascii: ":") { return true }
        return bytes.count >= 5 && bytes[start + 3] >= 0x41 && bytes[start + 3] <= 0x5A && bytes[start + 4] == UInt8(ascii: ":")
    }

    static func isBlankOrBreak(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}

/// Collects statements for the all-or-nothing API (a class so the stream callbacks can share it).
private final class StatementCollector {
    var pending: [BankEntry] = []
    var statements: [BankStatement] = []
}

/// Splits chunks into physical lines for the line formats (MT940, BAI2): LF or CRLF (or lone CR)
/// endings, trailing blanks and a trailing Ctrl-Z stripped, a UTF-8 BOM on line 1 dropped, and a line
/// longer than the limit refused with its number, so a 10 MB "line" costs at most the limit in memory.
struct LineSplitter {
    let maximumLineBytes: Int
    let format: BankFormat
    private(set) var lineNumber = 0
    private var pending: [UInt8] = []
    private var pendingOverflow = false
    private var lastWasCR = false

    init(maximumLineBytes: Int, format: BankFormat) {
        self.maximumLineBytes = maximumLineBytes
        self.format = format
        pending.reserveCapacity(256)
    }

    /// Calls `handle(line, lineNumber)` for each complete line in `chunk`.
    mutating func feed(
        _ chunk: UnsafeRawBufferPointer, _ handle: (ArraySlice<UInt8>, Int) throws(BankFormatError) -> Void
    ) throws(BankFormatError) {
        let bytes = chunk.bindMemory(to: UInt8.self)
        var segmentStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A || byte == 0x0D {
                if byte == 0x0A && lastWasCR && index == segmentStart && pending.isEmpty && segmentStart == index {
                    // LF of a CRLF whose CR ended the previous line
                    lastWasCR = false
                    index += 1
                    segmentStart = index
                    continue
                }
                try append(UnsafeBufferPointer(rebasing: bytes[segmentStart..<index]))
                try emit(handle)
                lastWasCR = byte == 0x0D
                index += 1
                segmentStart = index
                continue
            }
            lastWasCR = false
            index += 1
        }
        try append(UnsafeBufferPointer(rebasing: bytes[segmentStart..<bytes.count]))
    }

    mutating func finish(_ handle: (ArraySlice<UInt8>, Int) throws(BankFormatError) -> Void) throws(BankFormatError) {
        if !pending.isEmpty { try emit(handle) }
    }

    private mutating func append(_ segment: UnsafeBufferPointer<UInt8>) throws(BankFormatError) {
        guard !segment.isEmpty else { return }
        guard pending.count + segment.count <= maximumLineBytes else {
            throw BankFormatError(
                format: format, position: .line(lineNumber + 1),
                message: "line longer than \(maximumLineBytes) bytes")
        }
        pending.append(contentsOf: segment)
    }

    private mutating func emit(_ handle: (ArraySlice<UInt8>, Int) throws(BankFormatError) -> Void) throws(BankFormatError) {
        lineNumber += 1
        var end = pending.endIndex
        while end > 0, pending[end - 1] == 0x20 || pending[end - 1] == 0x09 || pending[end - 1] == 0x1A { end -= 1 }
        var start = 0
        if lineNumber == 1, pending.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        try handle(pending[min(start, end)..<end], lineNumber)
        pending.removeAll(keepingCapacity: true)
    }
}
