import ARDomain

/// Renders statements in each format: the generator behind property tests, `receivablesd bench bank`
/// and fuzz seeds. Streaming: `begin()`, then `write(_:)` per statement, then `end()`, each returning
/// text to append, so a 100 MB file never has to be held in memory.
///
/// Writes what the parsers read back (entry id as bank reference, remittance, end-to-end id, debtor);
/// balances are written as given, so callers decide whether they add up.
public struct BankStatementWriter: Sendable {
    public let format: BankFormat
    private var statementNumber = 0
    private var bai2FileTotal: Int64 = 0
    private var bai2FileRecords = 0
    private var bai2Groups = 0

    public init(format: BankFormat) { self.format = format }

    public mutating func begin() -> String {
        switch format {
        case .camt053, .camt054:
            let version = format == .camt053 ? "camt.053.001.08" : "camt.054.001.08"
            let root = format == .camt053 ? "BkToCstmrStmt" : "BkToCstmrDbtCdtNtfctn"
            return """
                <?xml version="1.0" encoding="UTF-8"?>
                <Document xmlns="urn:iso:std:iso:20022:tech:xsd:\(version)">
                <\(root)><GrpHdr><MsgId>GEN-MSG</MsgId><CreDtTm>2024-01-31T18:00:00</CreDtTm></GrpHdr>

                """
        case .bai2:
            bai2FileRecords = 1
            return "01,SENDER,RECEIVER,240131,1800,GEN1,,,2/\n"
        case .mt940:
            return ""
        }
    }

    public mutating func write(_ statement: BankStatement) -> String {
        statementNumber += 1
        switch format {
        case .camt053, .camt054: return camtStatement(statement)
        case .bai2: return bai2Group(statement)
        case .mt940: return mt940Message(statement)
        }
    }

    public mutating func end() -> String {
        switch format {
        case .camt053: return "</BkToCstmrStmt>\n</Document>\n"
        case .camt054: return "</BkToCstmrDbtCdtNtfctn>\n</Document>\n"
        case .bai2:
            bai2FileRecords += 1
            return "99,\(bai2FileTotal),\(bai2Groups),\(bai2FileRecords)/\n"
        case .mt940: return ""
        }
    }

    // MARK: camt

