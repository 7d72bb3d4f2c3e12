import EddySQL

/// Rows of a view or query result, ready to print (`eddy query`, and the `SELECT`s of a pipeline file).
public struct ResultTable: Sendable, Equatable {
    /// A cell: a SQL value.
    public typealias Value = SQLValue

    public var columns: [String]
    public var rows: [[Value]]

    public init(columns: [String], rows: [[Value]]) {
        precondition(rows.allSatisfy { $0.count == columns.count }, "every row needs \(columns.count) values")
        self.columns = columns
        self.rows = rows
    }

    public enum Format: String, Sendable, CaseIterable {
        case table, json, csv
    }

    public func rendered(as format: Format) -> String {
        switch format {
        case .table: renderedAsTable()
        case .json: renderedAsJSON()
        case .csv: renderedAsCSV()
        }
    }

    /// psql's aligned format: numbers right-aligned, text left-aligned, a row count at the end.
    public func renderedAsTable() -> String {
        let cells = rows.map { $0.map(\.cellText) }
        var widths = columns.map(\.count)
        for row in cells {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        let rightAligned = columns.indices.map { index in
            rows.contains { if case .int = $0[index] { true } else if case .double = $0[index] { true } else { false } }
        }
        func pad(_ text: String, _ index: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: widths[index] - text.count)
            return right ? fill + text : text + fill
        }
        var lines: [String] = []
        lines.append(columns.indices.map { " " + pad(columns[$0], $0, right: false).centered(in: widths[$0]) + " " }.joined(separator: "|"))
        lines.append(widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+"))
        for row in cells {
            lines.append(row.indices.map { " " + pad(row[$0], $0, right: rightAligned[$0]) + " " }.joined(separator: "|"))
        }
        lines.append("(\(rows.count) row\(rows.count == 1 ? "" : "s"))")
        return lines.map { $0.trailingSpacesTrimmed }.joined(separator: "\n") + "\n"
    }

    /// A JSON array of objects, one per row, keys in column order.
    public func renderedAsJSON() -> String {
        var out = "["
        for (rowIndex, row) in rows.enumerated() {
            out += rowIndex == 0 ? "\n  {" : ",\n  {"
            for (index, value) in row.enumerated() {
                if index > 0 { out += ", " }
                out += Self.jsonString(columns[index]) + ": " + value.jsonText
            }
            out += "}"
        }
        out += rows.isEmpty ? "]\n" : "\n]\n"
        return out
    }

    /// RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, quote or line break.
    public func renderedAsCSV() -> String {
        func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
        }
        var out = columns.map(field).joined(separator: ",") + "\r\n"
        for row in rows { out += row.map { field($0.cellText) }.joined(separator: ",") + "\r\n" }
        return out
    }

    /// `text` as a JSON string literal: quotes, backslashes and control characters escaped.
    public static func jsonString(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension SQLValue {
    /// The text a SQL client shows in a cell: NULL as empty, as PostgreSQL's psql does.
    var cellText: String { isNull ? "" : text }

    /// The value as JSON (a NaN or infinite double as null: JSON has neither).
    var jsonText: String {
        switch self {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .int(let number): String(number)
        case .double(let number): number.isFinite ? SQLValue.text(of: number) : "null"
        case .string(let text): ResultTable.jsonString(text)
        }
    }
}

extension String {
    fileprivate func centered(in width: Int) -> String {
        let trimmed = trailingSpacesTrimmed
        let space = width - trimmed.count
        guard space > 0 else { return trimmed }
        let left = space / 2
        return String(repeating: " ", count: left) + trimmed + String(repeating: " ", count: space - left)
    }

    fileprivate var trailingSpacesTrimmed: String {
        var text = Substring(self)
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }

    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}
