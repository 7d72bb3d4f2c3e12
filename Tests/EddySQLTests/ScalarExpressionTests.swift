import Testing
@testable import EddySQL

/// CASE, COALESCE, NULLIF and the string and time functions: bound from SQL text and evaluated on rows,
/// with the results PostgreSQL documents (its manual's examples where it gives them).
@Suite struct ScalarExpressionTests {
    /// Binds `expression` in a non-aggregating view over a source of (s VARCHAR, t VARCHAR, n BIGINT, ts TIMESTAMP,
    /// d DATE, x DOUBLE PRECISION) and evaluates it on `row`.
    private func evaluate(_ expression: String, _ row: [SQLValue] = [.null, .null, .null, .null, .null, .null]) throws -> SQLValue {
        let text = """
            CREATE SOURCE src (s VARCHAR, t VARCHAR, n BIGINT, ts TIMESTAMP, d DATE, x DOUBLE PRECISION) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT \(expression) AS result FROM src;
            """
        let result = compile(text)
        let view = try #require(result.pipeline?.views.first, "\(result.errors.map(\.description))")
        return view.outputColumns[0].expression.evaluate(column: { row[$0] })
    }

    private func row(s: SQLValue = .null, t: SQLValue = .null, n: SQLValue = .null, ts: SQLValue = .null) -> [SQLValue] {
        [s, t, n, ts, .null, .null]
    }

    @Test func caseTakesTheFirstTrueBranchElseNull() throws {
        let searched = "CASE WHEN n > 10 THEN 'big' WHEN n > 0 THEN 'small' ELSE 'none' END"
        #expect(try evaluate(searched, row(n: .int(11))) == .string("big"))
        #expect(try evaluate(searched, row(n: .int(3))) == .string("small"))
        #expect(try evaluate(searched, row(n: .int(-1))) == .string("none"))
        // A NULL condition is not true: the ELSE branch answers.
        #expect(try evaluate(searched, row()) == .string("none"))
        #expect(try evaluate("CASE WHEN n > 0 THEN 'positive' END", row(n: .int(-1))) == .null)
        let simple = "CASE s WHEN 'click' THEN 1 WHEN 'view' THEN 2 ELSE 0 END"
        #expect(try evaluate(simple, row(s: .string("view"))) == .int(2))
        // NULL = 'click' is NULL, never true.
        #expect(try evaluate(simple, row()) == .int(0))
    }

