import ARDomain
import Foundation
import Testing

@testable import BankFormats

/// Expected entries below were worked out by hand from the fixture files (and the format specs).
@Suite struct CamtFixtureTests {
    @Test func version02WithPrefixesStatusAsTextAndTxAmt() throws {
        let statements = try BankFormats.parse(try fixtureBytes("camt053_v02_prefixed.xml"))
        #expect(statements.count == 1)
        let statement = statements[0]
        #expect(statement.format == .camt053)
        #expect(statement.statementID == "0352C5320131227220503")
        #expect(statement.sequenceNumber == "352")
        #expect(statement.account == "CH2609000000857666015")
        #expect(statement.currency.code == "CHF")
        #expect(statement.openingBalance == BankBalance(amount: money("1000.00", "CHF"), date: date("2013-12-27")))
        #expect(statement.closingBalance?.amount == money("1249.50", "CHF"))
        #expect(statement.entries.count == 3)

        let credit = statement.entries[0]
        #expect(credit.entryID == "131227CH0000EXW5")
        #expect(!credit.entryIDIsDigest)
        #expect(credit.creditDebit == .credit)
        #expect(credit.amount == money("300.00", "CHF"))
        #expect(credit.bookingDate == date("2013-12-27"))
        #expect(credit.valueDate == date("2013-12-27"))
        #expect(credit.structuredReference == "RF18539007547034")
        #expect(credit.debtorName == "Muster & Söhne AG")
        #expect(credit.debtorAccount == "CH9300762011623852957")
        #expect(credit.endToEndID == "E2E-INV-1001")
        #expect(credit.bankTransactionCode == "PMNT/RCDT/AUTT")
        #expect(credit.status == "BOOK")
        #expect(credit.transactions.count == 1)
        #expect(credit.transactions[0].amount == money("300.00", "CHF"))

        let fee = statement.entries[1]
        #expect(fee.entryID == "FEE-1227")
        #expect(fee.creditDebit == .debit)
        #expect(fee.amount == money("50.50", "CHF"))
        #expect(fee.remittanceInfo == "Account fees December")
        #expect(fee.bankTransactionCode == "FEES")
        #expect(fee.transactions.isEmpty)

        let pending = statement.entries[2]
        #expect(pending.status == "PDNG")
        #expect(pending.entryIDIsDigest)
        #expect(pending.entryID.hasPrefix("sha256:"))
        #expect(pending.valueDate == nil)
    }

    @Test func version08BatchReversalAndSeveralStatements() throws {
        let statements = try BankFormats.parse(try fixtureBytes("camt053_v08_batch_multi.xml"), format: .camt053)
        #expect(statements.count == 2)
        let first = statements[0]
        #expect(first.openingBalance?.amount == money("-500.00", "EUR"))
        #expect(first.closingBalance?.amount == money("1000.00", "EUR"))
        #expect(first.sequenceNumber == "32")
        let batch = first.entries[0]
        #expect(batch.entryID == "2024020100077")
        #expect(batch.amount == money("1750.00", "EUR"))
        #expect(batch.bookingDate == date("2024-02-01"))
        #expect(batch.transactions.count == 3)
        // Batched: entry-level party fields stay empty, each transaction has its own.
        #expect(batch.debtorName == nil)
        #expect(batch.transactions[0].debtorName == "Alpha GmbH")
        #expect(batch.transactions[0].endToEndID == "INV-2024-0001")
        #expect(batch.transactions[0].bankReference == "TX-1")
        #expect(batch.transactions[0].remittanceInfo == "Invoice INV-2024-0001 and thanks")
        #expect(batch.transactions[1].endToEndID == nil)  // NOTPROVIDED
        #expect(batch.transactions[1].debtorAccount == "0532013000")
        #expect(batch.transactions[1].structuredReference == "RF712348231")
        #expect(batch.transactions[2].structuredReference == "RF18539007547034")  // print form in Ustrd
        #expect(batch.transactions.compactMap(\.amount).reduce(Money.zero(Currency(code: "EUR")!), +) == batch.amount)

        let reversal = first.entries[1]
        #expect(reversal.reversal)
        #expect(reversal.creditDebit == .debit)
        #expect(reversal.endToEndID == "E2E-RETURN-9")
        #expect(reversal.remittanceInfo == "Return of credit")
        #expect(reversal.entryIDIsDigest)

        let second = statements[1]
        #expect(second.account == "123456789")
        #expect(second.sequenceNumber == "7")
        #expect(second.currency.code == "JPY")
        #expect(second.entries[0].amount == money("5000", "JPY"))
    }

