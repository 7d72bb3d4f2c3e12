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
    public static func evaluate(tables: [Table], views: [(name: String, select: String)]) throws -> [String: [Row]] {
        let request: [String: Any] = [
            "tables": tables.map { ["name": $0.name, "columns": $0.columns, "rows": $0.jsonRows] as [String: Any] },
            "views": views.map { [$0.name, $0.select] },
        ]
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-oracle-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: input) }
        try JSONSerialization.data(withJSONObject: request).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, input.path]
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
            rows = [json.loads(text) for text in table["rows"]]
            db.executemany(
                "INSERT INTO %s VALUES (%s)" % (quoted(table["name"]), ", ".join("?" for _ in columns)),
                # Nested JSON is stored as its JSON text, for json_extract and SQLite's -> and ->>.
                [[json.dumps(v) if isinstance(v, (dict, list)) else v for v in (row.get(c) for c in columns)] for row in rows])
        answer = {}
        for name, select in request["views"]:
            db.execute("CREATE VIEW %s AS %s" % (quoted(name), select))
            answer[name] = [list(row) for row in db.execute("SELECT * FROM %s" % quoted(name))]
        json.dump(answer, sys.stdout)
        """#
}