    @Test func caseResultTypesWidenNumbers() throws {
        let pipeline = try #require(compiledPipeline("""
            CREATE SOURCE src (n BIGINT, x DOUBLE PRECISION) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT CASE WHEN n > 0 THEN n ELSE x END AS a, CASE WHEN n > 0 THEN NULL ELSE 'x' END AS b, CASE n WHEN 1 THEN true END FROM src;
            """))
        #expect(pipeline.views[0].outputColumns.map(\.type) == [.double, .text, .boolean])
        #expect(pipeline.views[0].outputColumns.map(\.name) == ["a", "b", "case"])
    }

    @Test func coalesceAndNullif() throws {
        #expect(try evaluate("COALESCE(s, t, 'none')", row(t: .string("b"))) == .string("b"))
        #expect(try evaluate("COALESCE(s, t, 'none')", row()) == .string("none"))
        #expect(try evaluate("COALESCE(s, t)", row()) == .null)
        #expect(try evaluate("NULLIF(n, 0)", row(n: .int(0))) == .null)
        #expect(try evaluate("NULLIF(n, 0)", row(n: .int(5))) == .int(5))
        #expect(try evaluate("NULLIF(n, 0)", row()) == .null)
        #expect(try evaluate("NULLIF(s, t)", row(s: .string("a"))) == .string("a"))
    }

    @Test func caseFunctionsAndLength() throws {
        #expect(try evaluate("lower(s)", row(s: .string("TOM Ärger"))) == .string("tom ärger"))
        #expect(try evaluate("upper(s)", row(s: .string("tom"))) == .string("TOM"))
        #expect(try evaluate("upper(s)", row()) == .null)
        // Characters, not bytes: 'jose' with an accent is 4 characters and 5 bytes.
        #expect(try evaluate("length(s)", row(s: .string("josé"))) == .int(4))
        #expect(try evaluate("char_length(s)", row(s: .string(""))) == .int(0))
        #expect(try evaluate("length(s)", row()) == .null)
    }

    @Test func substringCountsFromOneAndClips() throws {
        // PostgreSQL's manual: substr('alphabet', 3) → 'phabet', substr('alphabet', 3, 2) → 'ph'.
        #expect(try evaluate("substr(s, 3)", row(s: .string("alphabet"))) == .string("phabet"))
        #expect(try evaluate("substr(s, 3, 2)", row(s: .string("alphabet"))) == .string("ph"))
        // A start before 1 eats into the count: substring('hello', 0, 3) → 'he'; -5 for 3 → ''.
        #expect(try evaluate("substring(s, 0, 3)", row(s: .string("hello"))) == .string("he"))
        #expect(try evaluate("substring(s, -5, 3)", row(s: .string("hello"))) == .string(""))
        #expect(try evaluate("substr(s, 10)", row(s: .string("hello"))) == .string(""))
        #expect(try evaluate("substr(s, 2, n)", row(s: .string("héllo"), n: .int(2))) == .string("él"))
        // PostgreSQL raises "negative substring length not allowed": a streaming view gives NULL.
        #expect(try evaluate("substr(s, 2, n)", row(s: .string("hello"), n: .int(-1))) == .null)
        #expect(try evaluate("substr(s, n)", row(s: .string("hello"))) == .null)
    }

    @Test func splitPartConcatAndTrim() throws {
        // PostgreSQL's manual: split_part('abc~@~def~@~ghi', '~@~', 2) → 'def'; with -1 → 'ghi'.
        #expect(try evaluate("split_part(s, '~@~', 2)", row(s: .string("abc~@~def~@~ghi"))) == .string("def"))
        #expect(try evaluate("split_part(s, '~@~', -1)", row(s: .string("abc~@~def~@~ghi"))) == .string("ghi"))
        #expect(try evaluate("split_part(s, ',', 4)", row(s: .string("a,b,c"))) == .string(""))
        #expect(try evaluate("split_part(s, ',', 2)", row(s: .string("a,,c"))) == .string(""))
        #expect(try evaluate("split_part(s, '', 1)", row(s: .string("abc"))) == .string("abc"))
        #expect(try evaluate("split_part(s, ',', 0)", row(s: .string("a,b"))) == .null)
        #expect(try evaluate("split_part(s, ',', 1)", row()) == .null)
        // PostgreSQL's manual: concat('abcde', 2, NULL, 22) → 'abcde222'.
        #expect(try evaluate("concat(s, 2, NULL, 22)", row(s: .string("abcde"))) == .string("abcde222"))
        #expect(try evaluate("concat(s, t)", row()) == .string(""))
        #expect(try evaluate("concat(s, n, true)", row(s: .string("x"), n: .int(-3))) == .string("x-3t"))
        #expect(try evaluate("trim(s)", row(s: .string("  yes \t "))) == .string("yes \t"))
        #expect(try evaluate("btrim(s, 'xy')", row(s: .string("xyxtrimyyx"))) == .string("trim"))
        #expect(try evaluate("ltrim(s, 'zyx')", row(s: .string("zzzytest"))) == .string("test"))
        #expect(try evaluate("rtrim(s, 'xy')", row(s: .string("testxxzx"))) == .string("testxxz"))
    }

    @Test func regexpMatchElementsAreOneBasedAndNullWhenAbsent() throws {
        // PostgreSQL's manual: regexp_match('foobarbequebaz', '(bar)(beque)') → {bar,beque}; without groups the whole match.
        let groups = "(regexp_match(s, '(bar)(beque)'))"
        #expect(try evaluate("\(groups)[1]", row(s: .string("foobarbequebaz"))) == .string("bar"))
        #expect(try evaluate("\(groups)[2]", row(s: .string("foobarbequebaz"))) == .string("beque"))
        #expect(try evaluate("\(groups)[3]", row(s: .string("foobarbequebaz"))) == .null)
        #expect(try evaluate("\(groups)[0]", row(s: .string("foobarbequebaz"))) == .null)
        #expect(try evaluate("\(groups)[1]", row(s: .string("nothing here"))) == .null)
        #expect(try evaluate("\(groups)[1]", row()) == .null)
        #expect(try evaluate("(regexp_match(s, 'b[a-z]+'))[1]", row(s: .string("foobarbequebaz"))) == .string("barbequebaz"))
        #expect(try evaluate("(regexp_match(s, 'b[a-z]+'))[2]", row(s: .string("foobarbequebaz"))) == .null)
        // An optional group that does not take part is a NULL element.
        #expect(try evaluate("(regexp_match(s, '(a)|(b)'))[1]", row(s: .string("b"))) == .null)
        #expect(try evaluate("(regexp_match(s, t))[1]", row(s: .string("id=42"), t: .string("id=([0-9]+)"))) == .string("42"))
        // A pattern computed per row that does not compile gives NULL (PostgreSQL raises an error).
        #expect(try evaluate("(regexp_match(s, t))[1]", row(s: .string("x"), t: .string("(unclosed"))) == .null)
    }

    @Test func toCharFormatsTheCommonPatterns() throws {
        let ts = SQLValue.string("2026-03-05 14:07:09.123456")
        #expect(try evaluate("to_char(ts, 'YYYY-MM-DD HH24:MI:SS.MS')", row(ts: ts)) == .string("2026-03-05 14:07:09.123"))
        #expect(try evaluate("to_char(ts, 'Dy DD Mon YYYY, HH12 PM, US')", row(ts: ts)) == .string("Thu 05 Mar 2026, 02 PM, 123456"))
        #expect(try evaluate("to_char(ts, 'DY mon YY \"at\" HH:MI am')", row(ts: ts)) == .string("THU mar 26 at 02:07 pm"))
        // Month and Day are blank-padded to 9 characters, as PostgreSQL pads them.
        #expect(try evaluate("to_char(ts, 'Month|Day|')", row(ts: ts)) == .string("March    |Thursday |"))
        #expect(try evaluate("to_char(ts, 'HH12 AM')", row(ts: .string("2026-01-01 00:30:00"))) == .string("12 AM"))
        #expect(try evaluate("to_char(ts, 'Dy')", row(ts: .string("2000-02-29 00:00:00"))) == .string("Tue"))
        #expect(try evaluate("to_char(ts, 'Dy')", row(ts: .string("1969-12-31 23:59:59"))) == .string("Wed"))
        #expect(try evaluate("to_char(ts, 'YYYY')", row()) == .null)
        #expect(try evaluate("to_char(ts, t)", row(t: .string("YYYY Q"), ts: ts)) == .null)
    }

    @Test func weekdaysAgreeWithACountOfDays() {
        // 1970-01-01 was a Thursday (4); each following day advances the weekday by one.
        var weekday = 4
        var (year, month, day) = (1970, 1, 1)
        for _ in 0..<(366 * 60) {
            #expect(CanonicalTime.weekday(year: year, month: month, day: day) == weekday)
            weekday = (weekday + 1) % 7
            day += 1
            if day > CanonicalTime.daysIn(month: month, year: year) {
                day = 1
                month += 1
                if month > 12 { (month, year) = (1, year + 1) }
            }
        }
    }

    /// The string functions against a second, deliberately plain implementation over random strings: the
    /// definitions in PostgreSQL's manual, written with arrays of characters.
    @Test func stringFunctionsAgreeWithAPlainOracle() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "b", ",", " ", "é", "x", "-"]
        for _ in 0..<400 {
            let text = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let start = Int64.random(in: -3...10, using: &generator)
            let count = Int64.random(in: 0...6, using: &generator)
            let field = Int64.random(in: -4...4, using: &generator)
            let characters = Array(text)
            // substr: characters at positions start ..< start + count, 1-based, clipped to the string.
            let oracleSubstring = String((max(1, start)..<max(max(1, start), start + count)).compactMap { position in
                position <= Int64(characters.count) ? characters[Int(position) - 1] : nil
            })
            #expect(ScalarFunction.substr.apply([.string(text), .int(start), .int(count)]) == .string(oracleSubstring), "substr(\(text), \(start), \(count))")
            // split_part on ',': fields split at every comma.
            var fields: [String] = [""]
            for character in characters { if character == "," { fields.append("") } else { fields[fields.count - 1].append(character) } }
            let oracleField: SQLValue = field == 0 ? .null
                : .string(abs(field) > fields.count ? "" : fields[field > 0 ? Int(field) - 1 : fields.count + Int(field)])
            #expect(ScalarFunction.splitPart.apply([.string(text), .string(","), .int(field)]) == oracleField, "split_part(\(text), ',', \(field))")
            // btrim: drop spaces from both ends.
            var trimmed = characters[...]
            while trimmed.first == " " { trimmed = trimmed.dropFirst() }
            while trimmed.last == " " { trimmed = trimmed.dropLast() }
            #expect(ScalarFunction.btrim.apply([.string(text)]) == .string(String(trimmed)))
            #expect(ScalarFunction.length.apply([.string(text)]) == .int(Int64(characters.count)))
        }
    }

    @Test func newExpressionsWorkInWhereHavingAndGroupedOutputs() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW v AS
              SELECT upper(event) AS event_upper, CASE WHEN COUNT(*) > 1 THEN 'many' ELSE 'one' END AS how_many,
                     COUNT(*) FILTER (WHERE page LIKE '/cart%') AS carts, concat(event, ':', COUNT(*)) AS label
              FROM user_events
              WHERE COALESCE(lower(user), '') <> '' AND (regexp_match(page, '^/([a-z]+)'))[1] IS NOT NULL
              GROUP BY event
              HAVING length(event) > 2 AND COUNT(*) FILTER (WHERE page LIKE '/cart%') >= 0;
            """))
        let view = pipeline.views[0]
        #expect(view.aggregates.map(\.description) == ["count(*)", "count(*) FILTER (WHERE (page LIKE '/cart%'))"])
        #expect(view.outputColumns.map(\.type) == [.text, .text, .integer, .text])
        let filter = try #require(view.filter)
        #expect(filter.evaluate(column: { [.null, .string("Ann"), .string("/cart/1"), .string("click")][$0] }) == .bool(true))
        #expect(filter.evaluate(column: { [.null, .string("Ann"), .string("/Cart"), .string("click")][$0] }) == .bool(false))
        #expect(filter.evaluate(column: { [.null, .null, .string("/cart"), .string("click")][$0] }) == .bool(false))
        let groupKey: (Int) -> SQLValue = { _ in .string("click") }
        let aggregate: (Int) -> SQLValue = { [.int(3), .int(1)][$0] }
        let outputs = view.outputColumns.map { $0.expression.evaluate(column: { _ in .null }, groupKey: groupKey, aggregate: aggregate) }
        #expect(outputs == [.string("CLICK"), .string("many"), .int(1), .string("click:3")])
        #expect(view.having?.evaluate(column: { _ in .null }, groupKey: groupKey, aggregate: aggregate) == .bool(true))
        #expect(view.constructs.map(\.kind) == [.aggregateFilter, .aggregateFilter])
        // Where the first FILTER's condition is written: line 4, after 9 spaces and `COUNT(*) FILTER (WHERE `.
        #expect(view.constructs.first?.location == "test.sql:4:33")
    }

    @Test func aFilterIsPartOfTheViewsFingerprint() throws {
        func canonical(_ select: String) throws -> String {
            try #require(compiledPipeline(exampleSource + "\nCREATE MATERIALIZED VIEW v AS \(select);")?.views.first?.canonicalText)
        }
        let plain = try canonical("SELECT event, COUNT(*) FROM user_events GROUP BY event")
        let clicks = try canonical("SELECT event, COUNT(*) FILTER (WHERE page = '/') FROM user_events GROUP BY event")
        let other = try canonical("SELECT event, COUNT(*) FILTER (WHERE page = '/x') FROM user_events GROUP BY event")
        #expect(Set([plain, clicks, other]).count == 3)
        #expect(clicks.contains("FILTER (WHERE (page = '/'))"))
        // A column read only by a FILTER is one the state depends on.
        #expect(clicks.contains("page VARCHAR"))
    }

    @Test func theNewFormsRoundTripThroughTheirCanonicalText() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW v AS SELECT event, CASE event WHEN 'a' THEN 1 END AS c, (regexp_match(event, 'x(y)'))[1] AS m,
              to_char(MAX(event_timestamp), 'YYYY') AS y, COUNT(*) FROM user_events GROUP BY event;
            """))
        let columns = pipeline.views[0].outputColumns
        #expect(columns[1].expression.description == "(CASE WHEN (event = 'a') THEN 1 END)")
        #expect(columns[3].expression.description == "to_char(max(event_timestamp), 'YYYY')")
        #expect(columns[2].name == "m")
        #expect(pipeline.views[0].outputColumns.map(\.type)[1...3] == [.integer, .text, .text])
    }
}
