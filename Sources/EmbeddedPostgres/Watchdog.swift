import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// A detached shell that stops the server and deletes its files when the process that started it goes away,
/// however it goes away (including SIGKILL).
///
/// It reads a pipe whose only writer is this process (the write end is close-on-exec, so no child inherits it).
/// When this process closes the pipe or dies, the read sees end-of-file: the watchdog sends an immediate shutdown
/// to whatever postmaster `postmaster.pid` names (so restarts are covered), waits for it, and removes the
/// directory it was given. It ignores SIGINT, SIGTERM and SIGHUP so that Ctrl-C in a terminal cannot kill it first.
final class Watchdog: Sendable {
    private static let script = #"""
        exec 3<&0
        (
          trap '' INT TERM HUP
          cat <&3 >/dev/null 2>&1
          pidfile="$1/postmaster.pid"
          if [ -f "$pidfile" ]; then
            pid=$(head -n 1 "$pidfile")
            if [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null; then
              kill -QUIT "$pid" 2>/dev/null
              n=0
              while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n+1)); done
              kill -KILL "$pid" 2>/dev/null
            fi
          fi
          if [ -n "$2" ]; then rm -rf "$2"; fi
        ) </dev/null >/dev/null 2>&1 3<&3 &
        """#

    private let writeEnd: Mutex<Int32?>

    /// Starts the watchdog for the server in `dataDirectory`; `removing` is deleted after it stops (nil: keep).
    init(dataDirectory: FilePath, removing: FilePath?) async throws {
        var ends: [Int32] = [0, 0]
        // Close-on-exec from the start, so that no child spawned meanwhile by another thread (a service, a test's
        // process) inherits the write end and keeps the pipe open after we die.
        guard makeCloseOnExecPipe(&ends) == 0 else {
            throw EmbeddedPostgresError(.commandFailed, "pipe failed: \(String(cString: strerror(errno)))")
        }
        self.writeEnd = Mutex(ends[1])
        let result = try await Subprocess.run(
            .path("/bin/sh"),
            arguments: ["-c", Self.script, "postbox-watchdog", dataDirectory.string, removing?.string ?? ""],
            input: .fileDescriptor(FileDescriptor(rawValue: ends[0]), closeAfterSpawningProcess: true),
            output: .discarded,
            error: .discarded
        )
        guard result.terminationStatus.isSuccess else {
            close(ends[1])
            throw EmbeddedPostgresError(.commandFailed, "could not start the cleanup watchdog: \(result.terminationStatus)")
        }
    }

    /// Lets the watchdog act now: it stops any server still running and removes the directory.
    func release() {
        if let fd = writeEnd.withLock({ fd in
            defer { fd = nil }
            return fd
        }) {
            close(fd)
        }
    }

    deinit { release() }
}

#if os(Linux)
@_silgen_name("pipe2")
private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// `pipe2(O_CLOEXEC)`: atomic, which matters while other threads spawn processes.
private func makeCloseOnExecPipe(_ ends: inout [Int32]) -> Int32 {
    ends.withUnsafeMutableBufferPointer { pipe2($0.baseAddress!, O_CLOEXEC) }
}
#else
/// macOS has no `pipe2`; set close-on-exec right after `pipe`.
private func makeCloseOnExecPipe(_ ends: inout [Int32]) -> Int32 {
    guard pipe(&ends) == 0 else { return -1 }
    _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
    return 0
}
#endif
