import ARDomain
internal import CLibXML2

/// ISO 20022 camt.053 (statements) and camt.054 (debit/credit notifications) → entries, through the
/// libxml2 SAX2 push parser (ENVIRONMENT.md: twice the speed of xmlTextReader, memory bounded).
///
/// Elements are matched by local name only, so every message version (.001.02 through .001.13 keep
/// these names) and any namespace prefix work. Version differences handled: `Sts` as text (≤ .07) or
/// `Sts/Cd` (≥ .08); party names under `Dbtr/Nm` (≤ .07) or `Dbtr/Pty/Nm` (≥ .08); transaction amounts
/// as `TxDtls/Amt` (≥ .03) or `AmtDtls/TxAmt/Amt` (.02).
///
/// Security (ENVIRONMENT.md "XML for camt statements"): options are `XML_PARSE_NONET` only (no
/// `NOENT`, `DTDLOAD`), any DOCTYPE stops the parser before its subset is read (so no external
/// entities, no entity bombs), depth and text length are bounded, and the first error fails the file.
final class CamtParser: BankChunkParser {
    private let state: CamtState
    /// Owned here: created in init, freed in deinit; libxml2 never outlives this object.
    private let context: xmlParserCtxtPtr

    init(expected: BankFormat, limits: BankParseLimits, sink: BankEventSink) throws(BankFormatError) {
        state = CamtState(expected: expected, limits: limits, sink: sink)
        var handler = xmlSAXHandler()
        handler.initialized = UInt32(XML_SAX2_MAGIC)
        handler.startElementNs = { context, localName, _, _, _, _, attributeCount, _, attributes in
            CamtState.from(context).elementStarted(localName, attributeCount: Int(attributeCount), attributes: attributes)
        }
        handler.endElementNs = { context, localName, _, _ in CamtState.from(context).elementEnded(localName) }
        handler.characters = { context, characters, length in CamtState.from(context).textFound(characters, Int(length)) }
        handler.cdataBlock = { context, characters, length in CamtState.from(context).textFound(characters, Int(length)) }
        handler.internalSubset = { context, _, _, _ in CamtState.from(context).doctypeFound() }
        // Errors are read from the context after xmlParseChunk; this keeps libxml2 off stderr.
        handler.serror = { _, _ in }
        guard let created = xmlCreatePushParserCtxt(&handler, nil, nil, 0, nil) else {
            throw BankFormatError(format: expected, position: .file, message: "libxml2 could not create a parser")
        }
        context = created
        xmlCtxtUseOptions(context, Int32(XML_PARSE_NONET.rawValue))
        state.context = context
        context.pointee._private = Unmanaged.passUnretained(state).toOpaque()
    }

    deinit { xmlFreeParserCtxt(context) }

    func feed(_ chunk: UnsafeRawBufferPointer) throws(BankFormatError) {
        // Slices keep every xmlParseChunk far below libxml2's 10 MB lookup limit.
        let sliceBytes = 256 << 10
        var start = 0
        while start < chunk.count {
            let end = min(start + sliceBytes, chunk.count)
            let slice = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
            let status = xmlParseChunk(
                context, slice.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(slice.count), 0)
            try check(status)
            start = end
        }
    }

    func finish() throws(BankFormatError) {
        try check(xmlParseChunk(context, nil, 0, 1))
        try state.documentEnded()
    }

    private func check(_ status: Int32) throws(BankFormatError) {
        if let failure = state.failure { throw failure }
        guard status != 0 || context.pointee.wellFormed == 0 else { return }
        var message = "malformed XML"
        var line = Int(xmlSAX2GetLineNumber(context))
        if let last = xmlCtxtGetLastError(context) {
            if let text = last.pointee.message {
                message = String(cString: text).trimmingBlanks()
            }
            if last.pointee.line > 0 { line = Int(last.pointee.line) }
        }
        throw BankFormatError(format: state.format, position: .element(path: state.path(), line: line), message: message)
    }
}

