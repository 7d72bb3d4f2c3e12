import Foundation

/// An independent batch computation of SQL views, for tests and `eddy drill` (hence here, beside the load
/// generator, rather than in the test support): SQLite (through Python's `sqlite3` module, which
/// Debian's `python3` carries) loads every input row into a table, creates each view with the same `SELECT`
/// text the pipeline runs, and answers `SELECT * FROM view`. Nothing of Eddy's SQL front end, evaluator or
/// operators is involved, so an agreement means the same answer was reached twice independently.
public enum SQLiteOracle {
    /// One value of an answer, normalised so that SQLite's and Eddy's answers compare as text: an integer as
    /// its digits, a real to nine significant digits, NULL as `NULL`.
    public typealias Row = [String]

    /// An input table: its rows are JSON objects, one per row, read by `columns`' names.
    public struct Table {
        public var name: String
        public var columns: [String]
        public var jsonRows: [String]

        public init(name: String, columns: [String], jsonRows: [String]) {
            self.name = name
            self.columns = columns
            self.jsonRows = jsonRows
        }
    }

    /// The rows of each view over `rows` (JSON objects, one per input row, read by `columns`' names) of table
    /// `table`. Views are created in order, so a view may read the ones before it.
    public static func evaluate(
        table: String, columns: [String], jsonRows: [String], views: [(name: String, select: String)]
    ) throws -> [String: [Row]] {
        try evaluate(tables: [Table(name: table, columns: columns, jsonRows: jsonRows)], views: views)
    }

    /// The rows of each view over `tables`; views are created in order, so a view may read the ones before it.
    ///
    /// Each table's rows go to Python as a file of JSON lines, written in chunks and read a line at a time: a
    /// drill's run of millions of messages is gigabytes, more than one `write` moves (Linux stops at 2 GiB less
    /// a page) and than is sensible to hold as one JSON document.
    public static func evaluate(tables: [Table], views: [(name: String, select: String)]) throws -> [String: [Row]] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-oracle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var described: [[String: Any]] = []
        for (index, table) in tables.enumerated() {
            let rows = directory.appendingPathComponent("table-\(index).jsonl")
            try writeLines(table.jsonRows, to: rows)
            described.append(["name": table.name, "columns": table.columns, "rows": rows.path])
        }
        let request = directory.appendingPathComponent("request.json")
        try JSONSerialization.data(withJSONObject: ["tables": described, "views": views.map { [$0.name, $0.select] }] as [String: Any])
            .write(to: request)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, request.path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let answer = output.fileHandleForReading.readDataToEndOfFile()
        let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let parsed = try JSONSerialization.jsonObject(with: answer) as? [String: [[Any]]] else {
            throw OracleError(description: "the SQLite oracle failed (status \(process.terminationStatus)): \(problems)")
        }
        return parsed.mapValues { rows in rows.map { $0.map(normalised) } }
    }

    /// Writes `lines` to `url`, one a line, in chunks of a few megabytes. A JSON text holds a line break only
    /// as whitespace between tokens (never inside a string), so one becomes a space.
    private static func writeLines(_ lines: [String], to url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw OracleError(description: "cannot create \(url.path)")
        }
        let file = try FileHandle(forWritingTo: url)
        defer { try? file.close() }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(Self.chunkBytes + 4096)
        for line in lines {
            for byte in line.utf8 { chunk.append(byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") ? UInt8(ascii: " ") : byte) }
            chunk.append(UInt8(ascii: "\n"))
            if chunk.count >= Self.chunkBytes {
                try file.write(contentsOf: chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        try file.write(contentsOf: chunk)
    }

    private static let chunkBytes = 4 << 20

    /// A value as `Row` holds it.
    public static func normalised(_ value: Any) -> String {
        switch value {
        case is NSNull: return "NULL"
        case let text as String: return text
        case let number as NSNumber:
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 9e15 { return String(Int64(double)) }
            return String(format: "%.9g", double)
        default: return "\(value)"
        }
    }

    public struct OracleError: Error, CustomStringConvertible {
        public let description: String
    }

    private static let script = #"""
        import json, sqlite3, sys
        request = json.load(open(sys.argv[1]))
        db = sqlite3.connect(":memory:")
        quoted = lambda name: '"' + name.replace('"', '""') + '"'
        for table in request["tables"]:
            columns = table["columns"]
            db.execute("CREATE TABLE %s (%s)" % (quoted(table["name"]), ", ".join(quoted(c) for c in columns)))
            insert = "INSERT INTO %s VALUES (%s)" % (quoted(table["name"]), ", ".join("?" for _ in columns))
            batch = []
            with open(table["rows"], encoding="utf-8") as lines:
                for text in lines:
                    row = json.loads(text)
                    # Nested JSON is stored as its JSON text, for json_extract and SQLite's -> and ->>.
                    batch.append([json.dumps(v) if isinstance(v, (dict, list)) else v for v in (row.get(c) for c in columns)])
                    if len(batch) == 10000:
                        db.executemany(insert, batch)
                        batch = []
            db.executemany(insert, batch)
        answer = {}
        for name, select in request["views"]:
            db.execute("CREATE VIEW %s AS %s" % (quoted(name), select))
            answer[name] = [list(row) for row in db.execute("SELECT * FROM %s" % quoted(name))]
        json.dump(answer, sys.stdout)
        """#
}