    @Test func notificationVersion04() throws {
        let bytes = try fixtureBytes("camt054_v04.xml")
        #expect(BankFormats.detectFormat(prefix: bytes) == .camt054)
        let statements = try BankFormats.parse(bytes)
        #expect(statements[0].format == .camt054)
        let entry = statements[0].entries[0]
        // Same booking as in the camt.053: same entry id, so reconciliation applies it once.
        #expect(entry.entryID == "2024020100077")
        #expect(entry.debtorName == "Alpha GmbH")
        #expect(entry.remittanceInfo == "Invoice INV-2024-0001")
        #expect(statements[0].currency.code == "EUR")
    }

    @Test func wrongFormatRequestedIsRefused() throws {
        let error = parseError(try fixtureBytes("camt054_v04.xml"), format: .camt053)
        #expect(error?.message.contains("camt.054") == true)
    }
}

@Suite struct BAI2FixtureTests {
    @Test func continuationRecordsAndCRLF() throws {
        let statements = try BankFormats.parse(try fixtureBytes("bai2_continuation_crlf.bai2"))
        #expect(statements.count == 1)
        let statement = statements[0]
        #expect(statement.account == "77777777")
        #expect(statement.currency.code == "GBP")
        #expect(statement.openingBalance?.amount == money("100.00", "GBP"))
        #expect(statement.closingBalance?.amount == money("100.00", "GBP"))
        let entry = statement.entries[0]
        #expect(entry.amount == money("0.01", "GBP"))
        #expect(entry.creditDebit == .credit)
        #expect(entry.entryID == "1234567890")
        #expect(entry.valueDate == date("2015-07-15"))
        #expect(entry.remittanceInfo == "FR:FP SIP INCOMING ENDT:20150715")
        #expect(entry.bankTransactionCode == "191")
    }

    @Test func groupsAccountsFundsTypesAndCurrencies() throws {
        let statements = try BankFormats.parse(try fixtureBytes("bai2_multi_group.bai2"), format: .bai2)
        #expect(statements.map(\.account) == ["1111111111", "2222222222", "3333333333"])
        #expect(statements.map(\.currency.code) == ["USD", "CAD", "JPY"])
        let first = statements[0]
        #expect(first.openingBalance?.amount == money("1000.00", "USD"))
        #expect(first.closingBalance?.amount == money("-250.50", "USD"))
        // 890 (non-monetary information) is not an entry.
        #expect(first.entries.map(\.amount) == [money("1000.00", "USD"), money("500.00", "USD"), money("2500.00", "USD"), money("250.50", "USD")])
        #expect(first.entries.map(\.creditDebit) == [.credit, .credit, .debit, .debit])
        #expect(first.entries[1].structuredReference == "RF18539007547034")
        #expect(first.entries[1].entryID == "BANKREF2")
        #expect(first.entries[2].remittanceInfo == nil)
        #expect(first.entries[3].remittanceInfo == "OUTGOING WIRE CONTINUED TEXT, WITH COMMA")
        #expect(first.entries[3].entryIDIsDigest)
        // Identical bookings without reference get different, stable ids (occurrence counter).
        let twins = statements[1].entries
        #expect(twins.count == 2 && twins[0].entryID != twins[1].entryID)
        let again = try BankFormats.parse(try fixtureBytes("bai2_multi_group.bai2"))
        #expect(again[1].entries.map(\.entryID) == twins.map(\.entryID))
        #expect(statements[2].entries[0].amount == money("700", "JPY"))
        #expect(statements[2].entries[0].valueDate == date("2024-02-01"))
        #expect(statements[2].entries[0].bookingDate == date("2024-02-01"))
    }

