/// The ids of outbound events that report facts (SPEC section 2: "an `id` that is stable for the
/// same fact"). Each id is derived from the fact itself, never from the message that happened to
/// cause it or from the event's position among that message's effects, so one fact has one id by
/// construction:
/// - whichever message makes a transition (a held message released inside another message's
///   transaction, a message applied at expiry, a batch redelivered after a failure was narrowed
///   down, a message re-held and released again), the fact and so the id are the same;
/// - re-applying a message after a rollback recomputes the same facts from the same state, so the
///   same ids;
/// - a second emission of a committed fact collides with the first in the outbox (unique event id)
///   instead of reaching consumers under a new id.
/// Two different facts never share an id: each is keyed by something the database keeps unique (an
/// invoice's transition number, a journal entry id, a payment id, a failure's payment and attempt).
public enum EventIdentity {
    /// The `sequence`-th committed status transition of an invoice (1 = issued).
    public static func invoiceStatusChanged(invoiceID: String, sequence: Int64) -> String {
        StableID.make(["invoice.status_changed", invoiceID, String(sequence)])
    }

    /// A customer's credit in one currency moved: named by the journal entry of the decision that
    /// moved it (unapplied credit only moves through journal entries, and an entry id is unique).
    public static func creditBalanceChanged(customerID: String, currency: Currency, journalEntryID: String) -> String {
        StableID.make(["credit_balance.changed", customerID, currency.code, journalEntryID])
    }

    /// One journal entry posted (its id is the journal's primary key).
    public static func ledgerEntryPosted(journalEntryID: String) -> String {
        StableID.make(["ledger.entry_posted", journalEntryID])
    }

    /// A gateway payment applied: a payment id is applied once (business identity, SPEC section 7).
    public static func paymentConfirmed(paymentID: String) -> String {
        StableID.make(["payment.confirmed", paymentID])
    }

    /// The customer is told about one failed attempt of one payment.
    public static func paymentFailedNotice(paymentID: String, attempt: Int) -> String {
        StableID.make(["payment.failed_notice", paymentID, String(attempt)])
    }
}

extension CustomerBooks {
    /// The decision's journal entry that names the move of this customer's credit in `currency`:
    /// the first of `entries` (the decision's entries with their ids, in posting order) in that
    /// currency with an `unapplied_credit` line. Nil only if credit moved without a journal entry,
    /// which the books never do (every lot change is posted; `verify` checks credit = journal).
    public static func creditMoveEntryID(in currency: Currency, among entries: [(id: String, entry: JournalEntry)]) -> String? {
        entries.first { $0.entry.currency == currency && $0.entry.lines.contains { $0.account == .unappliedCredit } }?.id
    }
}
