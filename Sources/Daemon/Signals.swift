#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM, SIGINT and SIGHUP delivered as bytes on a pipe (the self-pipe trick).
///
/// A sigaction handler is process-wide, whichever thread the kernel picks (the Swift runtime,
/// NIO and libpq all have threads of their own, so `sigwait` with a per-thread mask is not
/// reliable). The handler only calls write(2), which is async-signal-safe.
enum SignalPipe {
    // Written once in `install` before any signal can arrive, then only read by the handler.
    nonisolated(unsafe) static var writeEnd: Int32 = -1
    nonisolated(unsafe) static var readEnd: Int32 = -1

    static func install(_ signals: [Int32]) {
        guard writeEnd < 0 else { return }
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0, "cannot create the signal pipe")
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK); _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalPipe.writeEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// The next signal received within `timeoutMilliseconds`, or nil.
    static func next(timeoutMilliseconds: Int32) -> Int32? {
        var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeoutMilliseconds) > 0 else { return nil }
        var byte: UInt8 = 0
        return read(readEnd, &byte, 1) == 1 ? Int32(byte) : nil
    }
}
