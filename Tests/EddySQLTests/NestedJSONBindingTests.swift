import Testing
@testable import EddySQL

private let nestedSource = """
    CREATE SOURCE s (event VARCHAR, device STRUCT<os VARCHAR, version INT, screen STRUCT<width INT, name VARCHAR>>, payload JSONB, n INT) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
    """

private func lines(_ parts: String...) -> String { parts.joined(separator: "\n") }

private func view(_ select: String) -> String { lines(nestedSource, "CREATE MATERIALIZED VIEW v AS \(select);") }

/// Misuse of STRUCT fields, `->` / `->>`, casts and the JSON source options: each reported at its line:column.
let nestedJSONBadInputs: [BadInput] = [
    BadInput(sql: view("SELECT (device).model, COUNT(*) FROM s GROUP BY (device).model"), line: 2, at: "(device).model", message: "STRUCT 'device' has no field model; its fields: os, version, screen.width, screen.name"),
    BadInput(sql: view("SELECT (device).screen.depth FROM s"), line: 2, at: "(device)", message: "STRUCT 'device' has no field screen.depth"),
    BadInput(sql: view("SELECT (event).os FROM s"), line: 2, at: "event", message: "column 'event' is VARCHAR, not a STRUCT"),
    BadInput(sql: view("SELECT (nothing).os FROM s"), line: 2, at: "nothing", message: "column 'nothing' does not exist in 's'"),
    BadInput(sql: view("SELECT event->>'k' FROM s"), line: 2, at: "event->>", message: "'event' is not JSONB (declare it JSONB in the source)"),
    BadInput(sql: view("SELECT n->'k' FROM s"), line: 2, at: "n->", message: "operator does not exist: INTEGER ->"),
    BadInput(sql: view("SELECT payload->>event FROM s"), line: 2, at: "event FROM", message: "the key of ->> must be a string literal (a field) or a non-negative integer literal"),
    BadInput(sql: view("SELECT payload->>'a'->>'b' FROM s"), line: 2, at: "->>", occurrence: 1, message: "->> gives text; read further with -> before the last step"),
    BadInput(sql: view("SELECT lower(event)->>'a' FROM s"), line: 2, at: "lower", message: "-> and ->> read a JSONB column of the source"),
    BadInput(sql: view("SELECT CAST(event AS POINT) FROM s"), line: 2, at: "POINT", message: "unknown type 'point' for the cast"),
    BadInput(sql: view("SELECT (device).version::BOOLEAN::TIMESTAMP FROM s"), line: 2, at: "TIMESTAMP", message: "cannot cast type BOOLEAN to TIMESTAMP"),
    BadInput(sql: view("SELECT SUM(lower(event)::INT) FROM s"), line: 2, at: "lower", message: "SUM of an expression is not supported yet"),
    BadInput(sql: "CREATE SOURCE s (device STRUCT<os VARCHAR, os INT>) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "os INT", message: "field 'os' is declared twice in STRUCT"),
    BadInput(sql: "CREATE SOURCE s (device STRUCT<os VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: ") WITH", message: "expected '>' to close STRUCT<...>"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON (timestamptz.handling.mode='nanos');", line: 1, at: "'nanos'", message: "timestamptz.handling.mode must be one of 'guess_number_unit', 'second', 'milli', 'micro', 'utc_string', 'utc_without_suffix', not 'nanos'"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON (ignore_key_case='maybe');", line: 1, at: "'maybe'", message: "ignore_key_case must be 'true' or 'false'"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON (timestamp.unit='ms');", line: 1, at: "timestamp.unit", message: "unknown ENCODE JSON option 'timestamp.unit' for a source; accepted: timestamptz.handling.mode, ignore_key_case"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) INCLUDE headers WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "headers", message: "INCLUDE headers (not supported yet)"),
]

