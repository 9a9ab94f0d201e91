import Testing

extension BlackBoxTests {
    @Test("15. report dso: the countback over invoices dated by their issue date, for a backlog sent today")
    func daysSalesOutstandingByIssueDate() async throws {
        try await harness.ready()
        let result = try await harness.runScript("s15_dso.py")
        expectClean(result, "scenario 15")
    }
}