    @Test(arguments: [
        ("49,925050,8/", "49,925051,8/", "account control total"),
        ("49,925050,8/", "49,925050,9/", "records"),
        ("98,932518,2,14/", "98,932518,3,14/", "accounts"),
        ("99,933918,2,21/", "99,933917,2,21/", "file control total"),
    ])
    func controlTotalMismatchNamesTheRecord(original: String, replacement: String, expected: String) throws {
        let text = String(decoding: try fixtureBytes("bai2_multi_group.bai2"), as: UTF8.self)
        let broken = text.replacingOccurrences(of: original, with: replacement)
        let error = try #require(parseError(Array(broken.utf8)))
        #expect(error.message.contains(expected))
        guard case .record = error.position else {
            Issue.record("expected a record position, got \(error.position)")
            return
        }
    }
}

@Suite struct MT940FixtureTests {
    @Test func ingKeywordDialectWithBlockHeaders() throws {
        let statements = try BankFormats.parse(try fixtureBytes("mt940_ing_keywords.sta"))
        let statement = try #require(statements.first)
        #expect(statement.statementID == "P140220000000001")
        #expect(statement.account == "NL77INGB0574908765EUR")
        #expect(statement.sequenceNumber == "00001")
        #expect(statement.openingBalance == BankBalance(amount: money("662.23", "EUR"), date: date("2014-02-19")))
        #expect(statement.closingBalance?.amount == money("662.22", "EUR"))
        let credit = statement.entries[0]
        #expect(credit.entryID == "00000000001005")
        #expect(credit.amount == money("1.56", "EUR"))
        #expect(credit.endToEndID == "EV12341REP1231456T1234")
        #expect(credit.remittanceInfo == "EV10001REP1000000T1000")
        #expect(credit.debtorName == "ING BANK NV INZAKE WEB")
        #expect(credit.debtorAccount == "NL32INGB0000012345")
        #expect(credit.bankTransactionCode == "NTRF")
        #expect(statement.entries[1].creditDebit == .debit)
        #expect(statement.entries[1].remittanceInfo == "TOTAAL 1 VZ")
    }

    @Test func germanSubfieldDialectBareTagsReversalsAndTwoStatements() throws {
        let statements = try BankFormats.parse(try fixtureBytes("mt940_german_bare.sta"), format: .mt940)
        #expect(statements.count == 2)
        let first = statements[0]
        #expect(first.account == "10020030/1234567")
        #expect(first.closingBalance?.amount == money("1190.00", "EUR"))
        let credit = first.entries[0]
        #expect(credit.valueDate == date("2023-12-29"))
        #expect(credit.bookingDate == date("2024-01-02"))  // entry date crosses the year
        #expect(credit.amount == money("250.00", "EUR"))
        #expect(credit.endToEndID == "INV-2023-42")
        #expect(credit.remittanceInfo == "Rechnung 2023-42 Kunde 17 RF18539007547034")
        #expect(credit.structuredReference == "RF18539007547034")
        #expect(credit.debtorName == "Müller Handel GmbH")  // ISO-8859-1 in the file
        #expect(credit.debtorAccount == "DE02120300000000202051")
        #expect(credit.bankTransactionCode == "NMSC/166")
        #expect(credit.entryIDIsDigest)
        let reversal = first.entries[2]
        #expect(reversal.reversal && reversal.creditDebit == .debit)
        #expect(reversal.entryID == "RET1")
        let second = statements[1]
        #expect(second.closingBalance?.amount == money("1195.00", "EUR"))
        #expect(second.entries[0].reversal && second.entries[0].creditDebit == .credit)
        #expect(second.entries[0].remittanceInfo == "Erstattung Gebuehr fuer Januar")
    }

    @Test func interimReportMT942() throws {
        let statements = try BankFormats.parse(try fixtureBytes("mt942_interim.sta"))
        let statement = try #require(statements.first)
        #expect(statement.currency.code == "EUR")
        #expect(statement.openingBalance == nil)
        #expect(statement.entries.map(\.amount) == [money("100.00", "EUR"), money("20.50", "EUR")])
        #expect(statement.entries[0].remittanceInfo == "Intraday credit")
        #expect(statement.entries[0].entryID == "BREF1")
    }

    @Test func closingBalanceMismatchIsAnErrorWithLine() throws {
        let text = String(decoding: try fixtureBytes("mt940_ing_keywords.sta"), as: UTF8.self)
        let error = try #require(parseError(Array(text.replacingOccurrences(of: "EUR662,22", with: "EUR662,21").utf8)))
        #expect(error.position == .line(12))
        #expect(error.message.contains("closing balance"))
    }
}
