import ARDomain
import Testing

@testable import BankFormats

/// Layouts real banks send that the specs do not quite allow; each was seen in public sample files.
@Suite struct LiberalInputTests {
    @Test func bai2SummaryContinuedAfterTrailingCommaAndBlankTrailerTotals() throws {
        let text = """
            01,121140399,121140399,230214,0754,1,,,2/
            02,121140399,121140399,1,220201,,USD,2/
            03,1234567890,USD,010,34726979,,,015,35217175,,,/
            88,040,32742537,,,045,35217175,,,/
            16,165,100,0,REF1,,ACH CREDIT
            49,137903966,4/
            03,55555,/
            49,,2/
            98,137903966,2,8/
            99,137903966,1,10/

            """
        let statements = try BankFormats.parse(Array(text.utf8))
        #expect(statements.count == 2)
        #expect(statements[0].openingBalance?.amount == money("347269.79", "USD"))
        #expect(statements[0].closingBalance?.amount == money("352171.75", "USD"))
        #expect(statements[0].entries.map(\.amount) == [money("1.00", "USD")])
        #expect(statements[1].entries.isEmpty)
    }

    @Test func mt940WrappedAmountThirtiethOfFebruaryAndAmountWithoutComma() throws {
        let text = """
            :20:STARTUMSE
            :25:12345678/1020304050
            :28C:00000/001
            :60F:C160229EUR1200,00
            :61:1602300301DR
            6,00N024NONREF
            :86:106?00ZINSEN
            :61:160301C500NTRFNONREF//B4E07XM00J000023
            :62F:C160301EUR1694,00
            -
            """
        let statement = try #require(try BankFormats.parse(Array(text.utf8)).first)
        #expect(statement.entries[0].valueDate == date("2016-02-29"))
        #expect(statement.entries[0].bookingDate == date("2016-03-01"))
        #expect(statement.entries[0].amount == money("6.00", "EUR"))
        #expect(statement.entries[1].amount == money("500.00", "EUR"))
        #expect(statement.entries[1].entryID == "B4E07XM00J000023")
    }

    @Test func balanceCheckCanBeSwitchedOffForHandEditedSamples() throws {
        let text = ":20:X\n:25:A\n:60F:C240101EUR10,00\n:61:240101C1,00NTRFNONREF\n:62F:C240101EUR99,00\n"
        #expect(parseError(Array(text.utf8)) != nil)
        let statements = try BankFormats.parse(Array(text.utf8), limits: BankParseLimits(verifiesBalances: false))
        #expect(statements[0].entries.count == 1)
    }

    @Test func headerLinesBeforeFirstTagAndLFOnly() throws {
        let text = "ABNANL2A\n940\nABNANL2A\n:20:ABN AMRO BANK NV\n:25:517852257\n:28:19321/1\n:60F:C110522EUR3236,28\n:61:1105240524D9,N192NONREF\n:86:GIRO 428428 KPN\nBETREFT FACTUUR\n:62F:C110524EUR3227,28\n-\n"
        let statement = try #require(try BankFormats.parse(Array(text.utf8)).first)
        #expect(statement.entries[0].amount == money("9.00", "EUR"))
        #expect(statement.entries[0].remittanceInfo == "GIRO 428428 KPN BETREFT FACTUUR")
    }
}
