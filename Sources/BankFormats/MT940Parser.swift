import ARDomain

/// SWIFT MT940 customer statements (and MT942 interim reports, same tags) → entries.
///
/// Liberal in layout: `{1:…}{2:…}{4:` block headers or bare tag files, several messages per file, `-`
/// or `-}` message ends, CRLF/LF, trailing blanks, header lines before the first tag. Strict in money:
/// every amount must fit its currency, and `:60F/M:` + credits − debits must equal `:62F/M:` (for
/// MT942, the `:90D:`/`:90C:` counts and sums when present).
final class MT940Parser: BankChunkParser {
    private let limits: BankParseLimits
    private let sink: BankEventSink
    private var splitter: LineSplitter
    private var identity = EntryIdentity()

    /// The field being read: its tag, first line number and lines (continuations appended).
    private var fieldTag: String?
    private var fieldLine = 0
    private var fieldLines: [ArraySlice<UInt8>] = []
    private var fieldBytes = 0

    private var statement: StatementInProgress?
    /// A `:61:` waiting for the `:86:` that may follow it.
    private var pendingEntry: (entry: BankEntry, customerReference: String?, line: Int)?
    private var sawAnyTag = false
    /// The start line of a statement that ended (`-`) without a closing balance: acceptable only as
    /// the last statement of the file (see `completeStatement`).
    private var unclosedStatementLine: Int?
    /// A lone `-` met inside an `:86:` of the transaction block: a message end or wrapped text,
    /// which the next line tells.
    private var pendingDash: Int?

    /// Where in a statement the parser is. Entries live only in the transaction block, from the
    /// opening balance (MT942: the first `:61:`) to the closing balance (MT942: `:90D:`/`:90C:`).
    private enum Phase {
        /// `:20:` … `:60F:`: identification, account, sequence (MT942 also `:34F:`, `:13D:`).
        case header
        /// `:61:`/`:86:` pairs: nothing else may stand here, or an entry could be hidden in it.
        case entries
        /// `:62F:`/`:62M:`, `:64:`, `:65:`, a closing `:86:`; MT942 `:90D:`/`:90C:`.
        case trailer
    }

    private struct StatementInProgress {
        var statementID: String?
        var account: String?
        var sequence: String?
        var currency: Currency?
        var opening: BankBalance?
        var closing: BankBalance?
        var runningMinorUnits: Int64 = 0
        var creditCount = 0
        var creditMinorUnits: Int64 = 0
        var debitCount = 0
        var debitMinorUnits: Int64 = 0
        var entryCount = 0
        var startLine: Int
        var phase = Phase.header
    }

    init(limits: BankParseLimits, sink: BankEventSink) {
        self.limits = limits
        self.sink = sink
        self.splitter = LineSplitter(maximumLineBytes: limits.maximumLineBytes, format: .mt940)
    }

    func feed(_ chunk: UnsafeRawBufferPointer) throws(BankFormatError) {
        try splitter.feed(chunk) { (line, number) throws(BankFormatError) in try self.handleLine(line, number) }
    }

    func finish() throws(BankFormatError) {
        try splitter.finish { (line, number) throws(BankFormatError) in try self.handleLine(line, number) }
        if let dash = pendingDash {
            pendingDash = nil
            try endMessage(line: dash)
        }
        try flushField()
        try completeStatement(line: splitter.lineNumber, ending: .endOfFile)
        guard sawAnyTag else { throw error(.file, "no MT940 fields found") }
    }

    private func error(_ position: BankPosition, _ message: String) -> BankFormatError {
        BankFormatError(format: .mt940, position: position, message: message)
    }

    // MARK: Lines and fields

