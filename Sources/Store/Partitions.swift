import PostgresClient

/// A consumer thread of some instance, as the database last heard of it.
public struct PartitionMember: Sendable, Equatable {
    public let memberID: String
    public let host: String
    public let pid: Int64
    public let holds: [String]
    public let heartbeatAgeMilliseconds: Int64
}

/// Routing and consumption progress of one partition queue.
public struct PartitionProgress: Sendable, Equatable {
    public let queue: String
    public let routed: Int64
    public let applied: Int64
    public let skipped: Int64
    /// routed - applied: messages routed and not yet applied (queued or in flight).
    public var backlog: Int64 { max(0, routed - applied) }
}

/// The partitioned intake's SQL (migration 0007): layout, per-partition sequence numbers, the
/// router's id → customer table, consumer membership, and the advisory locks that let one
/// session at a time route the intake or consume a partition.
extension Store {
    // MARK: advisory locks

    /// Session-level advisory locks in the two-key space (classid, objid), which never collides
    /// with the one-key locks of migrations and business keys.
    public static let partitionLockSpace: Int32 = 0x5244_5031  // "RDP1"
    public static let routerLockKey: Int32 = -1

    /// Tries to take the session lock `key`; true when this session holds it now.
    public func tryPartitionLock(_ key: Int32) throws(PostgresError) -> Bool {
        try db.query("SELECT pg_try_advisory_lock($1::int, $2::int) AS locked", [.int(Int(Store.partitionLockSpace)), .int(Int(key))])
            .first?.bool("locked") ?? false
    }

    public func releasePartitionLock(_ key: Int32) throws(PostgresError) {
        try db.query("SELECT pg_advisory_unlock($1::int, $2::int)", [.int(Int(Store.partitionLockSpace)), .int(Int(key))])
    }

    /// Server-side keepalives for this session: if the host holding a lock dies without closing
    /// its socket, PostgreSQL ends the session (and frees its locks) within about 15 s instead of
    /// the kernel default of hours.
    public func enableSessionKeepalives() throws(PostgresError) {
        try db.simpleQuery("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 4")
    }

    /// A round trip on this session: throws when the session (and so its locks) is gone.
    public func ping() throws(PostgresError) {
        try db.query("SELECT 1 AS alive")
    }

    // MARK: layout

    public func partitionLayout() throws(PostgresError) -> Int? {
        try db.query("SELECT partitions FROM partition_layout").first?.int64("partitions").map(Int.init)
    }

    public func setPartitionLayout(_ partitions: Int) throws(PostgresError) {
        try db.query("""
            INSERT INTO partition_layout (partitions) VALUES ($1)
            ON CONFLICT (singleton) DO UPDATE SET partitions = EXCLUDED.partitions, changed_at = now()
            """, [.int(partitions)])
    }

    // MARK: router

    /// Locks the routed counters of `queues` for this transaction (creating missing ones at 0)
    /// and returns them. Call inside a transaction.
    public func lockRoutedSequences(_ queues: [String]) throws(PostgresError) -> [String: Int64] {
        guard !queues.isEmpty else { return [:] }
        let literal = Store.textArray(Array(Set(queues)).sorted())
        // Sent without waiting: the SELECT right after it carries and checks it (one round trip).
        try db.execute("INSERT INTO partition_routed (queue) SELECT unnest($1::text[]) ON CONFLICT (queue) DO NOTHING", [.text(literal)])
        var result: [String: Int64] = [:]
        for row in try db.query("SELECT queue, routed_seq FROM partition_routed WHERE queue = ANY($1::text[]) ORDER BY queue FOR UPDATE",
                                [.text(literal)]).all {
            result[row.requiredString("queue")] = row.requiredInt64("routed_seq")
        }
        return result
    }

    /// Sent without waiting in a transaction (the COMMIT carries and checks it).
    public func advanceRoutedSequences(_ sequences: [String: Int64]) throws(PostgresError) {
        guard !sequences.isEmpty else { return }
        let ordered = sequences.sorted { $0.key < $1.key }
        try db.execute("""
            UPDATE partition_routed AS r SET routed_seq = GREATEST(r.routed_seq, s.seq), routed_at = now()
            FROM unnest($1::text[], $2::bigint[]) AS s(queue, seq) WHERE r.queue = s.queue
            """, [.text(Store.textArray(ordered.map(\.key))), .text(Store.intArray(ordered.map(\.value)))])
    }

    /// The customers of the given invoice/payment ids: what the router recorded, else (ids from
    /// before the partitioned intake) the books themselves. Keys are "kind:id".
    public func partitionKeyCustomers(_ references: [(kind: String, id: String)]) throws(PostgresError) -> [String: String] {
        guard !references.isEmpty else { return [:] }
        let kinds = Store.textArray(references.map(\.kind)), ids = Store.textArray(references.map(\.id))
        var result: [String: String] = [:]
        for row in try db.query("""
            SELECT r.kind, r.id, COALESCE(k.customer_id, i.customer_id, p.customer_id) AS customer_id
            FROM unnest($1::text[], $2::text[]) AS r(kind, id)
            LEFT JOIN partition_keys k ON k.kind = r.kind AND k.id = r.id
            LEFT JOIN invoices i ON r.kind = 'invoice' AND i.invoice_id = r.id
            LEFT JOIN payments p ON r.kind = 'payment' AND p.payment_id = r.id
            """, [.text(kinds), .text(ids)]).all {
            if let customer = row.string("customer_id") { result[row.requiredString("kind") + ":" + row.requiredString("id")] = customer }
        }
        return result
    }

