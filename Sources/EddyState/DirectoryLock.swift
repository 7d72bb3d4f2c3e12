#if canImport(Glibc)
import Glibc
#endif

/// Owns the file descriptor of `<directory>/eddy.lock`, holding an exclusive POSIX record lock on it while a
/// writable store is open, so that a second daemon on the same state directory is refused. The lock file also
/// holds the owner's PID. Released in `deinit`; the kernel drops it when the process dies, so a crash never
/// leaves the directory locked.
///
/// Why `fcntl(F_SETLK)` and not `flock`: an `flock` lock belongs to the open file description, which a child
/// process shares between `fork` and `exec`; a store closed while another thread spawns a process would stay
/// locked for a moment. POSIX record locks belong to the process and are never inherited. They do not exclude
/// the same process, and closing *any* descriptor of the file drops them, so a process-wide table refuses a
/// second lock on a directory before its lock file is even opened.
///
/// Threads: immutable after `acquire`; any thread may release the last reference.
final class DirectoryLock: Sendable {
    private let descriptor: Int32
    private let id: OpenDirectories.DirectoryID

    private static let tableLock = Lock()
    nonisolated(unsafe) private static var lockedDirectories: Set<OpenDirectories.DirectoryID> = []

    private init(descriptor: Int32, id: OpenDirectories.DirectoryID) {
        self.descriptor = descriptor
        self.id = id
    }

    deinit {
        close(descriptor)
        Self.tableLock.withLock { _ = Self.lockedDirectories.remove(id) }
    }

    static func lockFilePath(in directory: String) -> String { directory + "/eddy.lock" }

    /// Takes the exclusive lock without waiting, or throws `.directoryLocked` naming the directory and holder.
    static func acquire(directory: String) throws(StateError) -> DirectoryLock {
        let id = try OpenDirectories.identify(directory)
        let isNew = tableLock.withLock { lockedDirectories.insert(id).inserted }
        guard isNew else { throw locked(directory, holder: getpid()) }
        do {
            return try lockFile(directory: directory, id: id)
        } catch {
            tableLock.withLock { _ = lockedDirectories.remove(id) }
            throw error
        }
    }

    private static func lockFile(directory: String, id: OpenDirectories.DirectoryID) throws(StateError)
        -> DirectoryLock
    {
        let path = lockFilePath(in: directory)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw StateError(
                .directoryUnavailable, lmdbCode: code,
                reason: "cannot open the lock file \(path): \(String(cString: strerror(code)))")
        }
        var region = wholeFile(F_WRLCK)
        guard fcntl(descriptor, F_SETLK, &region) == 0 else {
            let code = errno
            var holder = wholeFile(F_WRLCK)
            let holderPID = fcntl(descriptor, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK ? holder.l_pid : nil
            close(descriptor)
            guard code == EAGAIN || code == EACCES else {
                throw StateError(
                    .directoryUnavailable, lmdbCode: code,
                    reason: "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            throw locked(directory, holder: holderPID, errno: code)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withUTF8Buffer { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return DirectoryLock(descriptor: descriptor, id: id)
    }

    private static func wholeFile(_ type: Int32) -> Glibc.flock {
        var region = Glibc.flock()
        region.l_type = Int16(type)
        region.l_whence = Int16(SEEK_SET)
        region.l_start = 0
        region.l_len = 0
        return region
    }

    private static func locked(_ directory: String, holder: pid_t?, errno: Int32? = nil) -> StateError {
        let who: String
        switch holder {
        case getpid(): who = "this process (pid \(getpid()))"
        case let pid?: who = "another eddy process (pid \(pid))"
        case nil: who = "another eddy process"
        }
        return StateError(
            .directoryLocked, lmdbCode: errno,
            reason: "state directory \(directory) is in use by \(who); stop it or use another --state-dir")
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