    private func handleLine(_ rawLine: ArraySlice<UInt8>, _ number: Int) throws(BankFormatError) {
        var line = rawLine
        // Block headers: "{1:F01…}{2:O940…}{4:" possibly followed by the first tag on the same line.
        if line.first == UInt8(ascii: "{") {
            if let blockFour = find(Array("{4:".utf8), in: line) {
                line = line[(blockFour + 3)...]
                if line.isEmpty { return }
            } else {
                return  // "{5:{CHK:…}}" trailers and other blocks carry no statement data
            }
        }
        if let dash = pendingDash {
            pendingDash = nil
            if !line.isEmpty, tagOf(line) == nil, line.first != UInt8(ascii: "{"), line.first != UInt8(ascii: "-") {
                // "-" inside the transaction block, then more text: a wrapped :86: line ("MARF/MND" +
                // "-" + "EV01…", ING), not the end of the message, which cannot come before the closing balance.
                fieldLines.append([UInt8(ascii: "-")])
                fieldBytes += 1
            } else {
                try endMessage(line: dash)
            }
        }
        if line.first == UInt8(ascii: "-"), line.count == 1 || line[line.startIndex + 1] == UInt8(ascii: "}") {
            if line.count == 1, statement?.phase == .entries, fieldTag == "86" {
                pendingDash = number  // decided by the next line
                return
            }
            try endMessage(line: number)
            return
        }
        if line.isEmpty { return }
        if let (tag, valueStart) = tagOf(line), !isWrappedText(tag: tag, value: line[valueStart...]) {
            try flushField()
            fieldTag = tag
            fieldLine = number
            fieldLines = [line[valueStart...]]
            fieldBytes = line.count
            sawAnyTag = true
            return
        }
        guard fieldTag != nil else {
            if statement == nil { return }  // bank-specific header lines before the first tag
            throw error(.line(number), "text outside any field")
        }
        fieldBytes += line.count
        guard fieldBytes <= limits.maximumFieldBytes else {
            throw error(.line(number), "field :\(fieldTag ?? ""): longer than \(limits.maximumFieldBytes) bytes")
        }
        // Anywhere in a statement (a field's continuation lines are text or nothing), a line shaped like
        // an entry or a broken tag would take an entry with it into the field before it.
        if statement != nil, let shape = (tagOf(line) == nil ? MT940Parser.lostEntryShape(line) : MT940Parser.statementLineShape(line)) {
            throw error(.line(number), "\(shape) (continuing :\(fieldTag ?? ""): of line \(fieldLine)): an entry would be lost")
        }
        fieldLines.append(line)
    }

    /// A continuation line that would silently swallow an entry if read as text: a field tag with
    /// a typo (`:6l:`, `: 61:`, `:61 :`), a known tag missing its colon (`61:`), or a statement line
    /// whose `:61:` tag is missing. Free text in `:86:` never looks like these.
    static func lostEntryShape(_ line: ArraySlice<UInt8>) -> String? {
        let start = line.startIndex
        if line.first == UInt8(ascii: ":"),
            let close = line[(start + 1)..<min(line.endIndex, start + 6)].firstIndex(of: UInt8(ascii: ":")), close >= start + 2,
            line[(start + 1)..<close].allSatisfy({ isDigit($0) || isUpperLetter($0) || isLowerLetter($0) || $0 == 0x20 })
        {
            return "'\(String(decoding: line[start...close], as: UTF8.self))' looks like a field tag but is not one"
        }
        for tag in MT940Parser.tagsWithoutColon where line.starts(with: tag) {
            return "'\(String(decoding: tag, as: UTF8.self))' is a field tag without its leading ':'"
        }
        return statementLineShape(line)
    }

    private static let tagsWithoutColon: [[UInt8]] = ["61:", "86:", "60F:", "60M:", "62F:", "62M:"].map { Array($0.utf8) }

    /// `YYMMDD [MMDD] C|D|RC|RD|EC|ED [funds code] amount,decimals type…`: the value of a `:61:`.
    /// Runs on every continuation line, so it reads the slice in place and gives up at the first misfit.
    static func statementLineShape(_ line: ArraySlice<UInt8>) -> String? {
        var index = line.startIndex
        let end = line.endIndex
        func digits(_ count: Int) -> Bool {
            guard index + count <= end, line[index..<(index + count)].allSatisfy(isDigit) else { return false }
            index += count
            return true
        }
        guard digits(6) else { return nil }
        _ = digits(4)
        if index < end, line[index] == UInt8(ascii: "R") || line[index] == UInt8(ascii: "E") { index += 1 }
        guard index < end, line[index] == UInt8(ascii: "C") || line[index] == UInt8(ascii: "D") else { return nil }
        index += 1
        if index < end, isUpperLetter(line[index]) { index += 1 }
        let amountStart = index
        while index < end, isDigit(line[index]) { index += 1 }
        guard index > amountStart, index < end, line[index] == UInt8(ascii: ",") else { return nil }
        index += 1
        while index < end, isDigit(line[index]) { index += 1 }
        guard index + 4 <= end, isUpperLetter(line[index]) else { return nil }
        return "a statement line without its :61: tag"
    }

    /// The tags of MT940 and MT942 (and the `:NS:` field some German banks add).
    static let vocabulary: Set<String> = [
        "13", "13D", "20", "21", "25", "25P", "28", "28C", "34F", "60F", "60M", "61", "62F", "62M", "64", "65", "86", "90C", "90D", "NS",
    ]

    /// A line of wrapped `:86:`/`:61:` text that happens to start with something tag-shaped, such as
    /// the rest of a time cut at a line end (`…T13` + `:12:11`). Only a tag MT940 does not have can be
    /// that, and only when its value is not an entry: `:6X:2303150315C100,00NTRF…` is an entry whose tag
    /// was mistyped, which the field check refuses (line named) rather than bury in text.
    private func isWrappedText(tag: String, value: ArraySlice<UInt8>) -> Bool {
        guard !MT940Parser.vocabulary.contains(tag), statement?.phase == .entries,
            let open = fieldTag, open == "86" || open == "61" || open == "NS"
        else { return false }
        return MT940Parser.statementLineShape(value) == nil
    }

