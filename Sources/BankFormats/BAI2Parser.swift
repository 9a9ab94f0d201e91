import ARDomain

/// BAI2 cash management files → one statement per account (`03` … `49`).
///
/// Records are assembled as the BAI2 spec and common parsers do: a physical record ending in "/" is
/// joined to its `88` continuation with ",", one without "/" with " " (text continues). Amounts have
/// the decimal point implied by the currency (group `02` currency, overridden by the account `03`
/// currency, default USD). Control totals and record counts of `49`, `98` and `99` are checked; a
/// mismatch is an error naming the trailer's record number.
final class BAI2Parser: BankChunkParser {
    private let limits: BankParseLimits
    private let sink: BankEventSink
    private var splitter: LineSplitter
    private var identity = EntryIdentity()

    private var physicalRecordCount = 0
    /// The record being assembled (a record plus its `88` continuations).
    private var pendingRecord: LogicalRecord?

    private struct LogicalRecord {
        var code: String
        var text: [UInt8]
        var recordNumber: Int
        var line: Int
        var physicalRecords: Int
    }

    private enum Stage { case beforeFile, inFile, inGroup, inAccount, afterFile }
    private var stage = Stage.beforeFile

    private var fileID: String?
    private var fileTotal: Int64 = 0
    private var fileGroups = 0
    private var fileRecords = 0

    private var groupCurrency: Currency?
    private var groupDate: BankDate?
    private var groupTotal: Int64 = 0
    private var groupAccounts = 0
    private var groupRecords = 0

    private var account: AccountInProgress?

    private struct AccountInProgress {
        var number: String
        var currency: Currency
        var total: Int64 = 0
        var records = 0
        var opening: BankBalance?
        var closing: BankBalance?
        var entryCount = 0
    }

    init(limits: BankParseLimits, sink: BankEventSink) {
        self.limits = limits
        self.sink = sink
        self.splitter = LineSplitter(maximumLineBytes: limits.maximumLineBytes, format: .bai2)
    }

    func feed(_ chunk: UnsafeRawBufferPointer) throws(BankFormatError) {
        try splitter.feed(chunk) { (line, number) throws(BankFormatError) in try self.handleLine(line, number) }
    }

    func finish() throws(BankFormatError) {
        try splitter.finish { (line, number) throws(BankFormatError) in try self.handleLine(line, number) }
        try processPendingRecord()
        switch stage {
        case .afterFile: return
        case .beforeFile: throw error(.file, "no 01 file header")
        case .inFile, .inGroup, .inAccount:
            throw error(.record(physicalRecordCount, line: splitter.lineNumber), "file ends without the 99 file trailer")
        }
    }

    private func error(_ position: BankPosition, _ message: String) -> BankFormatError {
        BankFormatError(format: .bai2, position: position, message: message)
    }

    private func handleLine(_ line: ArraySlice<UInt8>, _ number: Int) throws(BankFormatError) {
        if line.isEmpty { return }
        physicalRecordCount += 1
        let recordNumber = physicalRecordCount
        guard line.count >= 2, isDigit(line[line.startIndex]), isDigit(line[line.startIndex + 1]) else {
            throw error(.record(recordNumber, line: number), "record does not start with a two-digit record code")
        }
        let code = String(decoding: line.prefix(2), as: UTF8.self)
        var content = line.dropFirst(2)
        if content.first == UInt8(ascii: ",") { content = content.dropFirst() }
        if code == "88" {
            guard var record = pendingRecord else {
                throw error(.record(recordNumber, line: number), "88 continuation without a record to continue")
            }
            // Previous physical record ended with "/": fields continue; without it, text continues.
            if record.text.last == UInt8(ascii: "/") {
                record.text[record.text.count - 1] = UInt8(ascii: ",")
            } else {
                record.text.append(UInt8(ascii: " "))
            }
            record.text.append(contentsOf: content)
            record.physicalRecords += 1
            guard record.text.count <= limits.maximumFieldBytes else {
                throw error(.record(recordNumber, line: number), "record continued beyond \(limits.maximumFieldBytes) bytes")
            }
            pendingRecord = record
            return
        }
        try processPendingRecord()
        pendingRecord = LogicalRecord(code: code, text: Array(content), recordNumber: recordNumber, line: number, physicalRecords: 1)
    }

