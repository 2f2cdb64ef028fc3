import Foundation

/// Writes an executable file through a descriptor opened close-on-exec. A descriptor without it leaks into every
/// process another test forks meanwhile, and exec of the file then fails with ETXTBSY for as long as that process
/// lives (seen with Foundation's `String.write(toFile:)` and a lab process running for the whole suite).
public func writeExecutable(_ path: String, _ contents: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        written += count
    }
    fchmod(fd, 0o755)
}