/// The camt elements this parser reads; everything else is `other` and skipped.
enum CamtTag: String {
    case Document, BkToCstmrStmt, BkToCstmrDbtCdtNtfctn, BkToCstmrAcctRpt, Stmt, Ntfctn, Rpt
    case Id, ElctrncSeqNb, LglSeqNb, Acct, IBAN, Othr, Ccy, Bal, Tp, CdOrPrtry, Cd, Prtry
    case Amt, CdtDbtInd, Dt, DtTm, Ntry, NtryRef, RvslInd, Sts, BookgDt, ValDt, AcctSvcrRef
    case BkTxCd, Domn, Fmly, SubFmlyCd, NtryDtls, TxDtls, Refs, EndToEndId, TxId, AmtDtls, TxAmt, InstdAmt
    case RltdPties, Dbtr, DbtrAcct, Cdtr, CdtrAcct, Pty, Nm, RmtInf, Ustrd, Strd, CdtrRefInf, Ref
    case AddtlNtryInf, AddtlTxInf
    case other

    /// Leaves whose text is read; text of every other element is not even collected (speed).
    var carriesText: Bool {
        switch self {
        case .Id, .ElctrncSeqNb, .LglSeqNb, .IBAN, .Ccy, .Cd, .Amt, .CdtDbtInd, .Dt, .DtTm, .NtryRef, .RvslInd, .Sts,
            .AcctSvcrRef, .SubFmlyCd, .EndToEndId, .TxId, .Nm, .Ustrd, .Ref, .AddtlNtryInf, .AddtlTxInf:
            true
        case .Document, .BkToCstmrStmt, .BkToCstmrDbtCdtNtfctn, .BkToCstmrAcctRpt, .Stmt, .Ntfctn, .Rpt, .Acct, .Othr,
            .Bal, .Tp, .CdOrPrtry, .Prtry, .Ntry, .BookgDt, .ValDt, .BkTxCd, .Domn, .Fmly, .NtryDtls, .TxDtls, .Refs,
            .AmtDtls, .TxAmt, .InstdAmt, .RltdPties, .Dbtr, .DbtrAcct, .Cdtr, .CdtrAcct, .Pty, .RmtInf, .Strd,
            .CdtrRefInf, .other:
            false
        }
    }
}

/// Parser state reached from the C callbacks through the context's `_private` pointer.
final class CamtState {
    let expected: BankFormat
    let limits: BankParseLimits
    let sink: BankEventSink
    var context: xmlParserCtxtPtr?
    var failure: BankFormatError?
    private(set) var format: BankFormat

    private var tags: [CamtTag] = []
    private var names: [UnsafePointer<xmlChar>] = []
    private var tagByName: [UnsafePointer<xmlChar>: CamtTag] = [:]
    private var text: [UInt8] = []
    private var sawMessageRoot = false
    private var statementIndex = 0
    private var entryIndex = 0
    private var amountCurrencyCode: String?
    private var identity = EntryIdentity()

    private var statement: StatementInProgress?
    private var balance: BalanceInProgress?
    private var entry: EntryInProgress?
    private var transaction: TransactionInProgress?

    private struct StatementInProgress {
        var statementID: String?
        var sequence: String?
        var account: String?
        var currency: Currency?
        var opening: BankBalance?
        var closing: BankBalance?
        var bookedMinorUnits: Int64 = 0
        var bookedCurrencyMismatch = false
        var entryCount = 0
        var line: Int
    }

    private struct BalanceInProgress {
        var code: String?
        var amountText: String?
        var currencyCode: String?
        var creditDebit: String?
        var date: BankDate?
    }

    private struct EntryInProgress {
        var entryReference: String?
        var servicerReference: String?
        var amountText: String?
        var currencyCode: String?
        var creditDebit: String?
        var reversal = false
        var status: String?
        var bookingDate: BankDate?
        var valueDate: BankDate?
        var transactionCode = TransactionCode()
        var additionalInfo: String?
        var transactions: [TransactionInProgress] = []
        var line: Int
    }

    private struct TransactionCode {
        var domain: String?
        var family: String?
        var subFamily: String?
        var proprietary: String?
        var text: String? {
            if let domain, let family, let subFamily { return "\(domain)/\(family)/\(subFamily)" }
            return proprietary
        }
    }

