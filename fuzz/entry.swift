// libFuzzer entry for one bank statement parser, chosen at compile time by fuzz/run.sh
// (-D FUZZ_CAMT, FUZZ_BAI2 or FUZZ_MT940); built outside SwiftPM in the same module as the
// BankFormats sources, so internal API is reachable.

#if FUZZ_CAMT
private let formats: [BankFormat?] = [.camt053, .camt054, nil]
#elseif FUZZ_BAI2
private let formats: [BankFormat?] = [.bai2, nil]
#elseif FUZZ_MT940
private let formats: [BankFormat?] = [.mt940, nil]
#else
#error("build with -D FUZZ_CAMT, FUZZ_BAI2 or FUZZ_MT940")
#endif

/// Parses the input twice, all at once and fed in chunks whose size comes from the first byte, and
/// requires both to agree: chunk boundaries must never change the result. A BankFormatError is an
/// expected outcome for random bytes; a crash, a hang, a sanitizer report or disagreement is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let chunkSize = 1 + Int(bytes.first ?? 0) * 3
    for format in formats {
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
