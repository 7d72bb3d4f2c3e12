#if canImport(Glibc)
import Glibc
#endif

/// A look at `data.mdb` with `pread`, before LMDB maps it: LMDB trusts the file and maps it whole, so a file
/// cut short (a copy that ran out of space, a damaged disk) raises SIGBUS on the first read past its end
/// instead of an error. Garbage over the meta pages LMDB refuses by itself (`MDB_INVALID`); this check leaves
/// that case to it.
///
/// The layout is LMDB 0.9's (`mdb.c`, 64-bit): every page starts with a 16-byte header (page number, pad,
/// flags, then `lower`/`upper` or an overflow page count); pages 0 and 1 are meta pages, whose body after the
/// header is `MDB_meta` — magic, version, address, map size, `mm_dbs[2]` (free pages, main), `mm_last_pg`,
/// `mm_txnid`. LMDB opens the meta with the higher transaction id. `LMDBDataFileTests` checks these offsets
/// against what the linked LMDB reports for a file it just wrote.
enum LMDBDataFile {
    /// What the newest meta page says.
    struct Meta: Equatable {
        var pageSize: Int
        /// The highest page number in use (`mm_last_pg`).
        var lastPage: UInt64
        var transactionID: UInt64
        /// Root of the free-page database (`mm_dbs[0].md_root`), `invalidPage` when empty.
        var freeRoot: UInt64
    }

    static let invalidPage = UInt64.max
    static let magic: UInt32 = 0xBEEF_C0DE
    static let dataVersion: UInt32 = 1
    static let pageHeaderSize = 16
    static let metaPageFlag: UInt16 = 0x08
    static let branchPageFlag: UInt16 = 0x01
    static let leafPageFlag: UInt16 = 0x02
    static let overflowPageFlag: UInt16 = 0x04
    /// A leaf node whose value lives on overflow pages (`F_BIGDATA`).
    static let bigDataNodeFlag: UInt16 = 0x01
    static let nodeHeaderSize = 8

    /// Byte offsets in a meta page (page header included).
    enum MetaOffset {
        static let flags = 10
        static let magic = 16
        static let version = 20
        static let pageSize = 40  // mm_dbs[0].md_pad
        static let freeRoot = 80  // mm_dbs[0].md_root
        static let lastPage = 136
        static let transactionID = 144
        static let end = 152
    }

    /// Refuses, with `corruptState`, a `data.mdb` in `directory` that cannot hold the pages its newest meta page
    /// uses; returns when the file is absent, sound, or not recognisable as LMDB at all (LMDB's own error
    /// says so then).
    ///
    /// A file may legitimately end before `mm_last_pg`: LMDB never writes pages that a transaction allocated
    /// and freed again, and it records them in the free-page database. So when the file is short, every
    /// missing page must be listed there.
    ///
    /// A daemon may commit while `eddy query` looks: a verdict of "damaged" is only given when the newest meta
    /// page did not change while the file was read.
    static func check(directory: String) throws(StateError) {
        let path = directory + "/data.mdb"
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        // Absent (a new store) or unreadable: mdb_env_open creates it or reports why not.
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var attempts = 0
        while true {
            attempts += 1
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { return }
            let file = FileReader(descriptor: descriptor, size: Int(info.st_size))
            let verdict = examine(file)
            guard case .damaged(let meta, let why) = verdict else { return }
            // A commit in between (a newer meta page, a longer file) may explain a short file: look again.
            var now = stat()
            if attempts < 3, fstat(descriptor, &now) == 0, now.st_size != info.st_size { continue }
            if let meta, attempts < 3, let again = newestMeta(file), again.transactionID != meta.transactionID { continue }
            throw StateError(
                .corruptState,
                reason: "the state file \(path) is damaged: \(why); " + StateError.restoreOrRebuildAdvice(directory))
        }
    }

    enum Verdict: Equatable {
        case sound
        /// Not LMDB's (bad magic or version): left to `mdb_env_open`.
        case notLMDB
        /// Damaged; `meta` is the meta page the verdict rests on, when one could be read.
        case damaged(Meta?, String)
    }

    static func examine(_ file: FileReader) -> Verdict {
        guard file.size > 0 else { return .damaged(nil, "it is empty (0 bytes)") }
        guard file.size >= MetaOffset.end else {
            return .damaged(nil, "it is \(file.size) bytes, shorter than its first page")
        }
        guard let first = readMeta(file, at: 0) else { return .notLMDB }
        guard first.pageSize >= 512, first.pageSize <= 65536, first.pageSize & (first.pageSize - 1) == 0 else {
            return .damaged(nil, "its first meta page names a page size of \(first.pageSize) bytes")
        }
        let pageSize = first.pageSize
        guard file.size >= 2 * pageSize else {
            return .damaged(nil, "it is \(file.size) bytes, shorter than its two meta pages of \(pageSize) bytes")
        }
        guard let second = readMeta(file, at: pageSize) else { return .notLMDB }
        // LMDB's choice (mdb_env_read_header): the second only when its transaction is newer.
        var meta = second.transactionID > first.transactionID ? second : first
        meta.pageSize = pageSize
        let pagesInFile = UInt64(file.size / pageSize)
        if meta.lastPage < pagesInFile { return .sound }
        let (neededBytes, overflow) = (meta.lastPage &+ 1).multipliedReportingOverflow(by: UInt64(pageSize))
        let shortfall = "it is \(file.size) bytes, but its last commit (LMDB transaction \(meta.transactionID)) uses pages "
            + "0...\(meta.lastPage) of \(pageSize) bytes\(overflow ? "" : " (\(neededBytes) bytes)"): the file was cut short"
        guard meta.lastPage - pagesInFile < 1 << 32 else { return .damaged(meta, shortfall) }
        var missing = Set<UInt64>()
        guard collectFreePages(file, meta: meta, pagesInFile: pagesInFile, into: &missing) else {
            return .damaged(meta, shortfall)
        }
        return UInt64(missing.count) == meta.lastPage - pagesInFile + 1 ? .sound : .damaged(meta, shortfall)
    }

