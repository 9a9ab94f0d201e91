import Foundation
import Synchronization

/// Why a child process could not be started.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
}

/// A process the tests start (the daemon, the CLI, python clients, services.sh) with
/// posix_spawn, stdout and stderr to files, reaped by us with waitpid. Shared by the test
/// targets so every harness starts and stops processes the same way.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let label: String
    public let stdoutPath: String
    public let stderrPath: String
    private let exitStatus = Mutex<Int32?>(nil)

    public init(label: String, executable: String, arguments: [String], environment: [String: String], logDirectory: String) throws {
        self.label = label
        stdoutPath = "\(logDirectory)/\(label).out"
        stderrPath = "\(logDirectory)/\(label).err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test process may block signals; the child must start with none blocked.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv { free(p) }; for p in envp { free(p) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw ChildProcessError(description: "cannot start \(executable): \(String(cString: strerror(status)))") }
        self.pid = pid
    }

    /// Exit status if the process has ended (reaping it), nil while it runs. A signal death is
    /// reported as 128 + signal number, like a shell.
    public func poll() -> Int32? {
        exitStatus.withLock { known in
            if let known { return known }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            known = code
            return code
        }
    }

    public var isRunning: Bool { poll() == nil }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// Waits for the exit (polling, so the cooperative pool is not blocked); nil on timeout.
    public func wait(timeout: Duration) async -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if let status = poll() { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return poll()
    }

    /// SIGKILL and reap (cleanup path).
    public func kill9() async {
        signal(SIGKILL)
        _ = await wait(timeout: .seconds(10))
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    public var output: String { stdout + stderr }

    /// The last `lines` lines of `text`.
    public func tail(_ text: String, lines: Int = 25) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// The last `lines` lines of stdout and stderr.
    public func tail(_ lines: Int = 30) -> String { tail(output, lines: lines) }
}
