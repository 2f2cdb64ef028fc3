import Foundation
import ServerKit
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion and returns its exit status (128 + the signal when a signal ended it) and combined
/// output.
///
/// Spawned and reaped here with `posix_spawn` and `waitpid`, not with Foundation's `Process`: on Linux, `Process`
/// learns of a child's exit from a SIGCHLD dispatch source, which sees the signal only when the kernel delivers it to
/// a thread that blocks SIGCHLD; threads started earlier (NIO's) do not, so `waitUntilExit` can wait for good beside
/// a zombie. The output goes to a file, not a pipe: a daemon the program starts (nginx, PostgreSQL) keeps a pipe
/// open long after the program returns. Blocks its thread: call it off the concurrency pool for long commands.
@discardableResult
public func runProcess(_ path: String, _ arguments: [String], environment: [String: String]? = nil)
    -> (status: Int32, output: String)
{
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).out").path
    defer { try? FileManager.default.removeItem(atPath: outputPath) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Nothing else of this process (its sockets, its listeners) reaches the child. (glibc ignores a close of a
    // descriptor that was closed in the meantime.)
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
    for descriptor in open where descriptor > 2 { posix_spawn_file_actions_addclose(&actions, descriptor) }

    let (pid, spawned) = Spawn.posixSpawn(
        path, [path] + arguments, environment: environment ?? ProcessInfo.processInfo.environment, actions: &actions,
        ownProcessGroup: false)
    guard spawned == 0 else { return (-1, "cannot run \(path): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
        guard errno == EINTR else { return (-1, "waitpid of \(path) failed: \(String(cString: strerror(errno)))") }
    }
    let signal = status & 0x7f
    let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
    let data = FileManager.default.contents(atPath: outputPath) ?? Data()
    return (code, String(decoding: data, as: UTF8.self))
}