    private func processPendingRecord() throws(BankFormatError) {
        guard var record = pendingRecord else { return }
        pendingRecord = nil
        if record.text.last == UInt8(ascii: "/") { record.text.removeLast() }
        let fields = record.text.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        try handleRecord(record, fields: fields)
    }

    // MARK: Records

    private func handleRecord(_ record: LogicalRecord, fields: [ArraySlice<UInt8>]) throws(BankFormatError) {
        let position = BankPosition.record(record.recordNumber, line: record.line)
        func field(_ index: Int) -> ArraySlice<UInt8> { index < fields.count ? fields[index] : [] }
        func text(_ index: Int) -> String? { BankTextDecoding.trimmedOrNil(BankTextDecoding.decode(field(index))) }
        func number(_ index: Int, _ name: String) throws(BankFormatError) -> Int {
            guard let value = BankDateParsing.number(field(index).filter { $0 != 0x20 }) else {
                throw error(position, "\(name) is not a number")
            }
            return value
        }
        func total(_ index: Int, _ name: String, _ currency: Currency, blankIsZero: Bool = false) throws(BankFormatError) -> Int64 {
            if blankIsZero, field(index).allSatisfy({ $0 == 0x20 }) { return 0 }
            do {
                return try BankAmount.parseImplied(field(index).filter { $0 != 0x20 }, currency: currency)
            } catch {
                throw self.error(position, "\(name): \(error.message)")
            }
        }
        let records = record.physicalRecords

        switch (record.code, stage) {
        case ("01", .beforeFile):
            stage = .inFile
            fileID = text(4)
            fileRecords = records
        case ("02", .inFile):
            stage = .inGroup
            fileRecords += records
            groupRecords = records
            groupTotal = 0
            groupAccounts = 0
            groupDate = field(3).isEmpty ? nil : BankDateParsing.yymmdd(field(3))
            if !field(3).isEmpty, groupDate == nil { throw error(position, "invalid as-of date") }
            if let code = text(5) {
                guard let currency = BankCurrency.named(code) else { throw error(position, "unknown currency \(code)") }
                groupCurrency = currency
            } else {
                groupCurrency = Currency(code: "USD")
            }
        case ("03", .inGroup):
            stage = .inAccount
            groupRecords += records
            fileRecords += records
            groupAccounts += 1
            identity.statementBegan()
            guard let number = text(0) else { throw error(position, "account number is empty") }
            var currency = groupCurrency ?? Currency(code: "USD")!
            if let code = text(1) {
                guard let accountCurrency = BankCurrency.named(code) else { throw error(position, "unknown currency \(code)") }
                currency = accountCurrency
            }
            var current = AccountInProgress(number: number, currency: currency)
            current.records = records
            // Summary and status items: type code, amount, item count, funds type (+ its fields).
            var index = 2
            while index < fields.count {
                // An empty field where a type code belongs: banks end a physical record with ",/" before
                // an 88 continuation, leaving one empty field between summaries. Skip it.
                if field(index).allSatisfy({ $0 == 0x20 }) {
                    index += 1
                    continue
                }
                let typeCode = try parseTypeCode(field(index), position)
                let amountBytes = field(index + 1).filter { $0 != 0x20 }
                var amount: Int64?
                if !amountBytes.isEmpty { amount = try total(index + 1, "amount of type \(typeCode)", currency) }
                index += 3
                index = try skipFundsType(fields, at: index, position)
                guard let amount else { continue }
                current.total = try add(current.total, amount, position)
                let money = Money(minorUnits: amount, currency: currency)
                if typeCode == 10 { current.opening = BankBalance(amount: money, date: groupDate) }
                if typeCode == 15 { current.closing = BankBalance(amount: money, date: groupDate) }
            }
            account = current
        case ("16", .inAccount):
            guard var current = account else { throw error(position, "16 outside an account") }
            groupRecords += records
            fileRecords += records
            current.records += records
            let typeCode = try parseTypeCode(field(0), position)
            let minorUnits = try total(1, "amount", current.currency)
            guard minorUnits >= 0 else { throw error(position, "transaction amount is negative") }
            current.total = try add(current.total, minorUnits, position)
            var valueDate = groupDate
            if field(2).first == UInt8(ascii: "V") || field(2).first == UInt8(ascii: "v") {
                guard let date = BankDateParsing.yymmdd(field(3)) else { throw error(position, "value-dated funds without a valid date") }
                valueDate = date
            }
            let index = try skipFundsType(fields, at: 2, position)
            let bankReference = text(index)
            let customerReference = text(index + 1)
            let remittance: String? =
                index + 2 < fields.count
                ? BankTextDecoding.trimmedOrNil(BankTextDecoding.decode(Array(fields[(index + 2)...].joined(separator: [UInt8(ascii: ",")]))))
                : nil
            if Self.direction(ofTypeCode: typeCode) == nil, minorUnits != 0 {
                // A 16 with a status or information code (001–099, 890, 900–919) has no direction:
                // with money on it, an entry would vanish into the control total.
                throw error(position, "transaction detail with type code \(Self.typeCodeText(typeCode)), which is not a credit or debit code, carries an amount: the entry would be lost")
            }
            if let direction = Self.direction(ofTypeCode: typeCode) {
                current.entryCount += 1
                let amount = Money(minorUnits: minorUnits, currency: current.currency)
                let code = Self.typeCodeText(typeCode)
                var entry = BankEntry(
                    entryID: bankReference ?? "", entryIDIsDigest: bankReference == nil, statementID: fileID,
                    account: current.number, creditDebit: direction, amount: amount, bookingDate: groupDate,
                    valueDate: valueDate, remittanceInfo: remittance,
                    structuredReference: remittance.flatMap(CreditorReference.firstRF(in:))
                        ?? customerReference.flatMap { CreditorReference.isValidRF($0) ? $0 : nil },
                    bankTransactionCode: code)
                entry.transactions = [
                    BankTransactionDetails(
                        amount: amount, creditDebit: direction, bankReference: bankReference,
                        remittanceInfo: remittance, structuredReference: entry.structuredReference, bankTransactionCode: code)
                ]
                if entry.entryIDIsDigest {
                    entry.entryID = identity.digestID(
                        format: .bai2, account: current.number, amount: amount, creditDebit: direction,
                        bookingDate: groupDate, valueDate: valueDate, transactionCode: code,
                        customerReference: customerReference, remittanceInfo: remittance)
                }
                sink.entryFound(entry)
            }
            account = current
        case ("49", .inAccount):
            guard var current = account else { throw error(position, "49 outside an account") }
            current.records += records
            groupRecords += records
            fileRecords += records
            let declared = try total(0, "account control total", current.currency, blankIsZero: true)
            let declaredRecords = try number(1, "number of records")
            guard declared == current.total else {
                throw error(position, "account control total \(declared) does not equal the sum of the account's amounts \(current.total)")
            }
            guard declaredRecords == current.records else {
                throw error(position, "account trailer declares \(declaredRecords) records, the account has \(current.records)")
            }
            groupTotal = try add(groupTotal, declared, position)
            stage = .inGroup
            account = nil
            sink.statementCompleted(
                BankStatement(
                    format: .bai2, statementID: fileID, sequenceNumber: groupDate?.description, account: current.number,
                    currency: current.currency, openingBalance: current.opening, closingBalance: current.closing,
                    entries: [], entryCount: current.entryCount))
        case ("98", .inGroup):
            groupRecords += records
            fileRecords += records
            let declared = try total(0, "group control total", groupCurrency ?? Currency(code: "USD")!, blankIsZero: true)
            let declaredAccounts = try number(1, "number of accounts")
            let declaredRecords = try number(2, "number of records")
            guard declared == groupTotal else {
                throw error(position, "group control total \(declared) does not equal the sum of account totals \(groupTotal)")
            }
            guard declaredAccounts == groupAccounts else {
                throw error(position, "group trailer declares \(declaredAccounts) accounts, the group has \(groupAccounts)")
            }
            guard declaredRecords == groupRecords else {
                throw error(position, "group trailer declares \(declaredRecords) records, the group has \(groupRecords)")
            }
            fileTotal = try add(fileTotal, declared, position)
            fileGroups += 1
            stage = .inFile
        case ("99", .inFile):
            fileRecords += records
            let declared = try total(0, "file control total", Currency(code: "USD")!, blankIsZero: true)
            let declaredGroups = try number(1, "number of groups")
            let declaredRecords = try number(2, "number of records")
            guard declared == fileTotal else {
                throw error(position, "file control total \(declared) does not equal the sum of group totals \(fileTotal)")
            }
            guard declaredGroups == fileGroups else {
                throw error(position, "file trailer declares \(declaredGroups) groups, the file has \(fileGroups)")
            }
            guard declaredRecords == fileRecords else {
                throw error(position, "file trailer declares \(declaredRecords) records, the file has \(fileRecords)")
            }
            stage = .afterFile
        case (let code, let stage):
            let expected: String
            switch stage {
            case .beforeFile: expected = "01 file header"
            case .inFile: expected = "02 group header or 99 file trailer"
            case .inGroup: expected = "03 account identifier or 98 group trailer"
            case .inAccount: expected = "16 transaction detail or 49 account trailer"
            case .afterFile: expected = "nothing after the 99 file trailer"
            }
            throw error(position, "unexpected record \(code): expected \(expected)")
        }
    }

