import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `posix_spawn` with default handling of the signals a service changes (TERM, INT, HUP, PIPE, CHLD) and nothing
/// blocked, so that a child starts as a shell would start it; optionally in a process group of its own (so that it
/// and what it starts can be stopped together). `actions` places the child's descriptors; the caller sees to it that
/// no others reach it. Answers the pid and the error number (0 on success).
public enum Spawn {
    public static func posixSpawn(
        _ path: String, _ argv: [String], environment: [String: String], actions: inout posix_spawn_file_actions_t,
        ownProcessGroup: Bool
    ) -> (pid: pid_t, error: Int32) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let arguments = argv.map { strdup($0) } + [nil]
        let variables = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        var pid = pid_t()
        let result = posix_spawn(&pid, path, &actions, &attributes, arguments, variables)
        return (pid, result)
    }
}
