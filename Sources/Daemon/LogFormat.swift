import CSystemd  // release builds resolve timespec/clock_gettime through this module (MemberImportVisibility)
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One line per event on stdout, logfmt (`ts=… level=… msg="…" key=value`), which journald
/// stores as-is and which greps well. Every message and value passes `Redaction.mask` first:
/// no card number, IBAN or long account number reaches the journal.
public struct LogfmtHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// Shared by every logger of the process, so `systemctl reload` changes the level at once.
    let level: LogLevelControl
    let label: String
    static let lock = Mutex<Void>(())

    public init(label: String, level: LogLevelControl) {
        self.label = label
        self.level = level
    }

    public var logLevel: Logger.Level {
        get { level.level }
        set { level.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "ts=\(LogfmtHandler.timestamp()) level=\(event.level) msg=\(LogfmtHandler.quote(Redaction.mask("\(event.message)")))"
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(LogfmtHandler.quote(Redaction.mask("\(value)")))"
        }
        line += "\n"
        // One write(2) per line under a lock: lines from several threads never interleave.
        var bytes = Array(line.utf8)
        LogfmtHandler.lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
                if written <= 0 { break }
                offset += written
            }
        }
    }

    static func quote(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }
        guard needsQuotes else { return text }
        var out = "\""
        for character in text {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return ARDomainInstant.render(seconds: Int64(now.tv_sec), nanoseconds: Int64(now.tv_nsec))
    }
}

import ARDomain

/// The process-wide log level, changeable at run time (reload).
public final class LogLevelControl: Sendable {
    private let raw: Atomic<Int>
    public init(_ level: Logger.Level) { raw = Atomic(Logger.Level.allCases.firstIndex(of: level) ?? 2) }
    public var level: Logger.Level {
        get { Logger.Level.allCases[raw.load(ordering: .relaxed)] }
        set { raw.store(Logger.Level.allCases.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }
}

enum ARDomainInstant {
    static func render(seconds: Int64, nanoseconds: Int64) -> String {
        Instant(microsecondsSinceEpoch: seconds * 1_000_000 + nanoseconds / 1000).description
    }
}

/// Masks what must never be logged (SPEC section 6; issue: no card data, no full account
/// numbers): runs of 12+ digits (spaces or dashes between groups allowed) keep their last four;
/// IBAN-shaped tokens keep country code and last four.
public enum Redaction {
    public static func mask(_ text: String) -> String {
        let characters = Array(text)
        var out = ""
        out.reserveCapacity(characters.count)
        var index = 0
        while index < characters.count {
            if let end = ibanEnd(characters, from: index) {
                let token = characters[index..<end]
                out += String(token.prefix(2)) + String(repeating: "*", count: max(0, token.count - 6)) + String(token.suffix(4))
                index = end
                continue
            }
            if characters[index].isASCII && characters[index].isNumber, index == 0 || !(characters[index - 1].isLetter || characters[index - 1].isNumber) {
                // Longest run of digits with single spaces/dashes between them.
                var end = index
                var digits = 0
                var cursor = index
                while cursor < characters.count {
                    let c = characters[cursor]
                    if c.isASCII && c.isNumber { digits += 1; cursor += 1; end = cursor; continue }
                    if (c == " " || c == "-"), cursor + 1 < characters.count, characters[cursor + 1].isASCII, characters[cursor + 1].isNumber, digits > 0 {
                        cursor += 1; continue
                    }
                    break
                }
                if digits >= 12 {
                    var seen = 0
                    for c in characters[index..<end] {
                        if c.isNumber {
                            seen += 1
                            out.append(seen > digits - 4 ? c : "*")
                        } else {
                            out.append(c)
                        }
                    }
                    index = end
                    continue
                }
                out += String(characters[index..<end])
                index = end
                continue
            }
            out.append(characters[index])
            index += 1
        }
        return out
    }

    /// An IBAN: two capital letters, two digits, 10–30 capitals/digits, not inside a word.
    static func ibanEnd(_ c: [Character], from start: Int) -> Int? {
        guard start + 14 <= c.count, start == 0 || !(c[start - 1].isLetter || c[start - 1].isNumber) else { return nil }
        func upper(_ x: Character) -> Bool { x.isASCII && x.isUppercase }
        func digit(_ x: Character) -> Bool { x.isASCII && x.isNumber }
        guard upper(c[start]), upper(c[start + 1]), digit(c[start + 2]), digit(c[start + 3]) else { return nil }
        var end = start + 4
        while end < c.count, end - start < 34, upper(c[end]) || digit(c[end]) { end += 1 }
        let body = end - start - 4
        guard body >= 10 else { return nil }
        // Must contain digits beyond the check digits: words like "ABCD..." are not IBANs.
        guard c[(start + 4)..<end].filter(digit).count >= 6 else { return nil }
        return end
    }
}