    /// `:NN:` or `:NNa:` at the start of a line: the tag and where its value begins.
    private func tagOf(_ line: ArraySlice<UInt8>) -> (String, Int)? {
        let start = line.startIndex
        // `:NS:` "non-SWIFT" information field (German banks): numbered sub-fields, no entry.
        if line.starts(with: Array(":NS:".utf8)) { return ("NS", start + 4) }
        guard line.count >= 4, line[start] == UInt8(ascii: ":"), isDigit(line[start + 1]), isDigit(line[start + 2]) else {
            return nil
        }
        if line[start + 3] == UInt8(ascii: ":") {
            return (String(decoding: line[(start + 1)...(start + 2)], as: UTF8.self), start + 4)
        }
        if line.count >= 5, isUpperLetter(line[start + 3]), line[start + 4] == UInt8(ascii: ":") {
            return (String(decoding: line[(start + 1)...(start + 3)], as: UTF8.self), start + 5)
        }
        return nil
    }

    private func flushField() throws(BankFormatError) {
        guard let tag = fieldTag else { return }
        fieldTag = nil
        let lines = fieldLines
        fieldLines = []
        try handleField(tag: tag, lines: lines, line: fieldLine)
    }

    private func endMessage(line: Int) throws(BankFormatError) {
        try flushField()
        try completeStatement(line: line, ending: .messageEnd)
    }

    // MARK: Fields

    private func handleField(tag: String, lines: [ArraySlice<UInt8>], line: Int) throws(BankFormatError) {
        let firstLine = lines.first ?? []
        let text = { BankTextDecoding.decode(firstLine).trimmingBlanks() }
        if statement?.phase == .entries, !MT940Parser.allowedInTransactionBlock.contains(tag) {
            // Only :61: and :86: belong between the opening and the closing balance. Whatever else
            // stands there (a typo for :61:, a bank's own tag) could hide an entry: refuse the file.
            throw error(.line(line), ":\(tag): is not allowed inside the transaction block (only :61: and :86: are); an entry could be lost")
        }
        if !MT940Parser.vocabulary.contains(tag), statement != nil, MT940Parser.statementLineShape(firstLine) != nil {
            // Outside the block too: an unknown tag whose value is an entry is a :61: with a typo.
            throw error(.line(line), ":\(tag): is not an MT940 tag, and its value is a statement line: an entry would be lost")
        }
        switch tag {
        case "20":
            try completeStatement(line: line, ending: .nextStatement)
            statement = StatementInProgress(startLine: line)
            statement?.statementID = text().isEmpty ? nil : text()
            identity.statementBegan()
        case "25", "25P":
            try requireStatement(tag, line)
            statement?.account = text()
        case "28", "28C":
            try requireStatement(tag, line)
            statement?.sequence = text()
        case "60F", "60M":
            let balance = try parseBalance(firstLine, line: line, tag: tag)
            let current = try requireStatement(tag, line)
            guard current.phase == .header else { throw error(.line(line), ":\(tag): a second opening balance in one statement (a :20: missing?)") }
            statement?.opening = balance
            statement?.currency = balance.amount.currency
            statement?.phase = .entries
        case "34F":
            // MT942 floor limit "EURD0," or "EUR0,": the statement currency.
            let currencyCode = BankTextDecoding.decode(firstLine.prefix(3))
            guard let currency = BankCurrency.named(currencyCode) else {
                throw error(.line(line), ":34F: unknown currency \(currencyCode)")
            }
            if try requireStatement(tag, line).currency == nil { statement?.currency = currency }
            if statement?.opening == nil { statement?.phase = .entries }  // MT942: its entries follow (after :13D:)
        case "61":
            try flushPendingEntry()
            if statement?.phase == .trailer {
                throw error(.line(line), ":61: after the statement's closing balance: the entry is outside the balanced block")
            }
            try parseStatementLine(lines, line: line)
            statement?.phase = .entries  // MT942 has no opening balance: its block starts here
        case "86":
            if pendingEntry != nil {
                applyInformation(lines)
                try flushPendingEntry()
            }
            // an :86: after :62: is information for the account owner, not about an entry
        case "NS":
            break  // non-SWIFT sub-fields (bank's own booking texts); the entry is its :61: and :86:
        case "62F", "62M":
            try flushPendingEntry()
            guard var current = statement else { throw error(.line(line), ":\(tag): before :20:") }
            guard let opening = current.opening else { throw error(.line(line), ":\(tag): without :60F: or :60M:") }
            let balance = try parseBalance(firstLine, line: line, tag: tag, statementCurrency: opening.amount.currency)
            guard balance.amount.currency == opening.amount.currency else {
                throw error(.line(line), ":\(tag): currency \(balance.amount.currency) differs from the opening balance's \(opening.amount.currency)")
            }
            let (expected, overflow) = opening.amount.minorUnits.addingReportingOverflow(current.runningMinorUnits)
            guard !limits.verifiesBalances || (!overflow && expected == balance.amount.minorUnits) else {
                let computed = Money.format(minorUnits: expected, digits: opening.amount.currency.minorUnitDigits)
                throw error(
                    .line(line),
                    "closing balance \(balance.amount) does not equal opening balance \(opening.amount) plus entries (\(computed))")
            }
            current.closing = balance
            current.phase = .trailer
            statement = current
        case "64", "65":
            try flushPendingEntry()
            if statement?.phase == .entries { statement?.phase = .trailer }
        case "90D", "90C":
            try checkMT942Totals(firstLine, tag: tag, line: line)
            if statement != nil { statement?.phase = .trailer }
        default:
            // :21:, :13:, :13D:, and tags MT940 does not have, outside the transaction block: no entry
            // can stand there (an unknown tag inside it was refused above).
            break
        }
    }

