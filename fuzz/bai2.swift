// libFuzzer entry for the bai2 parser; built outside SwiftPM by fuzz/run.sh (same module as the
// BankFormats sources, so internal API is reachable).

/// Parses the input twice, all at once and fed in chunks whose size comes from the first byte, and
/// requires both to agree: chunk boundaries must never change the result. A BankFormatError is an
/// expected outcome for random bytes; a crash, a hang, a sanitizer report or disagreement is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let chunkSize = 1 + Int(bytes.first ?? 0) * 3
    for format in [BankFormat.bai2, BankFormat.bai2, nil] {
        let whole = outcome(bytes, format: format)
        let chunked = chunkedOutcome(bytes, format: format, chunkSize: chunkSize)
        precondition(whole == chunked, "chunked parse differs from whole parse")
    }
    return 0
}

/// Entries and statements in file order, or the error: what a caller can observe.
private enum Outcome: Equatable {
    case parsed([BankStatement])
    case refused(BankFormatError)
}

private func outcome(_ bytes: [UInt8], format: BankFormat?) -> Outcome {
    do {
        return .parsed(try BankFormats.parse(bytes, format: format))
    } catch {
        return .refused(error)
    }
}

private func chunkedOutcome(_ bytes: [UInt8], format: BankFormat?, chunkSize: Int) -> Outcome {
    var statements: [BankStatement] = []
    var pending: [BankEntry] = []
    let parser = BankStreamParser(
        format: format, onEntry: { pending.append($0) },
        onStatement: { statement in
            var complete = statement
            complete.entries = pending
            pending = []
            statements.append(complete)
        })
    do {
        var start = 0
        while start < bytes.count {
            let end = min(start + chunkSize, bytes.count)
            try parser.feed(Array(bytes[start..<end]))
            start = end
        }
        try parser.finish()
        return .parsed(statements)
    } catch {
        return .refused(error)
    }
}
