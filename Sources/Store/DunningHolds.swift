import ARDomain
import PostgresClient

extension Store {
    /// Customer-level dunning holds from reconciliation (SPEC section 4): for every bank credit in
    /// state `exception` whose candidates include a customer, one
    /// `CustomerHold(reason: "bank_exception", reference: <entry id>, currency: <entry currency>)`
    /// for that customer, so no reminder goes to someone whose money may be sitting unmatched.
    ///
    /// INTEGRATION HOOK: the reconciliation tables are built on another branch (issue 9,
    /// migration 0004_reconciliation.sql). Until the integrator replaces the body below with
    /// the read of those tables, no bank credit holds anyone. This is the only place that needs
    /// to change: the dunning pass, `dunning explain` and the `dunning_waits` rows already carry
    /// these holds end to end (see the CustomerHold tests in Tests/ARDomainTests).
    public func bankExceptionHolds(customerIDs: [String]) throws(PostgresError) -> [String: [CustomerHold]] {
        guard !customerIDs.isEmpty else { return [:] }
        // Expected shape once wired (names to be taken from 0004_reconciliation.sql):
        //   SELECT candidate.customer_id, e.entry_id, e.currency
        //   FROM bank_entries e CROSS JOIN LATERAL <e's candidate customers> AS candidate(customer_id)
        //   WHERE e.state = 'exception' AND candidate.customer_id = ANY($1::text[])
        return [:]
    }
}
