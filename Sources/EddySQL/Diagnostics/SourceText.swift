/// A pipeline file's text as bytes, with the line starts needed to turn offsets into line:column.
struct SourceText: Sendable {
    let file: String
    let bytes: [UInt8]
    /// Byte offset where each line starts.
    private let lineStarts: [Int]

    init(file: String, text: String) {
        self.file = file
        bytes = Array(text.utf8)
        var starts = [0]
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") { starts.append(index + 1) }
        lineStarts = starts
    }

    /// The line and column (in Unicode scalars) of a byte offset.
    func location(_ offset: Int) -> SourceLocation {
        let clamped = min(max(0, offset), bytes.count)
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= clamped { low = middle } else { high = middle - 1 }
        }
        let start = lineStarts[low]
        // Columns count scalars: every byte that is not a UTF-8 continuation byte starts one.
        var column = 1
        for index in start..<clamped where bytes[index] & 0xC0 != 0x80 { column += 1 }
        return SourceLocation(line: low + 1, column: column, offset: clamped)
    }

    /// The range from byte `start` to byte `end`, cut at the end of the first line.
    func range(_ start: Int, _ end: Int) -> SourceRange {
        let location = location(start)
        let lineEnd = lineEndOffset(line: location.line)
        let stop = min(max(end, start + 1), max(lineEnd, start + 1))
        var length = 0
        for index in start..<min(stop, bytes.count) where bytes[index] & 0xC0 != 0x80 { length += 1 }
        return SourceRange(start: location, length: max(1, length))
    }

    private func lineEndOffset(line: Int) -> Int {
        line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
    }

    /// The text of a 1-based line, without its line break.
    func lineText(_ line: Int) -> String {
        guard line >= 1 && line <= lineStarts.count else { return "" }
        var end = lineEndOffset(line: line)
        let start = lineStarts[line - 1]
        if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
    }

    /// The text of a line with the bytes of `secrets` shown as `*` (one per character, so columns stay put).
    func lineText(_ line: Int, masking secrets: [Range<Int>]) -> String {
        guard line >= 1 && line <= lineStarts.count else { return "" }
        let start = lineStarts[line - 1]
        let end = lineEndOffset(line: line)
        guard secrets.contains(where: { $0.overlaps(start..<max(start, end)) }) else { return lineText(line) }
        var bytes = Array(self.bytes[start..<max(start, end)])
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        var masked: [UInt8] = []
        for (index, byte) in bytes.enumerated() {
            let offset = start + index
            if secrets.contains(where: { $0.contains(offset) }) {
                if byte & 0xC0 != 0x80 { masked.append(UInt8(ascii: "*")) }
            } else {
                masked.append(byte)
            }
        }
        return String(decoding: masked, as: UTF8.self)
    }

    func error(_ code: SQLError.Code, _ message: String, from start: Int, to end: Int, severity: SQLError.Severity = .error) -> SQLError {
        let range = range(start, end)
        return SQLError(code, message, file: file, range: range, lineText: lineText(range.start.line), severity: severity)
    }
}