    private struct TransactionInProgress {
        var amountText: String?
        var amountCurrencyCode: String?
        var transactionAmountText: String?
        var transactionCurrencyCode: String?
        var creditDebit: String?
        var servicerReference: String?
        var endToEndID: String?
        var transactionID: String?
        var transactionCode = TransactionCode()
        var unstructured: [String] = []
        var structuredReference: String?
        var debtorName: String?
        var debtorAccount: String?
        var creditorName: String?
        var creditorAccount: String?
        var additionalInfo: String?
    }

    init(expected: BankFormat, limits: BankParseLimits, sink: BankEventSink) {
        self.expected = expected
        self.format = expected
        self.limits = limits
        self.sink = sink
    }

    /// The children of `Stmt` (camt.053) and `Ntfctn` (camt.054) in every message version .001.02–.001.13.
    static let statementChildren: Set<String> = [
        "Id", "StmtPgntn", "NtfctnPgntn", "ElctrncSeqNb", "RptgSeq", "LglSeqNb", "CreDtTm", "FrToDt", "CpyDplctInd", "RptgSrc",
        "Acct", "RltdAcct", "Intrst", "Bal", "TxsSummry", "Ntry", "AddtlStmtInf", "AddtlNtfctnInf",
    ]

    static func from(_ context: UnsafeMutableRawPointer?) -> CamtState {
        let parserContext = context!.assumingMemoryBound(to: xmlParserCtxt.self)
        return Unmanaged<CamtState>.fromOpaque(parserContext.pointee._private!).takeUnretainedValue()
    }

    // MARK: Errors

    private var line: Int { context.map { Int(xmlSAX2GetLineNumber($0)) } ?? 0 }