/// `STRUCT<…>` fields, `JSONB` paths and casts, bound.
@Suite struct NestedJSONBindingTests {
    @Test(arguments: nestedJSONBadInputs)
    func misuseIsReportedWhereItIs(_ input: BadInput) throws {
        try BadInputTests().reportsTheErrorWhereItIs(input)
    }

    @Test func structFieldsAreColumnsAtAnyDepth() throws {
        let pipeline = try #require(compiledPipeline(view(
            "SELECT (device).os AS os, (s.device).screen.width AS width, COUNT(*) AS n, MAX((device).version) AS newest FROM s WHERE (device).screen.name <> 'tv' GROUP BY (device).os, (s.device).screen.width")))
        let source = pipeline.sources[0]
        #expect(source.columns.map(\.name) == ["event", "(device).os", "(device).version", "(device).screen.width", "(device).screen.name", "payload", "n"])
        #expect(source.columns[3].path == JSONPath(root: "device", steps: [.field("screen"), .field("width")], reading: .typed))
        #expect(source.columns[3].type == .integer)
        #expect(pipeline.views[0].groupBy == [1, 3])
        #expect(pipeline.views[0].outputColumns.map(\.name) == ["os", "width", "n", "newest"])
        // The declaration folds back for a reader of the state directory.
        let again = try #require(compiledPipeline(source.schemaDefinition))
        #expect(again.sources[0].columns == source.columns)
    }

    @Test func jsonbPathsReadAnywhereAreDecodedColumns() throws {
        let pipeline = try #require(compiledPipeline(lines(
            nestedSource,
            "CREATE MATERIALIZED VIEW v AS SELECT payload->>'kind' AS kind, COUNT(*) AS n, SUM((payload->>'amount')::INT) AS total FROM s WHERE payload->'meta'->>'ok' = 'yes' GROUP BY payload->>'kind';",
            "CREATE MATERIALIZED VIEW w AS SELECT payload->'items'->0 AS first, CAST(payload->>'when' AS TIMESTAMP) AS at FROM s;")))
        let source = pipeline.sources[0]
        #expect(source.pathColumns.map(\.name) == [
            "payload->>'kind'", "(payload->>'amount')::INTEGER", "payload->'meta'->>'ok'", "payload->'items'->0", "(payload->>'when')::TIMESTAMP",
        ])
        #expect(source.pathColumns[1].type == .integer && source.pathColumns[1].path?.reading == .castText)
        #expect(source.pathColumns[3].type == .jsonb && source.pathColumns[3].path?.steps == [.field("items"), .index(0)])
        let rowColumns = source.rowColumns.map(\.name)
        #expect(pipeline.views[0].groupBy == [rowColumns.firstIndex(of: "payload->>'kind'")!])
        #expect(pipeline.views[0].aggregates[1].argument == rowColumns.firstIndex(of: "(payload->>'amount')::INTEGER"))
        #expect(pipeline.views[1].outputColumns.map(\.type) == [.text, .timestamp])
    }

    @Test func castsEvaluateAsPostgreSQLReadsText() throws {
        func value(_ select: String) throws -> SQLValue {
            let pipeline = try #require(compiledPipeline(view("SELECT \(select) AS x FROM s")))
            return pipeline.views[0].outputColumns[0].expression.evaluate(column: { _ in .null })
        }
        #expect(try value("CAST('42' AS INT)") == .int(42))
        #expect(try value("' 7 '::BIGINT") == .int(7))
        #expect(try value("'4x'::INT") == .null)
        #expect(try value("2.5::INT") == .int(3))
        #expect(try value("'1.5'::DOUBLE PRECISION") == .double(1.5))
        #expect(try value("'yes'::BOOLEAN") == .bool(true))
        #expect(try value("42::VARCHAR") == .string("42"))
        #expect(try value("'2026-11-24T17:00:03Z'::TIMESTAMPTZ") == .string("2026-11-24 17:00:03"))
        #expect(try value("'2026-11-24 17:00:03'::DATE") == .string("2026-11-24"))
    }
}