    /// Remembers id → customer for ids created by routed messages; the first one wins.
    /// Sent without waiting in a transaction (the next wait or the COMMIT checks it).
    public func rememberPartitionKeys(_ keys: [(kind: String, id: String, customerID: String)]) throws(PostgresError) {
        guard !keys.isEmpty else { return }
        try db.execute("""
            INSERT INTO partition_keys (kind, id, customer_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (kind, id) DO NOTHING
            """, [.text(Store.textArray(keys.map(\.kind))), .text(Store.textArray(keys.map(\.id))), .text(Store.textArray(keys.map(\.customerID)))])
    }

    // MARK: consumers

    /// The last applied sequence number of a partition queue (0 when nothing was applied yet).
    public func appliedSequence(_ queue: String) throws(PostgresError) -> Int64 {
        try db.query("SELECT applied_seq FROM partition_applied WHERE queue = $1", [.text(queue)]).first?.int64("applied_seq") ?? 0
    }

    /// Records how far partitions were applied; in the transaction of the messages themselves.
    public func recordAppliedSequences(_ sequences: [String: Int64], skipped: [String: Int64] = [:]) throws(PostgresError) {
        let queues = Set(sequences.keys).union(skipped.keys).sorted()
        guard !queues.isEmpty else { return }
        try db.execute("""
            INSERT INTO partition_applied AS a (queue, applied_seq, skipped)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
            ON CONFLICT (queue) DO UPDATE SET applied_seq = GREATEST(a.applied_seq, EXCLUDED.applied_seq),
                skipped = a.skipped + EXCLUDED.skipped, applied_at = now()
            """, [.text(Store.textArray(queues)), .text(Store.intArray(queues.map { sequences[$0] ?? 0 })),
                  .text(Store.intArray(queues.map { skipped[$0] ?? 0 }))])
    }

    /// Routed and applied numbers of every partition queue known to the database.
    public func partitionProgress() throws(PostgresError) -> [PartitionProgress] {
        try db.query("""
            SELECT COALESCE(r.queue, a.queue) AS queue, COALESCE(r.routed_seq, 0) AS routed,
                   COALESCE(a.applied_seq, 0) AS applied, COALESCE(a.skipped, 0) AS skipped
            FROM partition_routed r FULL JOIN partition_applied a ON a.queue = r.queue ORDER BY 1
            """).all.map {
            PartitionProgress(queue: $0.requiredString("queue"), routed: $0.requiredInt64("routed"), applied: $0.requiredInt64("applied"),
                              skipped: $0.requiredInt64("skipped"))
        }
    }

    // MARK: membership

    /// Announces (or refreshes) a consumer thread and what it consumes now.
    public func heartbeatMember(_ memberID: String, host: String, pid: Int, holds: [String]) throws(PostgresError) {
        try db.query("""
            INSERT INTO partition_members (member_id, host, pid, holds) VALUES ($1, $2, $3, $4::text[])
            ON CONFLICT (member_id) DO UPDATE SET heartbeat_at = now(), holds = EXCLUDED.holds
            """, [.text(memberID), .text(host), .int(pid), .text(Store.textArray(holds.sorted()))])
    }

    /// Members heard from within `leaseMilliseconds` (database time: no clock skew between hosts).
    public func liveMembers(leaseMilliseconds: Int) throws(PostgresError) -> [PartitionMember] {
        try members(where: "heartbeat_at > now() - make_interval(secs => $1::double precision / 1000)", [.int(leaseMilliseconds)])
    }

    public func allMembers() throws(PostgresError) -> [PartitionMember] {
        try members(where: "true", [])
    }

    private func members(where condition: String, _ parameters: [PostgresValue]) throws(PostgresError) -> [PartitionMember] {
        try db.query("""
            SELECT member_id, host, pid, array_to_string(holds, ',') AS holds,
                   (EXTRACT(EPOCH FROM now() - heartbeat_at) * 1000)::bigint AS age
            FROM partition_members WHERE \(condition) ORDER BY member_id
            """, parameters).all.map {
            PartitionMember(memberID: $0.requiredString("member_id"), host: $0.requiredString("host"), pid: $0.requiredInt64("pid"),
                            holds: ($0.string("holds") ?? "").split(separator: ",").map(String.init),
                            heartbeatAgeMilliseconds: $0.requiredInt64("age"))
        }
    }

    /// A member leaves (graceful stop) so the others take its partitions at once.
    public func removeMember(_ memberID: String) throws(PostgresError) {
        try db.query("DELETE FROM partition_members WHERE member_id = $1", [.text(memberID)])
    }

    /// Forgets members not heard from for a long time (crashed instances).
    public func removeStaleMembers(olderThanSeconds seconds: Int) throws(PostgresError) {
        try db.query("DELETE FROM partition_members WHERE heartbeat_at < now() - make_interval(secs => $1::double precision)", [.int(seconds)])
    }
}

extension Store {
    /// Whether some session holds the router lock (one instance routes the intake queue).
    public func routerLockHeld() throws(PostgresError) -> Bool {
        // Two-key advisory locks show classid and objid as unsigned 32-bit oids, objsubid 2.
        try db.query("""
            SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND classid = $1::oid AND objid = $2::oid AND objsubid = 2
            """, [.text(String(UInt32(bitPattern: Store.partitionLockSpace))), .text(String(UInt32(bitPattern: Store.routerLockKey)))])
            .first?.int64("n") ?? 0 > 0
    }
}
