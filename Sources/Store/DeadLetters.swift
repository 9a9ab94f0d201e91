import PostgresClient

/// A recorded rejection, for `receivablesd dead-letter list|replay`.
public struct DeadLetterRecord: Sendable {
    public let number: Int64
    public let source: String?
    public let eventID: String?
    public let type: String?
    public let routingKey: String
    public let userID: String?
    public let reason: String
    public let detail: String
    public let body: [UInt8]
    public let properties: [String: String]
    public let rejectedAt: String
    public let ageSeconds: Int64
    public let replayedAt: String?
}

extension Store {
    /// Dead letters, newest first, optionally of one reason or message id (CloudEvents id or
    /// dead-letter number); replayed ones only when asked.
    public func deadLetters(reason: String? = nil, id: String? = nil, includeReplayed: Bool = true, limit: Int = 1000) throws(PostgresError) -> [DeadLetterRecord] {
        let rows = try db.query("""
            SELECT dead_letter_id, source, event_id, type, routing_key, user_id, reason, detail, body, properties::text AS properties,
                   to_char(rejected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS rejected_at,
                   EXTRACT(EPOCH FROM now() - rejected_at)::bigint AS age,
                   to_char(replayed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS replayed_at
            FROM dead_letters
            WHERE ($1::text IS NULL OR reason = $1)
              AND ($2::text IS NULL OR event_id = $2 OR dead_letter_id::text = $2)
              AND ($3::boolean OR replayed_at IS NULL)
            ORDER BY dead_letter_id DESC LIMIT $4
            """, [.optional(reason), .optional(id), .bool(includeReplayed), .int(limit)])
        return rows.all.map { row in
            DeadLetterRecord(number: row.requiredInt64("dead_letter_id"), source: row.string("source"), eventID: row.string("event_id"),
                             type: row.string("type"), routingKey: row.requiredString("routing_key"), userID: row.string("user_id"),
                             reason: row.requiredString("reason"), detail: row.requiredString("detail"), body: row.bytes("body") ?? [],
                             properties: Store.parseFlatJSONObject(row.requiredString("properties")), rejectedAt: row.requiredString("rejected_at"),
                             ageSeconds: row.requiredInt64("age"), replayedAt: row.string("replayed_at"))
        }
    }

    /// The unreplayed record of exactly this rejection (same message key, reason and body), if
    /// one exists: a redelivered message rejected again is the same dead letter, not a second one.
    /// `after`: only records newer than this one (a replay of record N is never the record N
    /// itself, which the replaying operator marks replayed only after publishing).
    public func existingDeadLetter(source: String, eventID: String, reason: String, body: [UInt8], after: Int64 = 0) throws(PostgresError) -> Int64? {
        try db.query("""
            SELECT dead_letter_id FROM dead_letters
            WHERE source = $1 AND event_id = $2 AND replayed_at IS NULL AND reason = $3 AND body = $4 AND dead_letter_id > $5
            ORDER BY dead_letter_id LIMIT 1
            """, [.text(source), .text(eventID), .text(reason), .bytes(body), .int(after)]).first?.int64("dead_letter_id")
    }

    public func markReplayed(_ number: Int64) throws(PostgresError) {
        try db.query("UPDATE dead_letters SET replayed_at = now() WHERE dead_letter_id = $1", [.int(number)])
    }
}
