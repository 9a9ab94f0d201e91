import ARDomain
import PostgresClient

/// One versioned migration: `NNNN_name.sql`, applied once, in a transaction.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
    public var checksum: String { SHA256Digest.hex(Array(sql.utf8)) }

    public static var bundled: [Migration] {
        EmbeddedMigrations.files.map { file in
            guard let underscore = file.name.firstIndex(of: "_"), let version = Int(file.name[..<underscore]) else {
                preconditionFailure("migration file \(file.name) is not named NNNN_name.sql")
            }
            return Migration(version: version, name: file.name, sql: file.sql)
        }.sorted { $0.version < $1.version }
    }
}

public enum MigrationError: Error, CustomStringConvertible {
    /// The database has a migration whose text differs from ours: never guess, stop.
    case divergentHistory(version: Int, name: String)
    /// The database is newer than this binary.
    case unknownVersion(Int)
    case database(PostgresError)

    public var description: String {
        switch self {
        case .divergentHistory(let version, let name):
            return "migration \(version) (\(name)) was applied with different contents; refusing to continue"
        case .unknownVersion(let version):
            return "the database has migration \(version), which this receivablesd does not know (newer schema?)"
        case .database(let error):
            return "migration failed: \(error)"
        }
    }
}

/// Applies pending migrations. Safe when several instances start at once: a session advisory
/// lock serialises them, and each re-reads what is applied after taking it.
public struct Migrator {
    public let migrations: [Migration]
    /// Arbitrary constant naming our advisory lock ("receivab" in ASCII).
    static let lockKey = "7089061358447501666"

    public init(migrations: [Migration] = Migration.bundled) { self.migrations = migrations }

    /// Returns the versions applied by this call.
    @discardableResult
    public func migrate(_ db: PostgresConnection) throws(MigrationError) -> [Int] {
        do {
            try db.query("SELECT pg_advisory_lock($1::bigint)", [.text(Migrator.lockKey)])
        } catch { throw .database(error) }
        // A failed unlock means the session is gone, and a session lock goes with its session.
        defer { _ = try? db.query("SELECT pg_advisory_unlock($1::bigint)", [.text(Migrator.lockKey)]) }
        var applied: [Int: String] = [:]
        do {
            try db.simpleQuery("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            for row in try db.query("SELECT version, checksum FROM schema_migrations").all {
                applied[Int(row.requiredInt64("version"))] = row.requiredString("checksum")
            }
        } catch { throw .database(error) }
        let known = Set(migrations.map(\.version))
        if let unknown = applied.keys.sorted().first(where: { !known.contains($0) }) { throw .unknownVersion(unknown) }
        var newlyApplied: [Int] = []
        for migration in migrations {
            if let checksum = applied[migration.version] {
                guard checksum == migration.checksum else { throw .divergentHistory(version: migration.version, name: migration.name) }
                continue
            }
            do {
                try db.transaction {
                    try db.simpleQuery(migration.sql)
                    try db.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                 [.int(migration.version), .text(migration.name), .text(migration.checksum)])
                }
            } catch let error as PostgresError {
                throw .database(error)
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
            newlyApplied.append(migration.version)
        }
        return newlyApplied
    }

    /// Versions recorded in the database (for `check` and readiness).
    public func pending(_ db: PostgresConnection) throws(PostgresError) -> [Migration] {
        let exists = try db.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard exists.first?.bool("present") == true else { return migrations }
        let applied = Set(try db.query("SELECT version FROM schema_migrations").all.map { Int($0.requiredInt64("version")) })
        return migrations.filter { !applied.contains($0.version) }
    }
}