    /// What may stand in the transaction block: entries and their information, the next statement, the
    /// tags that close the block (closing and later balances, MT942 totals), MT942's header tags before
    /// its first entry, and an opening balance (refused below with its own message when it is a second one).
    static let allowedInTransactionBlock: Set<String> = [
        "61", "86", "NS", "20", "62F", "62M", "64", "65", "90D", "90C", "13D", "34F", "60F", "60M",
    ]

    @discardableResult
    private func requireStatement(_ tag: String, _ line: Int) throws(BankFormatError) -> StatementInProgress {
        guard let statement else { throw error(.line(line), ":\(tag): before :20:") }
        return statement
    }

    /// How a statement ended: by a message end `-`, by the next statement's `:20:`, by the end of the file.
    private enum StatementEnding { case messageEnd, nextStatement, endOfFile }

    private func completeStatement(line: Int, ending: StatementEnding) throws(BankFormatError) {
        try flushPendingEntry()
        if ending == .nextStatement, let unclosed = unclosedStatementLine {
            // The statement before this one ended without its closing balance and was not the last.
            throw error(.line(unclosed), "statement without :62F:/:62M: closing balance, followed by another statement (line \(line)): it may have been cut short")
        }
        guard let current = statement else { return }
        statement = nil
        guard let account = current.account else { throw error(.line(current.startLine), "statement without :25: account") }
        guard let currency = current.currency else {
            throw error(.line(current.startLine), "statement without :60F:/:60M: opening balance (or MT942 :34F:)")
        }
        if current.opening != nil, current.closing == nil {
            // Exports of an account "so far" end their last statement without :62F:; the entries are
            // all there, but nothing shows that none is missing (a file cut short looks the same).
            // So: refused where balances are verified (the daemon, --balance-check error), read where
            // they are not (bank parse's default, which says so); between two statements always
            // refused, since the first was cut short (reported when the next :20: arrives).
            if ending == .nextStatement {
                throw error(.line(current.startLine), "statement without :62F:/:62M: closing balance, followed by another statement (line \(line)): it may have been cut short")
            }
            if limits.verifiesBalances {
                throw error(.line(current.startLine), "statement without :62F:/:62M: closing balance: its entries cannot be checked against the bank's total")
            }
            if ending == .messageEnd { unclosedStatementLine = current.startLine }
        }
        sink.statementCompleted(
            BankStatement(
                format: .mt940, statementID: current.statementID, sequenceNumber: current.sequence, account: account,
                currency: currency, openingBalance: current.opening, closingBalance: current.closing, entries: [],
                entryCount: current.entryCount))
    }

