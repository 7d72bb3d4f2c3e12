import Foundation
import Testing

@testable import EddyState

/// What an operator reads when a write to the state directory fails.
@Suite struct LMDBErrorTests {
    private let directory = "/var/lib/eddy/state"

    @Test func aFullDiskSaysSoAndNamesTheDirectory() {
        let error = StateError.lmdb(ENOSPC, "committing epoch 7", path: directory)
        #expect(error.code == .diskFull && error.lmdbCode == ENOSPC && !error.isRetriable)
        #expect(error.reason.hasPrefix("committing epoch 7 in \(directory): no space left on device; "), "\(error)")
        #expect(error.reason.contains("free some space on the filesystem holding \(directory)"))
        #expect(error.reason.contains("the last committed checkpoint is intact"))
        #expect(error.description.hasPrefix("state error (disk_full, code \(ENOSPC)): "))
    }

    /// LMDB reports a write that the full disk cut short as EIO: with the disk (nearly) full, it is a full disk.
    @Test func anIOErrorOnAFullDiskIsAFullDisk() {
        let full = StateError.lmdb(EIO, "committing epoch 7", path: directory, writeLimit: .init(freeBytes: 4096, fileSizeHeadroom: nil))
        #expect(full.code == .diskFull && full.lmdbCode == EIO)
        #expect(full.reason.hasPrefix("committing epoch 7 in \(directory): no space left on device (a write cut short; 4096 bytes free)"), "\(full)")
        let limited = StateError.lmdb(EIO, "committing epoch 7", path: directory, writeLimit: .init(freeBytes: 1 << 40, fileSizeHeadroom: 100))
        #expect(limited.code == .diskFull)
        #expect(limited.reason.contains("file size limit reached") && limited.reason.contains("ulimit -f"), "\(limited)")
    }

    @Test func anIOErrorWithSpaceLeftStaysAnIOErrorAndNamesTheDirectory() {
        let error = StateError.lmdb(EIO, "committing epoch 7", path: directory, writeLimit: .init(freeBytes: 1 << 30, fileSizeHeadroom: nil))
        #expect(error.code == .ioError)
        #expect(error.reason.hasPrefix("committing epoch 7 in \(directory): I/O error; check the disk holding \(directory)"), "\(error)")
        // Measured for real: this test's temporary directory has room.
        let measured = StateError.lmdb(EIO, "committing epoch 7", path: NSTemporaryDirectory())
        #expect(measured.code == .ioError, "\(measured)")
    }

    @Test func quotasAndFileSizeLimitsAreFullDisksWithTheirOwnAdvice() {
        let quota = StateError.lmdb(EDQUOT, "committing epoch 7", path: directory)
        #expect(quota.code == .diskFull && quota.reason.contains("disk quota exceeded") && quota.reason.contains(directory))
        let tooLarge = StateError.lmdb(EFBIG, "committing epoch 7", path: directory)
        #expect(tooLarge.code == .diskFull && tooLarge.reason.contains("file size limit"))
    }
}
