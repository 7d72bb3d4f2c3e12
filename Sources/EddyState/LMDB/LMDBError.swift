import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// The LMDB version this build links against (for `eddy --version` and logs).
public var lmdbVersion: String { String(cString: mdb_version(nil, nil, nil)) }

extension StateError {
    /// Maps an LMDB return code (an `MDB_*` value or an `errno`) to a `StateError`.
    ///
    /// - Parameters:
    ///   - rc: the non-zero return code of an `mdb_*` call.
    ///   - operation: what was being done, for the human reason ("committing epoch 7").
    ///   - path: the state directory, so that the message says where.
    static func lmdb(_ rc: Int32, _ operation: String, path: String) -> StateError {
        lmdb(rc, operation, path: path, writeLimit: rc == EIO ? WriteLimit.measure(path) : nil)
    }

    /// How much more the state directory could take when a write failed: LMDB turns a write that a full disk
    /// (or the file size limit) cut short into `EIO`, so the errno alone cannot tell a full disk from a
    /// failing one.
    struct WriteLimit {
        /// Bytes this process may still write on the directory's filesystem (`statvfs`).
        var freeBytes: Int
        /// Bytes `data.mdb` may still grow by under `RLIMIT_FSIZE`, when a limit is set.
        var fileSizeHeadroom: Int?

        /// Less than this is "full": a commit writes pages of 4 KiB in batches, so once a write has been cut
        /// short the space left is below one batch.
        static let fullBelowBytes = 1 << 20

        static func measure(_ directory: String) -> WriteLimit? {
            var fileSystem = statvfs()
            guard statvfs(directory, &fileSystem) == 0 else { return nil }
            // root may use the blocks reserved for it; everyone else only the available ones.
            let blocks = geteuid() == 0 ? fileSystem.f_bfree : fileSystem.f_bavail
            let freeBytes = Int(clamping: UInt64(blocks).multipliedReportingOverflow(by: UInt64(fileSystem.f_frsize)).partialValue)
            var headroom: Int?
            var limit = rlimit()
            var info = stat()
            if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
                stat(directory + "/data.mdb", &info) == 0
            {
                headroom = Int(clamping: limit.rlim_cur) - Int(info.st_size)
            }
            return WriteLimit(freeBytes: freeBytes, fileSizeHeadroom: headroom)
        }
    }

    /// `lmdb(_:_:path:)` with the space measured by the caller (tests give a full disk without filling one).
    static func lmdb(_ rc: Int32, _ operation: String, path: String, writeLimit: WriteLimit?) -> StateError {
        var message = String(cString: mdb_strerror(rc))
        let code: Code
        var advice = ""
        let intact = "the last committed checkpoint is intact"
        switch rc {
        case MDB_MAP_FULL:
            code = .mapFull
        case MDB_READERS_FULL:
            code = .readersFull
        case MDB_CORRUPTED, MDB_PANIC, MDB_PAGE_NOTFOUND:
            code = .corruptState
            advice = "; the data file may be damaged: " + Self.restoreOrRebuildAdvice(path)
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            code = .unsupportedFormat
            advice = "; this is not an LMDB file this build can read"
        case MDB_BAD_VALSIZE:
            code = .invalidArgument
            advice = "; keys must be 1...511 bytes"
        case ENOSPC, EDQUOT:
            code = .diskFull
            message = rc == ENOSPC ? "no space left on device" : "disk quota exceeded"
            advice = "; free some space on the filesystem holding \(path); \(intact)"
        case EFBIG:
            code = .diskFull
            message = "file too large"
            advice = "; raise the process's file size limit (ulimit -f, LimitFSIZE=); \(intact)"
        case EIO where writeLimit.map({ ($0.fileSizeHeadroom ?? .max) < WriteLimit.fullBelowBytes }) == true:
            code = .diskFull
            message = "file size limit reached (a write cut short)"
            advice = "; raise the process's file size limit (ulimit -f, LimitFSIZE=); \(intact)"
        case EIO where writeLimit.map({ $0.freeBytes < WriteLimit.fullBelowBytes }) == true:
            code = .diskFull
            message = "no space left on device (a write cut short; \(writeLimit?.freeBytes ?? 0) bytes free)"
            advice = "; free some space on the filesystem holding \(path); \(intact)"
        case EIO:
            code = .ioError
            message = "I/O error"
            advice = "; check the disk holding \(path) (dmesg); \(intact) if the disk is"
        case EROFS:
            code = .ioError
            message = "read-only file system"
            advice = "; \(path) must be on a writable filesystem"
        case EACCES, EPERM, ENOENT, ENOTDIR:
            code = .directoryUnavailable
        default:
            code = .storageFailure
        }
        return StateError(code, lmdbCode: rc, reason: "\(operation) in \(path): \(message)\(advice)")
    }

    /// What an operator does about a damaged state directory.
    static func restoreOrRebuildAdvice(_ directory: String) -> String {
        "restore \(directory) from a backup, or move it away so that eddy run rebuilds the state from what the "
            + "source topic still holds"
    }
}