    /// `C230101EUR1234,56` (also `:62F:`): mark, date, currency, amount.
    /// A closing balance may leave out its currency (`:62M:C020315105000,00`, seen from German banks)
    /// when `statementCurrency` is known: the amount then starts after the date, and the balance check
    /// confirms the reading.
    private func parseBalance(_ value: ArraySlice<UInt8>, line: Int, tag: String, statementCurrency: Currency? = nil) throws(BankFormatError) -> BankBalance {
        let bytes = Array(value)
        guard bytes.count >= 8, bytes[0] == UInt8(ascii: "C") || bytes[0] == UInt8(ascii: "D") else {
            throw error(.line(line), ":\(tag): balance must start with C or D, a date and a currency")
        }
        guard let date = BankDateParsing.yymmdd(bytes[1..<7]) else { throw error(.line(line), ":\(tag): invalid date") }
        let currency: Currency
        var amountStart = 10
        if let statementCurrency, bytes[7...].allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ",") }) {
            currency = statementCurrency
            amountStart = 7
        } else {
            guard bytes.count >= 11 else { throw error(.line(line), ":\(tag): balance must start with C or D, a date and a currency") }
            let code = String(decoding: bytes[7..<10], as: UTF8.self)
            guard let named = BankCurrency.named(code) else { throw error(.line(line), ":\(tag): unknown currency \(code)") }
            currency = named
        }
        let minorUnits: Int64
        do {
            minorUnits = try BankAmount.parseDecimal(bytes[amountStart...], separator: UInt8(ascii: ","), currency: currency)
        } catch {
            throw self.error(.line(line), ":\(tag): \(error.message)")
        }
        let signed = bytes[0] == UInt8(ascii: "D") ? -minorUnits : minorUnits
        return BankBalance(amount: Money(minorUnits: signed, currency: currency), date: date)
    }

    /// `:61:` value date, [entry date], mark, [funds code], amount, type, customer ref, [//bank ref],
    /// [newline supplementary details].
    private func parseStatementLine(_ lines: [ArraySlice<UInt8>], line: Int) throws(BankFormatError) {
        guard let current = statement else { throw error(.line(line), ":61: before :20:") }
        guard let currency = current.currency else { throw error(.line(line), ":61: before the :60F: opening balance") }
        var bytes = Array(lines[0])
        var detailLines = lines.dropFirst()
        var index = 0
        func fail(_ message: String) -> BankFormatError { error(.line(line), ":61: \(message)") }
        guard bytes.count >= 6, let valueDate = BankDateParsing.yymmdd(bytes[0..<6], clampingDay: true) else {
            throw fail("invalid value date")
        }
        index = 6
        var bookingDate: BankDate? = valueDate
        if bytes.count >= index + 4, bytes[index..<(index + 4)].allSatisfy(isDigit) {
            let month = Int(bytes[index] - 0x30) * 10 + Int(bytes[index + 1] - 0x30)
            let day = Int(bytes[index + 2] - 0x30) * 10 + Int(bytes[index + 3] - 0x30)
            var year = valueDate.year
            if valueDate.month == 12 && month == 1 { year += 1 }
            if valueDate.month == 1 && month == 12 { year -= 1 }
            guard let entryDate = BankDateParsing.clamped(year: year, month: month, day: day) else { throw fail("invalid entry date") }
            bookingDate = entryDate
            index += 4
        } else if bytes.count >= index + 4, bytes[index..<(index + 4)].allSatisfy({ $0 == 0x20 }) {
            index += 4
        }
        guard index < bytes.count else { throw fail("missing debit/credit mark") }
        var creditDebit: CreditDebit
        var reversal = false
        switch bytes[index] {
        case UInt8(ascii: "C"): creditDebit = .credit; index += 1
        case UInt8(ascii: "D"): creditDebit = .debit; index += 1
        case UInt8(ascii: "R") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "C"):
            creditDebit = .debit; reversal = true; index += 2  // reversal of a credit: money leaves
        case UInt8(ascii: "R") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "D"):
            creditDebit = .credit; reversal = true; index += 2  // reversal of a debit: money comes back
        case UInt8(ascii: "E") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "C"):
            creditDebit = .credit; index += 2  // MT942 expected credit
        case UInt8(ascii: "E") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "D"):
            creditDebit = .debit; index += 2
        default: throw fail("debit/credit mark must be C, D, RC or RD")
        }
        if index < bytes.count, isUpperLetter(bytes[index]) { index += 1 }  // funds code
        if index == bytes.count, let next = detailLines.first {
            // Some banks wrap right after the mark: the amount starts the next line.
            bytes += next
            detailLines = detailLines.dropFirst()
        }
        if index < bytes.count, bytes[index] == 0x20 { index += 1 }
        let amountStart = index
        while index < bytes.count, isDigit(bytes[index]) || bytes[index] == UInt8(ascii: ",") { index += 1 }
        guard index > amountStart else { throw fail("missing amount") }
        let minorUnits: Int64
        do {
            minorUnits = try BankAmount.parseDecimal(bytes[amountStart..<index], separator: UInt8(ascii: ","), currency: currency)
        } catch {
            throw fail(error.message)
        }
        var transactionType: String?
        if index + 4 <= bytes.count, isUpperLetter(bytes[index]),
            bytes[(index + 1)..<(index + 4)].allSatisfy({ isUpperLetter($0) || isDigit($0) || $0 == 0x20 })
        {
            transactionType = String(decoding: bytes[index..<(index + 4)], as: UTF8.self).trimmingBlanks()
            index += 4
        }
        let rest = bytes[index...]
        var customerReference: String
        let bankReference: String?
        if let separator = find(Array("//".utf8), in: rest) {
            customerReference = BankTextDecoding.decode(rest[index..<separator]).trimmingBlanks()
            bankReference = BankTextDecoding.trimmedOrNil(BankTextDecoding.decode(rest[(separator + 2)...]))
        } else {
            customerReference = BankTextDecoding.decode(rest).trimmingBlanks()
            bankReference = nil
        }
        let supplementary = detailLines.map { BankTextDecoding.decode($0).trimmingBlanks() }.joined(separator: " ")

        let amount = Money(minorUnits: minorUnits, currency: currency)
        let signed = creditDebit == .credit ? minorUnits : -minorUnits
        var updated = current
        let (running, overflow) = updated.runningMinorUnits.addingReportingOverflow(signed)
        guard !overflow else { throw fail("entries overflow the running balance") }
        updated.runningMinorUnits = running
        if creditDebit == .credit {
            updated.creditCount += 1
            updated.creditMinorUnits += minorUnits
        } else {
            updated.debitCount += 1
            updated.debitMinorUnits += minorUnits
        }
        updated.entryCount += 1
        statement = updated

        let reference = bankReference.flatMap { $0.uppercased() == "NONREF" ? nil : $0 }
        let details = BankTransactionDetails(
            amount: amount, creditDebit: creditDebit, bankReference: reference,
            remittanceInfo: supplementary.isEmpty ? nil : supplementary, bankTransactionCode: transactionType)
        if customerReference.uppercased() == "NONREF" { customerReference = "" }
        let entry = BankEntry(
            entryID: reference ?? "", entryIDIsDigest: reference == nil, statementID: updated.statementID,
            account: updated.account ?? "", creditDebit: creditDebit, amount: amount, reversal: reversal,
            bookingDate: bookingDate, valueDate: valueDate, remittanceInfo: supplementary.isEmpty ? nil : supplementary,
            bankTransactionCode: transactionType, transactions: [details])
        pendingEntry = (entry, customerReference.isEmpty ? nil : customerReference, line)
    }

    private func flushPendingEntry() throws(BankFormatError) {
        guard let pending = pendingEntry else { return }
        pendingEntry = nil
        var entry = pending.entry
        let customerReference = pending.customerReference
        if entry.structuredReference == nil, let text = entry.remittanceInfo {
            entry.structuredReference = CreditorReference.firstRF(in: text)
        }
        if entry.structuredReference == nil, let customerReference, CreditorReference.isValidRF(customerReference) {
            entry.structuredReference = customerReference
        }
        entry.transactions[0].structuredReference = entry.structuredReference
        entry.transactions[0].remittanceInfo = entry.remittanceInfo
        entry.transactions[0].endToEndID = entry.endToEndID
        entry.transactions[0].debtorName = entry.debtorName
        entry.transactions[0].debtorAccount = entry.debtorAccount
        if entry.entryIDIsDigest {
            entry.entryID = identity.digestID(
                format: .mt940, account: entry.account, amount: entry.amount, creditDebit: entry.creditDebit,
                bookingDate: entry.bookingDate, valueDate: entry.valueDate, transactionCode: entry.bankTransactionCode,
                customerReference: customerReference, remittanceInfo: entry.remittanceInfo)
        }
        sink.entryFound(entry)
    }

    // MARK: :86: information to account owner

    private func applyInformation(_ lines: [ArraySlice<UInt8>]) {
        guard let pending = pendingEntry else { return }
        var entry = pending.entry
        let decodedLines = lines.map { BankTextDecoding.decode($0) }
        let joined = decodedLines.joined()
        let information = MT940Information.parse(joined: joined, lines: decodedLines)
        if let remittance = information.remittanceInfo { entry.remittanceInfo = remittance }
        if let reference = information.structuredReference { entry.structuredReference = reference }
        if let endToEnd = information.endToEndID { entry.endToEndID = endToEnd }
        if entry.creditDebit == .credit {
            entry.debtorName = information.counterpartyName
            entry.debtorAccount = information.counterpartyAccount
        } else {
            entry.transactions[0].creditorName = information.counterpartyName
            entry.transactions[0].creditorAccount = information.counterpartyAccount
        }
        if let code = information.transactionCode {
            entry.bankTransactionCode = (entry.bankTransactionCode.map { $0 + "/" } ?? "") + code
            entry.transactions[0].bankTransactionCode = entry.bankTransactionCode
        }
        pendingEntry = (entry, pending.customerReference, pending.line)
    }

    /// MT942 `:90D:`/`:90C:` "5EUR1234,56": number and sum of debit/credit entries.
    private func checkMT942Totals(_ value: ArraySlice<UInt8>, tag: String, line: Int) throws(BankFormatError) {
        try flushPendingEntry()
        guard limits.verifiesBalances, let current = statement, let currency = current.currency else { return }
        let bytes = Array(value)
        var index = 0
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        guard index > 0, index + 3 <= bytes.count, let count = BankDateParsing.number(bytes[0..<index]) else {
            throw error(.line(line), ":\(tag): expected number of entries, currency and sum")
        }
        let code = String(decoding: bytes[index..<(index + 3)], as: UTF8.self)
        guard code == currency.code else { throw error(.line(line), ":\(tag): currency \(code) is not the statement's \(currency)") }
        let sum: Int64
        do {
            sum = try BankAmount.parseDecimal(bytes[(index + 3)...], separator: UInt8(ascii: ","), currency: currency)
        } catch {
            throw self.error(.line(line), ":\(tag): \(error.message)")
        }
        let (expectedCount, expectedSum) = tag == "90D"
            ? (current.debitCount, current.debitMinorUnits) : (current.creditCount, current.creditMinorUnits)
        guard count == expectedCount, sum == expectedSum else {
            throw error(
                .line(line),
                ":\(tag): \(count) entries totalling \(Money.format(minorUnits: sum, digits: currency.minorUnitDigits)) declared, \(expectedCount) totalling \(Money.format(minorUnits: expectedSum, digits: currency.minorUnitDigits)) found")
        }
    }
}