    static func newestMeta(_ file: FileReader) -> Meta? {
        guard let first = readMeta(file, at: 0), first.pageSize >= 512, first.pageSize <= 65536,
            let second = readMeta(file, at: first.pageSize)
        else { return nil }
        return second.transactionID > first.transactionID ? second : first
    }

    private static func readMeta(_ file: FileReader, at offset: Int) -> Meta? {
        guard let page = file.read(at: offset, count: MetaOffset.end) else { return nil }
        guard page.load(UInt16.self, at: MetaOffset.flags) & metaPageFlag != 0,
            page.load(UInt32.self, at: MetaOffset.magic) == magic,
            page.load(UInt32.self, at: MetaOffset.version) == dataVersion
        else { return nil }
        return Meta(
            pageSize: Int(page.load(UInt32.self, at: MetaOffset.pageSize)),
            lastPage: page.load(UInt64.self, at: MetaOffset.lastPage),
            transactionID: page.load(UInt64.self, at: MetaOffset.transactionID),
            freeRoot: page.load(UInt64.self, at: MetaOffset.freeRoot))
    }

    /// Walks the free-page database of `meta` and adds to `missing` every listed page at or past the end of the
    /// file. False when the walk itself would leave the file or meets a page that is not what it should be.
    private static func collectFreePages(
        _ file: FileReader, meta: Meta, pagesInFile: UInt64, into missing: inout Set<UInt64>
    ) -> Bool {
        guard meta.freeRoot != invalidPage else { return true }
        var pending: [(page: UInt64, depth: Int)] = [(meta.freeRoot, 0)]
        var visited = 0
        while let (pageNumber, depth) = pending.popLast() {
            visited += 1
            guard depth < 32, visited <= Int(clamping: pagesInFile), pageNumber < pagesInFile,
                let page = file.read(at: Int(pageNumber) * meta.pageSize, count: meta.pageSize)
            else { return false }
            let flags = page.load(UInt16.self, at: 10)
            let lower = Int(page.load(UInt16.self, at: 12))
            guard lower >= pageHeaderSize, lower <= meta.pageSize else { return false }
            for index in 0..<((lower - pageHeaderSize) / 2) {
                let nodeOffset = Int(page.load(UInt16.self, at: pageHeaderSize + 2 * index))
                guard nodeOffset >= lower, nodeOffset + nodeHeaderSize <= meta.pageSize else { return false }
                let low = UInt64(page.load(UInt16.self, at: nodeOffset))
                let high = UInt64(page.load(UInt16.self, at: nodeOffset + 2))
                let nodeFlags = page.load(UInt16.self, at: nodeOffset + 4)
                let keySize = Int(page.load(UInt16.self, at: nodeOffset + 6))
                if flags & branchPageFlag != 0 {
                    pending.append((low | high << 16 | UInt64(nodeFlags) << 32, depth + 1))
                    continue
                }
                guard flags & leafPageFlag != 0 else { return false }
                let dataSize = Int(low | high << 16)
                let dataOffset = nodeOffset + nodeHeaderSize + keySize
                let list: [UInt8]
                if nodeFlags & bigDataNodeFlag != 0 {
                    guard dataOffset + 8 <= meta.pageSize else { return false }
                    let first = page.load(UInt64.self, at: dataOffset)
                    guard first < pagesInFile, let header = file.read(at: Int(first) * meta.pageSize, count: pageHeaderSize),
                        header.load(UInt16.self, at: 10) & overflowPageFlag != 0
                    else { return false }
                    let count = UInt64(header.load(UInt32.self, at: 12))
                    guard count >= 1, first + count <= pagesInFile, pageHeaderSize + dataSize <= Int(count) * meta.pageSize,
                        let bytes = file.read(at: Int(first) * meta.pageSize + pageHeaderSize, count: dataSize)
                    else { return false }
                    list = bytes
                } else {
                    guard dataOffset + dataSize <= meta.pageSize else { return false }
                    list = Array(page[dataOffset..<(dataOffset + dataSize)])
                }
                // An ID list: a count, then that many page numbers.
                guard list.count >= 8 else { return false }
                let listed = list.load(UInt64.self, at: 0)
                guard listed <= UInt64(list.count / 8 - 1) else { return false }
                for entry in 0..<Int(listed) {
                    let free = list.load(UInt64.self, at: 8 + 8 * entry)
                    if free >= pagesInFile && free <= meta.lastPage { missing.insert(free) }
                }
            }
        }
        return true
    }

    /// `pread` of whole ranges of one open file.
    struct FileReader {
        let descriptor: Int32
        let size: Int

        /// `count` bytes at `offset`, or nil when they are not all in the file.
        func read(at offset: Int, count: Int) -> [UInt8]? {
            guard offset >= 0, count >= 0, offset <= size, count <= size - offset else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let got = bytes.withUnsafeMutableBytes { buffer in
                    pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
                }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { return nil }
                done += got
            }
            return bytes
        }
    }
}

extension Array where Element == UInt8 {
    /// A little-endian integer at a byte offset (LMDB writes the host's order; Eddy runs on little-endian Linux).
    fileprivate func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