    /// Element path of the current position, e.g. `/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]/Amt`.
    func path() -> String {
        var components: [String] = []
        for (tag, name) in zip(tags, names) {
            let text = String(cString: name)
            switch tag {
            case .Stmt, .Ntfctn, .Rpt: components.append("\(text)[\(statementIndex)]")
            case .Ntry: components.append("\(text)[\(entryIndex)]")
            default: components.append(text)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// Records the first failure and stops libxml2; the Swift side throws it after `xmlParseChunk`.
    private func fail(_ message: String, line failureLine: Int? = nil) {
        guard failure == nil else { return }
        failure = BankFormatError(format: format, position: .element(path: path(), line: failureLine ?? line), message: message)
        if let context { xmlStopParser(context) }
    }

    func doctypeFound() {
        fail("DOCTYPE is not allowed in a camt statement (entities and DTDs are refused)")
    }

    // MARK: SAX events

    private func tag(for name: UnsafePointer<xmlChar>) -> CamtTag {
        if let known = tagByName[name] { return known }
        let tag = CamtTag(rawValue: String(cString: name)) ?? .other
        // Names are interned in the parser's dictionary, so the pointer identifies the name. Bounded so
        // that a file of millions of distinct names cannot grow the cache without limit.
        if tagByName.count < 4096 { tagByName[name] = tag }
        return tag
    }

    func elementStarted(
        _ localName: UnsafePointer<xmlChar>?, attributeCount: Int, attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?
    ) {
        guard failure == nil, let localName else { return }
        let tag = tag(for: localName)
        tags.append(tag)
        names.append(localName)
        text.removeAll(keepingCapacity: true)
        guard tags.count <= limits.maximumXMLDepth else {
            fail("elements nested deeper than \(limits.maximumXMLDepth)")
            return
        }
        if statement != nil, entry == nil, balance == nil, ancestor(1) == .Stmt || ancestor(1) == .Ntfctn {
            let name = String(cString: localName)
            guard CamtState.statementChildren.contains(name) else {
                // A misspelt or foreign element where Ntry elements stand could carry an entry we would skip.
                fail("unknown element \(name.prefix(40)) in the statement (camt.053/054 have none such): an entry could be lost in it")
                return
            }
        }
        switch tag {
        case .BkToCstmrStmt, .BkToCstmrDbtCdtNtfctn:
            guard tags.count <= 2 else { break }
            let found: BankFormat = tag == .BkToCstmrStmt ? .camt053 : .camt054
            guard found == expected else {
                fail("file is \(found.rawValue), not \(expected.rawValue)")
                return
            }
            format = found
            sawMessageRoot = true
        case .Stmt, .Ntfctn:
            guard tags.count == 3 || (tags.count == 2 && sawMessageRoot), sawMessageRoot else { break }
            statementIndex += 1
            entryIndex = 0
            statement = StatementInProgress(line: line)
            identity.statementBegan()
        case .Bal where statement != nil && entry == nil:
            balance = BalanceInProgress()
        case .Ntry:
            // An entry anywhere but directly in a statement would be skipped without a word, or would
            // overwrite the entry around it: refuse the file instead.
            guard statement != nil, entry == nil, ancestor(1) == .Stmt || ancestor(1) == .Ntfctn else {
                fail(entry != nil ? "Ntry inside another Ntry: one of the two entries would be lost"
                                  : "Ntry outside a statement (Stmt/Ntfctn directly under the message root): the entry would be lost")
                return
            }
            entryIndex += 1
            entry = EntryInProgress(line: line)
        case .TxDtls:
            guard entry != nil, transaction == nil, ancestor(1) == .NtryDtls else {
                fail(transaction != nil ? "TxDtls inside another TxDtls: a transaction would be lost" : "TxDtls outside Ntry/NtryDtls: the transaction would be lost")
                return
            }
            guard (entry?.transactions.count ?? 0) < limits.maximumTransactionsPerEntry else {
                fail("more than \(limits.maximumTransactionsPerEntry) transactions in one entry")
                return
            }
            transaction = TransactionInProgress()
        case .Amt:
            amountCurrencyCode = nil
            if let attributes {
                // Five pointers per attribute: localname, prefix, URI, value start, value end.
                for index in 0..<attributeCount {
                    let base = index * 5
                    guard let attributeName = attributes[base], String(cString: attributeName) == "Ccy",
                        let start = attributes[base + 3], let end = attributes[base + 4]
                    else { continue }
                    let length = end - start
                    guard length >= 0, length <= 16 else { continue }
                    amountCurrencyCode = BankTextDecoding.decode(UnsafeBufferPointer(start: start, count: length))
                }
            }
        default:
            break
        }
    }

    func textFound(_ characters: UnsafePointer<xmlChar>?, _ length: Int) {
        guard failure == nil, let characters, length > 0, tags.last?.carriesText == true else { return }
        guard text.count + length <= limits.maximumFieldBytes else {
            fail("element text longer than \(limits.maximumFieldBytes) bytes")
            return
        }
        text.append(contentsOf: UnsafeBufferPointer(start: characters, count: length))
    }

    func elementEnded(_ localName: UnsafePointer<xmlChar>?) {
        guard failure == nil, let last = tags.last else { return }
        let value = last.carriesText ? BankTextDecoding.decode(text).trimmingBlanks() : ""
        text.removeAll(keepingCapacity: true)
        handleEnd(last, value)
        tags.removeLast()
        names.removeLast()
    }

    func documentEnded() throws(BankFormatError) {
        if let failure { throw failure }
        guard sawMessageRoot else {
            throw BankFormatError(
                format: format, position: .file,
                message: "no BkToCstmrStmt (camt.053) or BkToCstmrDbtCdtNtfctn (camt.054) message")
        }
    }

    // MARK: Meaning of elements

    /// The tag `distance` levels above the current element (1 = parent).
    private func ancestor(_ distance: Int) -> CamtTag? {
        let index = tags.count - 1 - distance
        return index >= 0 ? tags[index] : nil
    }

    private func isWithin(_ tag: CamtTag) -> Bool { tags.dropLast().contains(tag) }

    private func handleEnd(_ tag: CamtTag, _ value: String) {
        if transaction != nil {
            if tag == .TxDtls {
                entry?.transactions.append(transaction!)
                transaction = nil
            } else {
                handleTransactionElement(tag, value)
            }
            return
        }
        if entry != nil {
            if tag == .Ntry {
                completeEntry()
            } else if !isWithin(.NtryDtls) {
                handleEntryElement(tag, value)
            }
            return
        }
        if balance != nil {
            if tag == .Bal { completeBalance() } else { handleBalanceElement(tag, value) }
            return
        }
        guard statement != nil else { return }
        switch tag {
        case .Stmt, .Ntfctn: completeStatement()
        case .Id where ancestor(1) == .Stmt || ancestor(1) == .Ntfctn: statement?.statementID = value
        case .ElctrncSeqNb: statement?.sequence = value
        case .LglSeqNb where statement?.sequence == nil: statement?.sequence = value
        case .IBAN where ancestor(1) == .Id && ancestor(2) == .Acct: statement?.account = value
        case .Id where ancestor(1) == .Othr && ancestor(2) == .Id && ancestor(3) == .Acct:
            if statement?.account == nil { statement?.account = value }
        case .Ccy where ancestor(1) == .Acct:
            guard let currency = BankCurrency.named(value) else { return fail("unknown currency \(value)") }
            statement?.currency = currency
        default: break
        }
    }

    private func handleBalanceElement(_ tag: CamtTag, _ value: String) {
        switch tag {
        case .Cd where ancestor(1) == .CdOrPrtry: balance?.code = value
        case .Amt where ancestor(1) == .Bal:
            balance?.amountText = value
            balance?.currencyCode = amountCurrencyCode
        case .CdtDbtInd: balance?.creditDebit = value
        case .Dt where ancestor(1) == .Dt, .DtTm where ancestor(1) == .Dt:
            guard let date = BankDateParsing.iso(value) else { return fail("invalid date \(value)") }
            balance?.date = date
        default: break
        }
    }

    private func handleEntryElement(_ tag: CamtTag, _ value: String) {
        switch tag {
        case .NtryRef: entry?.entryReference = value
        case .AcctSvcrRef where ancestor(1) == .Ntry: entry?.servicerReference = value
        case .Amt where ancestor(1) == .Ntry:
            guard entry?.amountText == nil else { return fail("Ntry has a second Amt: which amount was booked is not clear") }
            entry?.amountText = value
            entry?.currencyCode = amountCurrencyCode
        case .CdtDbtInd where ancestor(1) == .Ntry:
            guard entry?.creditDebit == nil else { return fail("Ntry has a second CdtDbtInd: the direction of the money is not clear") }
            entry?.creditDebit = value
        case .RvslInd: entry?.reversal = value == "true" || value == "1"
        case .Sts where ancestor(1) == .Ntry && !value.isEmpty: entry?.status = value
        case .Cd where ancestor(1) == .Sts: entry?.status = value
        case .Dt, .DtTm:
            guard ancestor(1) == .BookgDt || ancestor(1) == .ValDt else { return }
            guard let date = BankDateParsing.iso(value) else { return fail("invalid date \(value)") }
            if ancestor(1) == .BookgDt { entry?.bookingDate = date } else { entry?.valueDate = date }
        case .Cd where ancestor(1) == .Domn: entry?.transactionCode.domain = value
        case .Cd where ancestor(1) == .Fmly: entry?.transactionCode.family = value
        case .SubFmlyCd: entry?.transactionCode.subFamily = value
        case .Cd where ancestor(1) == .Prtry && ancestor(2) == .BkTxCd:
            if entry?.transactionCode.proprietary == nil { entry?.transactionCode.proprietary = value }
        case .AddtlNtryInf: entry?.additionalInfo = value
        default: break
        }
    }

    private func handleTransactionElement(_ tag: CamtTag, _ value: String) {
        switch tag {
        case .EndToEndId where value.uppercased() != "NOTPROVIDED": transaction?.endToEndID = value
        case .TxId where ancestor(1) == .Refs: transaction?.transactionID = value
        case .AcctSvcrRef where ancestor(1) == .Refs: transaction?.servicerReference = value
        case .Amt where ancestor(1) == .TxDtls:
            transaction?.amountText = value
            transaction?.amountCurrencyCode = amountCurrencyCode
        case .Amt where ancestor(1) == .TxAmt || ancestor(1) == .InstdAmt:
            if transaction?.transactionAmountText == nil || ancestor(1) == .TxAmt {
                transaction?.transactionAmountText = value
                transaction?.transactionCurrencyCode = amountCurrencyCode
            }
        case .CdtDbtInd where ancestor(1) == .TxDtls: transaction?.creditDebit = value
        case .Cd where ancestor(1) == .Domn: transaction?.transactionCode.domain = value
        case .Cd where ancestor(1) == .Fmly: transaction?.transactionCode.family = value
        case .SubFmlyCd: transaction?.transactionCode.subFamily = value
        case .Cd where ancestor(1) == .Prtry && ancestor(2) == .BkTxCd:
            if transaction?.transactionCode.proprietary == nil { transaction?.transactionCode.proprietary = value }
        case .Nm where isWithin(.RltdPties):
            let party = ancestor(1) == .Pty ? ancestor(2) : ancestor(1)
            if party == .Dbtr { transaction?.debtorName = value }
            if party == .Cdtr { transaction?.creditorName = value }
        case .IBAN where ancestor(1) == .Id, .Id where ancestor(1) == .Othr && ancestor(2) == .Id:
            let holder = tag == .IBAN ? ancestor(2) : ancestor(3)
            if holder == .DbtrAcct, transaction?.debtorAccount == nil || tag == .IBAN { transaction?.debtorAccount = value }
            if holder == .CdtrAcct, transaction?.creditorAccount == nil || tag == .IBAN { transaction?.creditorAccount = value }
        case .Ustrd where !value.isEmpty: transaction?.unstructured.append(value)
        case .Ref where ancestor(1) == .CdtrRefInf:
            if transaction?.structuredReference == nil { transaction?.structuredReference = value }
        case .AddtlTxInf: transaction?.additionalInfo = value
        default: break
        }
    }

    // MARK: Completion

    private func parseMoney(_ text: String?, _ code: String?, _ what: String) -> Money? {
        guard let text else { fail("\(what) has no amount"); return nil }
        guard let code else { fail("\(what) has no Ccy attribute"); return nil }
        guard let currency = BankCurrency.named(code) else { fail("\(what): unknown currency \(code)"); return nil }
        do {
            let minorUnits = try BankAmount.parseDecimal(text.utf8, separator: UInt8(ascii: "."), currency: currency)
            return Money(minorUnits: minorUnits, currency: currency)
        } catch {
            fail("\(what): \(error.message): \(text.prefix(40))")
            return nil
        }
    }

    private func parseDirection(_ text: String?, _ what: String) -> CreditDebit? {
        switch text {
        case "CRDT": return .credit
        case "DBIT": return .debit
        case nil: fail("\(what) has no CdtDbtInd"); return nil
        case let other?: fail("\(what): CdtDbtInd must be CRDT or DBIT, not \(other.prefix(20))"); return nil
        }
    }

    private func completeBalance() {
        guard let current = balance else { return }
        balance = nil
        // Some banks omit CdtDbtInd on a balance that is zero or in credit (camt amounts carry no sign):
        // read as credit. A debit balance misread this way is caught by the balance check (opening +
        // booked entries = closing) whenever the statement has both balances.
        guard let amount = parseMoney(current.amountText, current.currencyCode, "balance"),
            let direction = current.creditDebit == nil ? .credit : parseDirection(current.creditDebit, "balance")
        else { return }
        let signed = BankBalance(amount: direction == .credit ? amount : -amount, date: current.date)
        switch current.code {
        case "OPBD", "PRCD": if statement?.opening == nil { statement?.opening = signed }
        case "CLBD": statement?.closing = signed
        default: break
        }
    }

    private func completeEntry() {
        guard let current = entry, var owner = statement else { return }
        entry = nil
        guard let amount = parseMoney(current.amountText, current.currencyCode, "entry"),
            let direction = parseDirection(current.creditDebit, "entry")
        else { return }
        guard amount.minorUnits > 0 || amount.isZero else { return fail("entry amount is negative") }
        guard let account = owner.account else { return fail("entry before the statement's Acct/Id") }
        var details: [BankTransactionDetails] = []
        for transaction in current.transactions {
            var transactionAmount: Money?
            if let text = transaction.amountText ?? transaction.transactionAmountText {
                guard let money = parseMoney(
                    text, transaction.amountText != nil ? transaction.amountCurrencyCode : transaction.transactionCurrencyCode,
                    "transaction")
                else { return }
                transactionAmount = money
            } else if current.transactions.count == 1 {
                transactionAmount = amount
            }
            var transactionDirection = direction
            if transaction.creditDebit != nil {
                guard let parsed = parseDirection(transaction.creditDebit, "transaction") else { return }
                transactionDirection = parsed
            }
            let remittance = transaction.unstructured.isEmpty ? transaction.additionalInfo : transaction.unstructured.joined(separator: " ")
            details.append(
                BankTransactionDetails(
                    amount: transactionAmount, creditDebit: transactionDirection,
                    bankReference: transaction.servicerReference ?? transaction.transactionID,
                    endToEndID: transaction.endToEndID, remittanceInfo: remittance,
                    structuredReference: transaction.structuredReference ?? remittance.flatMap(CreditorReference.firstRF(in:)),
                    debtorName: transaction.debtorName, debtorAccount: transaction.debtorAccount,
                    creditorName: transaction.creditorName, creditorAccount: transaction.creditorAccount,
                    bankTransactionCode: transaction.transactionCode.text ?? current.transactionCode.text))
        }
        let single = details.count == 1 ? details[0] : nil
        let remittance = single?.remittanceInfo ?? current.additionalInfo
        var built = BankEntry(
            entryID: "", statementID: owner.statementID, account: account, creditDebit: direction, amount: amount,
            reversal: current.reversal, bookingDate: current.bookingDate, valueDate: current.valueDate,
            remittanceInfo: remittance,
            structuredReference: single?.structuredReference ?? remittance.flatMap(CreditorReference.firstRF(in:)),
            debtorName: single?.debtorName, debtorAccount: single?.debtorAccount, endToEndID: single?.endToEndID,
            bankTransactionCode: current.transactionCode.text ?? single?.bankTransactionCode, status: current.status,
            transactions: details)
        if let reference = current.servicerReference ?? current.entryReference ?? single?.bankReference {
            built.entryID = reference
        } else {
            built.entryIDIsDigest = true
            built.entryID = identity.digestID(
                format: format, account: account, amount: amount, creditDebit: direction, bookingDate: current.bookingDate,
                valueDate: current.valueDate, transactionCode: built.bankTransactionCode,
                customerReference: single?.endToEndID, remittanceInfo: remittance)
        }
        if owner.currency == nil { owner.currency = amount.currency }
        if current.status == nil || current.status == "BOOK" {
            if amount.currency != (owner.opening?.amount.currency ?? owner.currency) {
                owner.bookedCurrencyMismatch = true
            } else {
                let (sum, overflow) = owner.bookedMinorUnits.addingReportingOverflow(built.signedAmount.minorUnits)
                guard !overflow else { return fail("entries overflow the statement total") }
                owner.bookedMinorUnits = sum
            }
        }
        owner.entryCount += 1
        statement = owner
        sink.entryFound(built)
    }

    private func completeStatement() {
        guard let current = statement else { return }
        statement = nil
        guard let account = current.account else { return fail("statement without Acct/Id", line: current.line) }
        guard let currency = current.currency ?? current.opening?.amount.currency ?? current.closing?.amount.currency else {
            return fail("statement without a currency (no Acct/Ccy, balance or entry)", line: current.line)
        }
        // A statement with both balances must add up: opening + booked credits − booked debits = closing.
        if limits.verifiesBalances, let opening = current.opening, let closing = current.closing, !current.bookedCurrencyMismatch,
            opening.amount.currency == closing.amount.currency
        {
            let (expected, overflow) = opening.amount.minorUnits.addingReportingOverflow(current.bookedMinorUnits)
            guard !overflow, expected == closing.amount.minorUnits else {
                let computed = Money.format(minorUnits: expected, digits: opening.amount.currency.minorUnitDigits)
                return fail(
                    "closing balance \(closing.amount) does not equal opening balance \(opening.amount) plus booked entries (\(computed))")
            }
        }
        sink.statementCompleted(
            BankStatement(
                format: format, statementID: current.statementID, sequenceNumber: current.sequence, account: account,
                currency: currency, openingBalance: current.opening, closingBalance: current.closing, entries: [],
                entryCount: current.entryCount))
    }
}