/// The content of an `:86:` field, in the dialects banks use.
struct MT940Information {
    var remittanceInfo: String?
    var structuredReference: String?
    var endToEndID: String?
    var counterpartyName: String?
    var counterpartyAccount: String?
    /// German "Geschäftsvorfallcode" (GVC), the 3 digits before the first `?` sub-field.
    var transactionCode: String?

    /// Dialects, tried in this order:
    /// 1. German DFÜ/SEPA (`166?00GUTSCHRIFT?20EREF+…?21SVWZ+…?32NAME`): sub-fields `?NN`, lines
    ///    joined without separator (sub-fields are cut at fixed widths). Remittance is `?20`–`?29` and
    ///    `?60`–`?63` joined, reduced to the `SVWZ+` part when present; `EREF+` is the end-to-end id.
    /// 2. Keyword style (`/EREF/…/REMI/…/NAME/…/IBAN/…`): lines joined without separator.
    /// 3. Free text: lines joined with a single space.
    static func parse(joined: String, lines: [String]) -> MT940Information {
        let bytes = Array(joined.utf8)
        if bytes.count >= 4, bytes[0..<3].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), !isAlnum(bytes[3]) {
            return parseSubfields(bytes, separator: bytes[3])
        }
        if bytes.first == UInt8(ascii: "/"), let keyed = parseKeywords(joined) { return keyed }
        var information = MT940Information()
        let text = lines.map { $0.trimmingBlanks() }.filter { !$0.isEmpty }.joined(separator: " ")
        information.remittanceInfo = text.isEmpty ? nil : text
        information.structuredReference = CreditorReference.firstRF(in: text)
        return information
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func parseSubfields(_ bytes: [UInt8], separator: UInt8) -> MT940Information {
        var information = MT940Information()
        information.transactionCode = String(decoding: bytes[0..<3], as: UTF8.self)
        var subfields: [(key: Int, value: String)] = []
        var index = 3
        while index < bytes.count {
            guard bytes[index] == separator, index + 2 < bytes.count,
                let key = BankDateParsing.number(bytes[(index + 1)...(index + 2)])
            else { index += 1; continue }
            var end = index + 3
            while end < bytes.count {
                if bytes[end] == separator, end + 2 < bytes.count, BankDateParsing.number(bytes[(end + 1)...(end + 2)]) != nil { break }
                end += 1
            }
            subfields.append((key, String(decoding: bytes[(index + 3)..<end], as: UTF8.self)))
            index = end
        }
        let remittanceParts = subfields.filter { (20...29).contains($0.key) || (60...63).contains($0.key) }.map(\.value)
        let remittance = remittanceParts.joined()
        let sepaKeys = ["EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+", "COAM+", "OAMT+"]
        let keyed = splitKeyed(remittance, keys: sepaKeys)
        if let svwz = keyed["SVWZ+"] {
            information.remittanceInfo = BankTextDecoding.trimmedOrNil(svwz)
        } else {
            information.remittanceInfo = BankTextDecoding.trimmedOrNil(remittance)
        }
        if let eref = keyed["EREF+"].flatMap(BankTextDecoding.trimmedOrNil), eref.uppercased() != "NOTPROVIDED" {
            information.endToEndID = eref
        }
        let name = subfields.filter { $0.key == 32 || $0.key == 33 }.map(\.value).joined()
        information.counterpartyName = BankTextDecoding.trimmedOrNil(name)
        information.counterpartyAccount = subfields.first { $0.key == 31 }.flatMap { BankTextDecoding.trimmedOrNil($0.value) }
        information.structuredReference = CreditorReference.firstRF(in: remittance)
        return information
    }

