import PostgresClient
#if canImport(Glibc)
import Glibc
#endif

/// CPU time of the services a bench runs against, so a figure can say where a payment's CPU
/// went (the daemon, PostgreSQL, RabbitMQ, the load generator) and not only how fast it was.
/// Linux /proc only; a service on another machine (or not found) is reported as unknown.
struct ServiceCPU {
    /// The postmaster of the server `db` is connected to: the parent of its backend.
    let postmaster: pid_t?
    /// The process listening on the broker's port on this machine.
    let broker: pid_t?

    init(db: PostgresConnection, brokerPort: Int) {
        let backend = (try? db.query("SELECT pg_backend_pid()::text AS pid").first?.string("pid")).flatMap { $0.flatMap { pid_t($0) } }
        postmaster = backend.flatMap(ServiceCPU.parent)
        broker = ServiceCPU.listener(port: brokerPort)
    }

    /// Ticks so far of PostgreSQL (the postmaster, every child alive now, and the children it
    /// reaped: a backend that ended is in the postmaster's children's time) and of the broker.
    func sample() -> (postgres: Int64?, broker: Int64?) {
        let postgres = postmaster.flatMap { master -> Int64? in
            guard let own = ServiceCPU.ticks(master, withReapedChildren: true) else { return nil }
            return own + ServiceCPU.children(of: master).compactMap { ServiceCPU.ticks($0, withReapedChildren: false) }.reduce(0, +)
        }
        return (postgres, broker.flatMap { ServiceCPU.ticks($0, withReapedChildren: true) })
    }

    /// CPU ticks of this process itself (the load generator and the observer), without children.
    static func ownTicks() -> Int64? { ticks(getpid(), withReapedChildren: false) }

    // MARK: /proc

    /// The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses).
    static func statFields(_ pid: pid_t) -> [Substring]? {
        guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// utime + stime (+ cutime + cstime): fields 14–17 of stat, 11–14 after the name.
    static func ticks(_ pid: pid_t, withReapedChildren: Bool) -> Int64? {
        guard let fields = statFields(pid), fields.count > 14, let user = Int64(fields[11]), let system = Int64(fields[12]),
              let childUser = Int64(fields[13]), let childSystem = Int64(fields[14]) else { return nil }
        return user + system + (withReapedChildren ? childUser + childSystem : 0)
    }

    static func parent(_ pid: pid_t) -> pid_t? {
        statFields(pid).flatMap { $0.count > 1 ? pid_t($0[1]) : nil }
    }

    static func processes() -> [pid_t] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var pids: [pid_t] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = pid_t(name) { pids.append(pid) }
        }
        return pids
    }

    static func children(of parentPID: pid_t) -> [pid_t] {
        processes().filter { parent($0) == parentPID }
    }

    /// The process holding the listening TCP socket on `port` (IPv4 or IPv6), found by the
    /// socket's inode in /proc/net/tcp{,6} and the process's open descriptors.
    static func listener(port: Int) -> pid_t? {
        let hex = String(port, radix: 16, uppercase: true)
        let hexPort = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = readSmallFile(table, limit: 4 << 20) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let columns = line.split(separator: " ")
                // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is column 9.
                guard columns.count > 9, columns[1].hasSuffix(":" + hexPort), columns[3] == "0A" else { continue }
                inodes.insert(String(columns[9]))
            }
        }
        guard !inodes.isEmpty else { return nil }
        let wanted = Set(inodes.map { "socket:[\($0)]" })
        for pid in processes() {
            guard let directory = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                var target = [CChar](repeating: 0, count: 64)
                let length = readlink("/proc/\(pid)/fd/\(name)", &target, target.count - 1)
                guard length > 0 else { continue }
                let link = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if wanted.contains(link) { return pid }
            }
        }
        return nil
    }

    static func readSmallFile(_ path: String, limit: Int = 64 << 10) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count < limit {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