    private func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }

    private func camtStatement(_ statement: BankStatement) -> String {
        let element = format == .camt053 ? "Stmt" : "Ntfctn"
        var xml = "<\(element)><Id>\(escape(statement.statementID ?? "S\(statementNumber)"))</Id>"
        if let sequence = statement.sequenceNumber { xml += "<ElctrncSeqNb>\(escape(sequence))</ElctrncSeqNb>" }
        xml += "<Acct><Id><IBAN>\(escape(statement.account))</IBAN></Id><Ccy>\(statement.currency.code)</Ccy></Acct>\n"
        for (code, balance) in [("OPBD", statement.openingBalance), ("CLBD", statement.closingBalance)] {
            guard let balance else { continue }
            let amount = Money(minorUnits: abs(balance.amount.minorUnits), currency: balance.amount.currency)
            xml += "<Bal><Tp><CdOrPrtry><Cd>\(code)</Cd></CdOrPrtry></Tp><Amt Ccy=\"\(amount.currency.code)\">\(amount.decimalString)</Amt>"
            xml += "<CdtDbtInd>\(balance.amount.minorUnits < 0 ? "DBIT" : "CRDT")</CdtDbtInd>"
            if let date = balance.date { xml += "<Dt><Dt>\(date)</Dt></Dt>" }
            xml += "</Bal>\n"
        }
        for entry in statement.entries {
            xml += "<Ntry>"
            if !entry.entryIDIsDigest { xml += "<NtryRef>\(escape(entry.entryID))</NtryRef>" }
            xml += "<Amt Ccy=\"\(entry.amount.currency.code)\">\(entry.amount.decimalString)</Amt>"
            xml += "<CdtDbtInd>\(entry.creditDebit == .credit ? "CRDT" : "DBIT")</CdtDbtInd>"
            if entry.reversal { xml += "<RvslInd>true</RvslInd>" }
            xml += "<Sts><Cd>\(entry.status ?? "BOOK")</Cd></Sts>"
            if let date = entry.bookingDate { xml += "<BookgDt><Dt>\(date)</Dt></BookgDt>" }
            if let date = entry.valueDate { xml += "<ValDt><Dt>\(date)</Dt></ValDt>" }
            if let code = entry.bankTransactionCode {
                let parts = code.split(separator: "/")
                if parts.count == 3 {
                    xml += "<BkTxCd><Domn><Cd>\(parts[0])</Cd><Fmly><Cd>\(parts[1])</Cd><SubFmlyCd>\(parts[2])</SubFmlyCd></Fmly></Domn></BkTxCd>"
                } else {
                    xml += "<BkTxCd><Prtry><Cd>\(escape(code))</Cd></Prtry></BkTxCd>"
                }
            }
            xml += "<NtryDtls>"
            let transactions = entry.transactions.isEmpty
                ? [BankTransactionDetails(
                    creditDebit: entry.creditDebit, endToEndID: entry.endToEndID, remittanceInfo: entry.remittanceInfo,
                    structuredReference: entry.structuredReference, debtorName: entry.debtorName,
                    debtorAccount: entry.debtorAccount)]
                : entry.transactions
            for transaction in transactions {
                xml += "<TxDtls>"
                if let endToEnd = transaction.endToEndID { xml += "<Refs><EndToEndId>\(escape(endToEnd))</EndToEndId></Refs>" }
                if let amount = transaction.amount {
                    xml += "<Amt Ccy=\"\(amount.currency.code)\">\(amount.decimalString)</Amt>"
                    xml += "<CdtDbtInd>\(transaction.creditDebit == .credit ? "CRDT" : "DBIT")</CdtDbtInd>"
                }
                if transaction.debtorName != nil || transaction.debtorAccount != nil {
                    xml += "<RltdPties>"
                    if let name = transaction.debtorName { xml += "<Dbtr><Pty><Nm>\(escape(name))</Nm></Pty></Dbtr>" }
                    if let account = transaction.debtorAccount { xml += "<DbtrAcct><Id><IBAN>\(escape(account))</IBAN></Id></DbtrAcct>" }
                    xml += "</RltdPties>"
                }
                if transaction.remittanceInfo != nil || transaction.structuredReference != nil {
                    xml += "<RmtInf>"
                    if let text = transaction.remittanceInfo { xml += "<Ustrd>\(escape(text))</Ustrd>" }
                    if let reference = transaction.structuredReference {
                        xml += "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>\(escape(reference))</Ref></CdtrRefInf></Strd>"
                    }
                    xml += "</RmtInf>"
                }
                xml += "</TxDtls>"
            }
            xml += "</NtryDtls></Ntry>\n"
        }
        return xml + "</\(element)>\n"
    }

    // MARK: BAI2

    private mutating func bai2Group(_ statement: BankStatement) -> String {
        let date = statement.openingBalance?.date ?? statement.entries.first?.bookingDate
        let yymmdd = date.map { Self.yymmdd($0) } ?? ""
        var lines = ["02,RECEIVER,BANK,1,\(yymmdd),0000,\(statement.currency.code),2/"]
        var accountTotal: Int64 = 0
        var summary = "03,\(statement.account),\(statement.currency.code)"
        if let opening = statement.openingBalance {
            summary += ",010,\(opening.amount.minorUnits),,"
            accountTotal += opening.amount.minorUnits
        }
        if let closing = statement.closingBalance {
            summary += ",015,\(closing.amount.minorUnits),,"
            accountTotal += closing.amount.minorUnits
        }
        lines.append(summary + "/")
        for entry in statement.entries {
            let typeCode = entry.creditDebit == .credit ? "195" : "495"
            let reference = entry.entryIDIsDigest ? "" : entry.entryID
            var record = "16,\(typeCode),\(entry.amount.minorUnits),0,\(reference),\(entry.endToEndID ?? ""),"
            let text = entry.remittanceInfo ?? ""
            // Long text goes on 88 continuation records, as banks do at 80 columns.
            let characters = Array(text)
            var index = min(characters.count, 40)
            record += String(characters[0..<index])
            lines.append(record)
            while index < characters.count {
                let end = min(index + 60, characters.count)
                lines.append("88," + String(characters[index..<end]))
                index = end
            }
            accountTotal += entry.amount.minorUnits
        }
        let accountRecords = lines.count - 1 + 1  // 03 … 16/88 plus the 49 itself
        lines.append("49,\(accountTotal),\(accountRecords)/")
        lines.append("98,\(accountTotal),1,\(lines.count + 1)/")
        bai2FileTotal += accountTotal
        bai2FileRecords += lines.count
        bai2Groups += 1
        return lines.joined(separator: "\n") + "\n"
    }

    private static func yymmdd(_ date: BankDate) -> String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return two(date.year % 100) + two(date.month) + two(date.day)
    }

    // MARK: MT940

    private func mt940Amount(_ money: Money) -> String {
        money.decimalString.replacingDots()
    }

    private func mt940Balance(_ tag: String, _ balance: BankBalance) -> String {
        let magnitude = Money(minorUnits: abs(balance.amount.minorUnits), currency: balance.amount.currency)
        let mark = balance.amount.minorUnits < 0 ? "D" : "C"
        let date = balance.date.map { Self.yymmdd($0) } ?? "240131"
        return ":\(tag):\(mark)\(date)\(magnitude.currency.code)\(mt940Amount(magnitude))"
    }

    private func mt940Message(_ statement: BankStatement) -> String {
        var lines = ["{1:F01GENBANKXXXXX0000000000}{2:O9401800240131GENBANKXXXXX00000000002401311800N}{4:"]
        lines.append(":20:\(statement.statementID ?? "STMT\(statementNumber)")")
        lines.append(":25:\(statement.account)")
        lines.append(":28C:\(statement.sequenceNumber ?? "\(statementNumber)/1")")
        if let opening = statement.openingBalance { lines.append(mt940Balance("60F", opening)) }
        for entry in statement.entries {
            let valueDate = entry.valueDate ?? entry.bookingDate ?? BankDate(year: 2024, month: 1, day: 31)!
            var line = ":61:\(Self.yymmdd(valueDate))"
            if let booking = entry.bookingDate { line += String(Self.yymmdd(booking).suffix(4)) }
            let mark: String
            switch (entry.creditDebit, entry.reversal) {
            case (.credit, false): mark = "C"
            case (.debit, false): mark = "D"
            case (.credit, true): mark = "RD"
            case (.debit, true): mark = "RC"
            }
            line += mark + mt940Amount(entry.amount) + "NTRF" + (entry.endToEndID ?? "NONREF")
            if !entry.entryIDIsDigest { line += "//" + entry.entryID }
            lines.append(line)
            if let remittance = entry.remittanceInfo {
                // Keyword dialect, wrapped at 65 columns like SWIFT lines.
                var information = "/REMI/" + remittance
                if let name = entry.debtorName { information += "/NAME/" + name }
                if let account = entry.debtorAccount { information += "/IBAN/" + account }
                let characters = Array(":86:" + information)
                var index = 0
                while index < characters.count {
                    let end = min(index + 65, characters.count)
                    lines.append(String(characters[index..<end]))
                    index = end
                }
            }
        }
        if let closing = statement.closingBalance { lines.append(mt940Balance("62F", closing)) }
        lines.append("-}")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

extension String {
    /// "1250.00" → "1250,00"; "1250" (JPY) → "1250," (MT940 amounts always carry the comma).
    fileprivate func replacingDots() -> String {
        let replaced = String(map { $0 == "." ? "," : $0 })
        return replaced.contains(",") ? replaced : replaced + ","
    }
}
