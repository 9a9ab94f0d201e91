import ARDomain
import PostgresClient

extension Store {
    /// Customer-level dunning holds from reconciliation (SPEC section 4): for every bank credit in
    /// state `exception` whose candidates include a customer, one
    /// `CustomerHold(reason: "bank_exception", reference: <entry id>, currency: <entry currency>)`
    /// for that customer, so no reminder goes to someone whose money may be sitting unmatched.
    /// Read from `reconciliation_candidates` (migration 0004) through `openExceptionCandidates`,
    /// on its index `(customer_id, entry_id) WHERE state = 'exception'`; a resolved entry's rows
    /// leave that state with it, which releases the hold.
    public func bankExceptionHolds(customerIDs: [String]) throws(PostgresError) -> [String: [CustomerHold]] {
        guard !customerIDs.isEmpty else { return [:] }
        var holds: [String: [CustomerHold]] = [:]
        for candidate in try openExceptionCandidates(customerIDs: customerIDs) {
            holds[candidate.customerID, default: []].append(
                CustomerHold(reason: "bank_exception", reference: candidate.entryID, currency: candidate.amount.currency))
        }
        return holds
    }
}