    /// Splits "EREF+123 SVWZ+Invoice 7" at the given keys (first occurrence of each key wins).
    static func splitKeyed(_ text: String, keys: [String]) -> [String: String] {
        let bytes = Array(text.utf8)
        var positions: [(key: String, start: Int, valueStart: Int)] = []
        for key in keys {
            if let start = find(Array(key.utf8), in: bytes[...]) { positions.append((key, start, start + key.utf8.count)) }
        }
        positions.sort { $0.start < $1.start }
        var result: [String: String] = [:]
        for (offset, position) in positions.enumerated() {
            let end = offset + 1 < positions.count ? positions[offset + 1].start : bytes.count
            if position.valueStart <= end { result[position.key] = String(decoding: bytes[position.valueStart..<end], as: UTF8.self) }
        }
        return result
    }

    /// The keyword spelled by `part` (blanks around it ignored), if it is one.
    private static func keyword(_ part: ArraySlice<UInt8>) -> String? {
        var start = part.startIndex
        var end = part.endIndex
        while start < end, part[start] == 0x20 { start += 1 }
        while end > start, part[end - 1] == 0x20 { end -= 1 }
        guard (2...9).contains(end - start), part[start..<end].allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return nil }
        let candidate = String(decoding: part[start..<end], as: UTF8.self)
        return keywords.contains(candidate) ? candidate : nil
    }

    private static let keywords: Set<String> = [
        "EREF", "REMI", "ORDP", "BENM", "NAME", "IBAN", "BIC", "TRTP", "CSID", "MARF", "PREF", "RTRN", "ISDT", "ID",
        "ADDR", "CNTP", "ULTC", "ULTD", "ULTB", "PURP", "SVWZ", "ABWA", "CDTRREF", "CDTRREFTP", "OCMT", "ACCW", "BUSP",
        "EXCH", "CHGS", "FX", "TXCD", "CD", "ISSR",
    ]

    /// `/KEY/value/KEY/value…` where KEY is one of the known keywords (values may contain "/").
    /// Works on bytes: this runs for every entry of large statements.
    private static func parseKeywords(_ text: String) -> MT940Information? {
        let bytes = Array(text.utf8)
        let slash = UInt8(ascii: "/")
        var fields: [(key: String, value: String)] = []
        var openKey: String?
        var valueStart = 0
        func closeField(at end: Int) {
            guard let key = openKey else { return }
            var valueEnd = max(end, valueStart)
            while valueEnd > valueStart, bytes[valueEnd - 1] == slash || bytes[valueEnd - 1] == 0x20 { valueEnd -= 1 }
            fields.append((key, String(decoding: bytes[valueStart..<valueEnd], as: UTF8.self)))
        }
        var partStart = 1  // bytes[0] is "/"
        while partStart <= bytes.count {
            var partEnd = partStart
            while partEnd < bytes.count, bytes[partEnd] != slash { partEnd += 1 }
            if let key = keyword(bytes[partStart..<partEnd]) {
                closeField(at: partStart - 1)
                openKey = key
                valueStart = min(partEnd + 1, bytes.count)
            }
            partStart = partEnd + 1
        }
        closeField(at: bytes.count)
        guard !fields.isEmpty else { return nil }
        var information = MT940Information()
        func value(_ key: String) -> String? {
            fields.first { $0.key == key }.flatMap { BankTextDecoding.trimmedOrNil($0.value) }
        }
        if var remittance = value("REMI") {
            for prefix in ["USTD//", "USTD/", "STRD/CUR//", "STRD/CUR/", "STRD/ISO//", "STRD/ISO/", "STRD//", "STRD/"] where remittance.hasPrefix(prefix) {
                let rest = String(remittance.dropFirst(prefix.count))
                if prefix.hasPrefix("STRD") { information.structuredReference = BankTextDecoding.trimmedOrNil(rest) }
                remittance = rest
                break
            }
            information.remittanceInfo = BankTextDecoding.trimmedOrNil(remittance)
        } else if let remittance = value("SVWZ") {
            information.remittanceInfo = remittance
        }
        if let reference = value("CDTRREF") { information.structuredReference = reference }
        if information.structuredReference == nil, let remittance = information.remittanceInfo {
            information.structuredReference = CreditorReference.firstRF(in: remittance)
        }
        if let eref = value("EREF"), eref.uppercased() != "NOTPROVIDED" { information.endToEndID = eref }
        if let counterparty = value("CNTP") {
            // ING: /CNTP/account/BIC/name/city/
            let pieces = counterparty.split(separator: "/", omittingEmptySubsequences: false).map { String($0).trimmingBlanks() }
            information.counterpartyAccount = pieces.first.flatMap { $0.isEmpty ? nil : $0 }
            information.counterpartyName = pieces.count > 2 && !pieces[2].isEmpty ? pieces[2] : nil
        }
        if let name = value("NAME") { information.counterpartyName = name }
        if let iban = value("IBAN") { information.counterpartyAccount = iban }
        return information
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
private func isUpperLetter(_ byte: UInt8) -> Bool { byte >= 0x41 && byte <= 0x5A }
private func isLowerLetter(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }

/// Index of the first occurrence of `needle` in `haystack`.
func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
    var index = haystack.startIndex
    while index + needle.count <= haystack.endIndex {
        if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        index += 1
    }
    return nil
}
