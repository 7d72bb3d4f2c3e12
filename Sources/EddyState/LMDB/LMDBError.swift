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
        let message = String(cString: mdb_strerror(rc))
        let code: Code
        var advice = ""
        switch rc {
        case MDB_MAP_FULL:
            code = .mapFull
        case MDB_READERS_FULL:
            code = .readersFull
        case MDB_CORRUPTED, MDB_PANIC, MDB_PAGE_NOTFOUND:
            code = .corrupted
            advice = "; the data file may be damaged: restore a backup or remove the state directory to rebuild"
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            code = .unsupportedFormat
            advice = "; this is not an LMDB file this build can read"
        case MDB_BAD_VALSIZE:
            code = .invalidArgument
            advice = "; keys must be 1...511 bytes"
        case ENOSPC, EDQUOT, EFBIG:
            code = .diskFull
            advice = "; free some space (or raise the file size limit); the last committed checkpoint is intact"
        case EIO, EROFS:
            code = .ioError
            advice = "; the last committed checkpoint is intact if the disk is"
        case EACCES, EPERM, ENOENT, ENOTDIR:
            code = .directoryUnavailable
        default:
            code = .storageFailure
        }
        return StateError(code, lmdbCode: rc, reason: "\(operation) in \(path): \(message)\(advice)")
    }
}