    private func add(_ a: Int64, _ b: Int64, _ position: BankPosition) throws(BankFormatError) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw error(position, "control total overflows") }
        return sum
    }

    private func parseTypeCode(_ bytes: ArraySlice<UInt8>, _ position: BankPosition) throws(BankFormatError) -> Int {
        guard bytes.count == 3, let code = BankDateParsing.number(bytes) else {
            throw error(position, "type code must be three digits")
        }
        return code
    }

    /// Skips the funds type at `index` and its extra fields: `V` date,time; `S` three amounts;
    /// `D` a count then that many (days, amount) pairs; `0`, `1`, `2`, `Z` or empty none.
    /// Returns the index after them.
    private func skipFundsType(_ fields: [ArraySlice<UInt8>], at index: Int, _ position: BankPosition) throws(BankFormatError) -> Int {
        guard index < fields.count else { return index }
        let fundsType = String(decoding: fields[index], as: UTF8.self).trimmingBlanks().uppercased()
        switch fundsType {
        case "", "0", "1", "2", "Z": return index + 1
        case "V": return index + 3
        case "S": return index + 4
        case "D":
            guard index + 1 < fields.count, let count = BankDateParsing.number(fields[index + 1]), count <= 1000 else {
                throw error(position, "distributed availability without a valid count")
            }
            return index + 2 + 2 * count
        default: throw error(position, "unknown funds type \(fundsType)")
        }
    }

    /// BAI2 type-code ranges: 100–399 credits, 400–699 debits, loan codes 700–759 credits and
    /// 760–799 debits, customised 900–919 status, 920–959 credits, 960–999 debits. Status codes
    /// (001–099) and non-monetary information (890) are not entries: in an 03 summary their amounts
    /// still count in the control totals; in a 16 detail they must carry no amount.
    static func direction(ofTypeCode code: Int) -> CreditDebit? {
        switch code {
        case 100...399, 700...759, 920...959: .credit
        case 400...699, 760...799, 960...999: .debit
        default: nil
        }
    }

    static func typeCodeText(_ code: Int) -> String {
        code < 10 ? "00\(code)" : code < 100 ? "0\(code)" : String(code)
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
