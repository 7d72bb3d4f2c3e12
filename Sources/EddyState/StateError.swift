/// The one error type of `EddyState`.
///
/// `code` says what went wrong in terms a caller can act on, `lmdbCode` keeps the underlying LMDB
/// return code (or `errno`) when there is one, `reason` is a sentence for a human, and `isRetriable`
/// says whether the same call may succeed later without anyone changing anything.
public struct StateError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, coarse enough to switch on; the raw value is the snake_case name messages show (the
    /// engine's `EngineError` codes read alike, e.g. `corrupt_state`).
    public enum Code: String, Sendable, Hashable {
        /// Another process (or this one) holds the writable lock on the state directory.
        case directoryLocked = "directory_locked"
        /// The state directory or a file in it could not be created, opened or read.
        case directoryUnavailable = "directory_unavailable"
        /// A read-only open found no checkpoint in the directory.
        case noCheckpoint = "no_checkpoint"
        /// The directory was written by a newer or unknown on-disk format.
        case unsupportedFormat = "unsupported_format"
        /// A view's definition differs from the one the stored state was built with.
        case pipelineChanged = "pipeline_changed"
        /// A view that the store does not know (never validated, or dropped).
        case unknownView = "unknown_view"
        /// The map reached `maximumMapSize` and the commit still did not fit.
        case mapFull = "map_full"
        /// The disk is full (`ENOSPC`, `EDQUOT`).
        case diskFull = "disk_full"
        /// An I/O error (`EIO` and friends) while reading or writing the state.
        case ioError = "io_error"
        /// A write was attempted on a store opened read-only.
        case readOnly = "read_only"
        /// A caller passed a value the store cannot take (empty or oversized key, epoch going backwards).
        case invalidArgument = "invalid_argument"
        /// The data file is damaged: cut short, or its pages do not fit together.
        case corruptState = "corrupt_state"
        /// All LMDB reader slots are taken.
        case readersFull = "readers_full"
        /// Any other LMDB failure.
        case storageFailure = "storage_failure"
    }

    /// What went wrong.
    public var code: Code
    /// The LMDB return code (negative `MDB_*` values) or the `errno` behind the failure, if any.
    public var lmdbCode: Int32?
    /// A human sentence naming what failed, where, and what to do about it when that is known.
    public var reason: String
    /// Whether repeating the same call later, with nothing else changed, may succeed.
    public var isRetriable: Bool

    /// Creates an error; `isRetriable` defaults to what is usual for `code`.
    public init(_ code: Code, lmdbCode: Int32? = nil, reason: String, isRetriable: Bool? = nil) {
        self.code = code
        self.lmdbCode = lmdbCode
        self.reason = reason
        self.isRetriable = isRetriable ?? code.isUsuallyRetriable
    }

    public var description: String {
        if let lmdbCode {
            return "state error (\(code.rawValue), code \(lmdbCode)): \(reason)"
        }
        return "state error (\(code.rawValue)): \(reason)"
    }
}

extension StateError.Code {
    /// A lock held by a process that exits, or reader slots freed by readers finishing, go away on their own;
    /// the rest needs a person or a configuration change.
    var isUsuallyRetriable: Bool {
        switch self {
        case .directoryLocked, .readersFull: return true
        default: return false
        }
    }
}
