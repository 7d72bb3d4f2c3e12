#if canImport(Glibc)
import Glibc
#endif

/// Owns the file descriptor of `<directory>/eddy.lock`, held with `flock(LOCK_EX)` while a writable store is
/// open, so that a second daemon on the same state directory is refused. The lock file holds the owner's PID
/// for the error message. Released in `deinit` (closing the descriptor drops the lock; the kernel also drops
/// it when the process dies, so a crash never leaves the directory locked).
///
/// Threads: immutable after `acquire`; any thread may release the last reference.
final class DirectoryLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    static func lockFilePath(in directory: String) -> String { directory + "/eddy.lock" }

    /// Takes the exclusive lock without waiting, or throws `.directoryLocked` naming the directory and holder.
    static func acquire(directory: String) throws(StateError) -> DirectoryLock {
        let path = lockFilePath(in: directory)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw StateError(
                .directoryUnavailable, lmdbCode: code,
                reason: "cannot open the lock file \(path): \(String(cString: strerror(code)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = readHolder(descriptor)
            close(descriptor)
            guard code == EWOULDBLOCK else {
                throw StateError(
                    .directoryUnavailable, lmdbCode: code,
                    reason: "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            let who = holder.map { "another eddy process (pid \($0))" } ?? "another eddy process"
            throw StateError(
                .directoryLocked, lmdbCode: code,
                reason: "state directory \(directory) is in use by \(who); stop it or use another --state-dir")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withUTF8Buffer { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return DirectoryLock(descriptor: descriptor)
    }

    private static func readHolder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return Int32(text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first ?? "")
    }
}

/// Creates `path` and its missing parents (`mkdir -p`).
func createDirectories(_ path: String) throws(StateError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            let code = errno
            throw StateError(
                .directoryUnavailable, lmdbCode: code,
                reason: "cannot create the state directory \(prefix): \(String(cString: strerror(code)))")
        }
        prefix += "/"
    }
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
        throw StateError(.directoryUnavailable, reason: "the state path \(path) exists and is not a directory")
    }
}
