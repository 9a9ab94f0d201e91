import PostgresClient
import Store
import Testing

/// The router's and the outbox publisher's sessions reuse generic plans: PostgreSQL's default
/// keeps choosing a custom plan for their `unnest($1)` and `LIMIT $1` statements and so plans
/// them on every call (see `Store.useGenericPlans`). pg_prepared_statements counts both kinds.
@Suite(.serialized) struct GenericPlanTests {
    /// Custom and generic plans made so far in this session for statements containing `fragment`.
    static func plans(_ store: Store, of fragment: String) throws -> (custom: Int64, generic: Int64) {
        let row = try #require(try store.db.query("""
            SELECT COALESCE(sum(custom_plans), 0)::bigint AS custom, COALESCE(sum(generic_plans), 0)::bigint AS generic
            FROM pg_prepared_statements WHERE strpos(statement, $1) > 0
            """, [.text(fragment)]).first)
        return (row.requiredInt64("custom"), row.requiredInt64("generic"))
    }

    static func exercise(_ store: Store) throws {
        for round in 0..<8 {
            _ = try store.transaction { try store.claimOutbox(limit: 256) }
            _ = try store.partitionKeyCustomers([(kind: "payment", id: "p\(round)"), (kind: "invoice", id: "i\(round)")])
        }
    }

    @Test func theRouterAndOutboxSessionsDoNotPlanEachCall() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        try store.useGenericPlans()
        try Self.exercise(store)
        for fragment in ["FROM outbox WHERE published_at IS NULL", "FROM unnest($1::text[], $2::text[]) AS r(kind, id)"] {
            let plans = try Self.plans(store, of: fragment)
            #expect(plans.custom == 0, "\(fragment): \(plans.custom) custom plans")
            #expect(plans.generic == 8, "\(fragment): \(plans.generic) generic plans")
        }
    }

    /// Why the setting is there: without it the same calls are planned every time.
    @Test func withoutItTheSameStatementsArePlannedEachCall() throws {
        let scratch = try PipelineFixtures.Scratch()
        defer { scratch.close() }
        let store = Store(try scratch.connect())
        // A router's table as it is in service: keys of many routed ids, analysed.
        try store.db.execute("""
            INSERT INTO partition_keys (kind, id, customer_id) SELECT 'payment', 'p-' || n, 'c-' || (n % 500) FROM generate_series(1, 20000) AS n
            """, [])
        _ = try store.db.simpleQuery("ANALYZE partition_keys")
        try Self.exercise(store)
        let lookUp = try Self.plans(store, of: "FROM unnest($1::text[], $2::text[]) AS r(kind, id)")
        #expect(lookUp.custom == 8 && lookUp.generic <= 1, "\(lookUp)")
    }
}
