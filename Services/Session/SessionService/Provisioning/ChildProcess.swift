import Foundation
import ServerKit
#if canImport(Glibc)
import Glibc
#endif

/// A command run with its stdin, stdout and stderr connected to this process, spawned with `posix_spawn` and reaped
/// with `waitpid`.
///
/// Not Foundation's `Process`: on Linux it learns of a child's exit from a SIGCHLD dispatch source, which sees the
/// signal only when the kernel delivers it to a thread that blocks SIGCHLD; the service's NIO threads do not, so an
/// exit can go unnoticed until a time limit. stdin is a socket (written with `MSG_NOSIGNAL`), so that a command that
/// exits without reading its input cannot end this process with SIGPIPE.
struct ChildProcess: Sendable {
    let pid: pid_t
    /// The ends this process keeps.
    let input: Int32
    let output: Int32
    let errors: Int32

    struct SpawnError: Error, CustomStringConvertible {
        var code: Int32
        var description: String { String(cString: strerror(code)) }
    }

    static func spawn(_ executable: String, arguments: [String]) throws -> ChildProcess {
        // Socket pairs rather than pipes: close-on-exec from the start (no pipe2 in Glibc's Swift module), and a write
        // that can refuse SIGPIPE.
        var pairs: [[Int32]] = []
        for _ in 0..<3 {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                let code = errno
                for fd in pairs.joined() { close(fd) }
                throw SpawnError(code: code)
            }
            pairs.append(pair)
        }
        let (stdin, stdout, stderr) = (pairs[0], pairs[1], pairs[2])
        let childEnds = [stdin[1], stdout[1], stderr[1]]
        let parentEnds = [stdin[0], stdout[0], stderr[0]]
        defer { for fd in childEnds { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, target) in zip(childEnds, [Int32(0), 1, 2]) { posix_spawn_file_actions_adddup2(&actions, fd, target) }

        // Its own process group, so that stopping it reaches what it started (a kubectl it waits for, say).
        let (pid, result) = Self.posixSpawn(
            executable, [executable] + arguments, environment: ProcessInfo.processInfo.environment, actions: &actions)
        guard result == 0 else {
            for fd in parentEnds { close(fd) }
            throw SpawnError(code: result)
        }
        return ChildProcess(pid: pid, input: stdin[0], output: stdout[0], errors: stderr[0])
    }

    /// `posix_spawn` in a process group of its own, with default signal handling and nothing blocked, and none of the
    /// service's descriptors (its listeners, its connections) but those `actions` place. Answers the pid and the
    /// error number (0 on success).
    static func posixSpawn(
        _ path: String, _ argv: [String], environment: [String: String], actions: inout posix_spawn_file_actions_t
    ) -> (pid: pid_t, error: Int32) {
        LocalProvisioner.markDescriptorsCloseOnExec()
        return Spawn.posixSpawn(path, argv, environment: environment, actions: &actions, ownProcessGroup: true)
    }

    /// Writes `data` to the command's stdin and closes it, in the background: a command that does not read it (or
    /// not yet) holds up neither the caller nor the wait for its exit. The write gives up after `limit`, so that a
    /// descendant that keeps stdin open and never reads cannot hold a thread for good.
    func send(_ data: Data, limit: Duration) {
        let fd = input
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: Int(limit.components.attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        DispatchQueue.global().async {
            data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let sent = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                    if sent > 0 { offset += sent } else if sent < 0 && errno == EINTR { continue } else { break }
                }
            }
            close(fd)
        }
    }

    /// Everything the command writes to `fd` until it closes it (off the concurrency pool: a blocking read).
    static func readAll(_ fd: Int32) async -> Data {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                continuation.resume(returning: (try? handle.readToEnd()) ?? Data())
            }
        }
    }

    /// The exit status once the command has ended (128 + the signal when a signal ended it), or nil after `limit`.
    func exitStatus(within limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        var pause = Duration.milliseconds(2)
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if result == -1 && errno != EINTR { return 128 }  // reaped elsewhere: nothing more to learn
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    /// SIGTERM to its process group, then SIGKILL after `grace`; reaps it.
    func stop(grace: Duration = .seconds(5)) async {
        kill(-pid, SIGTERM)
        kill(pid, SIGTERM)
        let ended = await exitStatus(within: grace) != nil
        // What it started may outlive it and hold its output open: the group goes in any case.
        kill(-pid, SIGKILL)
        if !ended {
            kill(pid, SIGKILL)
            _ = await exitStatus(within: .seconds(5))
        }
    }
}
