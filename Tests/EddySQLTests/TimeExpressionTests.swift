import Testing
@testable import EddySQL

/// Intervals, `timestamp ± interval`, `date_trunc`, `EXTRACT` / `date_part` and TIMESTAMPTZ literals: bound
/// from SQL text and evaluated, with the results PostgreSQL gives (its manual's examples where it has them).
@Suite struct TimeExpressionTests {
    private static let sourceSQL = """
        CREATE SOURCE src (ts TIMESTAMP, tz TIMESTAMPTZ, d DATE, s VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
        """

    /// The bound output column of `SELECT expression AS result FROM src`.
    private func bound(_ expression: String) throws -> OutputColumn {
        let result = compile(Self.sourceSQL + "\nCREATE MATERIALIZED VIEW v AS SELECT \(expression) AS result FROM src;")
        let view = try #require(result.pipeline?.views.first, "\(result.errors.map(\.description))")
        return view.outputColumns[0]
    }

    private func evaluate(_ expression: String, ts: SQLValue = .null, tz: SQLValue = .null, d: SQLValue = .null) throws -> SQLValue {
        let row: [SQLValue] = [ts, tz, d, .null]
        return try bound(expression).expression.evaluate(column: { row[$0] })
    }

    /// The first error of `SELECT expression FROM src`, as `line:column: message`.
    private func error(_ expression: String) -> String? {
        let result = compile(Self.sourceSQL + "\nCREATE MATERIALIZED VIEW v AS SELECT \(expression) AS result FROM src;")
        return result.errors.first.map { "\($0.line):\($0.column): \($0.message)" }
    }

    @Test(arguments: [
        ("INTERVAL '5' SECOND", "00:00:05"),
        ("INTERVAL '1 minute'", "00:01:00"),
        ("INTERVAL '1 MINUTE'", "00:01:00"),
        ("INTERVAL '2 hours'", "02:00:00"),
        ("INTERVAL '5 SECONDS'", "00:00:05"),
        ("INTERVAL '90 seconds'", "00:01:30"),
        ("INTERVAL '1 day 2 hours'", "1 day 02:00:00"),
        ("INTERVAL '1.5 days'", "1 day 12:00:00"),
        ("INTERVAL '1 week'", "7 days"),
        ("INTERVAL '1 year 2 months'", "1 year 2 mons"),
        ("INTERVAL '1.5 months'", "1 mon 15 days"),
        ("INTERVAL '-5 minutes'", "-00:05:00"),
        ("INTERVAL '500 ms'", "00:00:00.5"),
        ("INTERVAL '5'", "00:00:05"),
        ("INTERVAL '01:30:00'", "01:30:00"),
        ("INTERVAL '1:30' HOUR TO MINUTE", "01:30:00"),
        ("INTERVAL '1:30' MINUTE TO SECOND", "00:01:30"),
        ("INTERVAL '3' DAY", "3 days"),
        ("INTERVAL '1 day 2 hours' DAY", "1 day"),
        ("INTERVAL '@ 1 hour ago'", "-01:00:00"),
        ("- INTERVAL '5 minutes'", "-00:05:00"),
        ("INTERVAL '1 year 2 mons 3 days 04:05:06.5'", "1 year 2 mons 3 days 04:05:06.5"),
    ])
    func intervalLiteralsReadAsPostgreSQLReadsThem(_ sql: String, _ text: String) throws {
        let column = try bound(sql)
        #expect(column.type == .interval)
        #expect(column.expression == .literal(.string(text)), "\(sql)")
    }

    @Test func aTimestampPlusOrMinusAnIntervalMovesOnTheCalendar() throws {
        // Months first, the day clamped to the month's end (PostgreSQL: Jan 31 + 1 month is Feb 28 or 29).
        #expect(try evaluate("ts + INTERVAL '1 month'", ts: .string("2026-01-31 10:00:00")) == .string("2026-02-28 10:00:00"))
        #expect(try evaluate("ts + INTERVAL '1 month'", ts: .string("2024-01-31 10:00:00")) == .string("2024-02-29 10:00:00"))
        #expect(try evaluate("ts - INTERVAL '5 minutes'", ts: .string("2026-01-01 00:02:00")) == .string("2025-12-31 23:57:00"))
        #expect(try evaluate("INTERVAL '1 day' + ts", ts: .string("2026-12-31 23:00:00")) == .string("2027-01-01 23:00:00"))
        #expect(try evaluate("ts + INTERVAL '1.5 seconds'", ts: .string("2026-01-01 00:00:00")) == .string("2026-01-01 00:00:01.500000"))
        #expect(try evaluate("ts + INTERVAL '1 year 1 day 01:00:00'", ts: .string("2024-02-29 23:30:00")) == .string("2025-03-02 00:30:00"))
        #expect(try evaluate("ts - INTERVAL '500 ms'", ts: .string("2026-01-01 00:00:00.25")) == .string("2025-12-31 23:59:59.750000"))
        #expect(try evaluate("ts + INTERVAL '1 hour'") == .null)
        // A date counts as its midnight, and the result is a timestamp.
        let onDate = try bound("d + INTERVAL '1 hour'")
        #expect(onDate.type == .timestamp)
        #expect(try evaluate("d + INTERVAL '1 hour'", d: .string("2026-03-01")) == .string("2026-03-01 01:00:00"))
        #expect(try bound("tz - INTERVAL '1 hour'").type == .timestamptz)
        #expect(try bound("ts - INTERVAL '5 minutes'").expression.description == "(ts - INTERVAL '00:05:00')")
    }

    @Test func timesCompareAsTimes() throws {
        let later = "ts + INTERVAL '1 hour' > TIMESTAMP '2026-01-01 00:30:00'"
        #expect(try evaluate(later, ts: .string("2025-12-31 23:45:00")) == .bool(true))
        #expect(try evaluate(later, ts: .string("2025-12-31 23:15:00")) == .bool(false))
        #expect(try evaluate("ts >= DATE '2026-01-01'", ts: .string("2026-01-01 00:00:01")) == .bool(true))
        #expect(try evaluate("ts < '2026-01-01 00:00:00.5'", ts: .string("2026-01-01 00:00:00.250000")) == .bool(true))
        #expect(try evaluate("tz > ts", ts: .string("2026-01-01 00:00:00"), tz: .string("2026-01-01 00:00:00.000001")) == .bool(true))
    }

    @Test func aTimestamptzLiteralsOffsetIsBroughtToUTCAndATimestampsIsIgnored() throws {
        // PostgreSQL: '…+02:00'::timestamptz is two hours earlier in UTC; '…+02'::timestamp ignores the zone.
        #expect(try bound("tz > '2026-01-01 02:00:00+02:00'").expression.description == "(tz > '2026-01-01 00:00:00')")
        #expect(try bound("ts > '2026-01-01 02:00:00+02'").expression.description == "(ts > '2026-01-01 02:00:00')")
        #expect(try bound("TIMESTAMPTZ '2026-01-01 12:00:00-05:30'").expression == .literal(.string("2026-01-01 17:30:00")))
        #expect(try bound("TIMESTAMPTZ '2026-01-01T00:30:00+0100'").expression == .literal(.string("2025-12-31 23:30:00")))
        #expect(try bound("TIMESTAMPTZ '2026-01-01 12:00:00Z'").expression == .literal(.string("2026-01-01 12:00:00")))
        #expect(try bound("TIMESTAMPTZ '2026-01-01 12:00:00 UTC'").expression == .literal(.string("2026-01-01 12:00:00")))
        #expect(try bound("TIMESTAMPTZ '2026-01-01 12:00:00'").type == .timestamptz)
        #expect(error("tz = '2026-01-01 12:00:00+25'")?.contains("invalid input syntax for type TIMESTAMPTZ") == true)
    }

    @Test(arguments: [
        // PostgreSQL's manual: date_trunc('hour', timestamp '2001-02-16 20:38:40') → 2001-02-16 20:00:00, 'year' → 2001-01-01.
        ("hour", "2001-02-16 20:38:40", "2001-02-16 20:00:00"),
        ("year", "2001-02-16 20:38:40", "2001-01-01 00:00:00"),
        ("minute", "2026-11-24 17:03:45.5", "2026-11-24 17:03:00"),
        ("second", "2026-11-24 17:03:45.5", "2026-11-24 17:03:45"),
        ("milliseconds", "2026-11-24 17:03:45.123456", "2026-11-24 17:03:45.123000"),
        ("day", "2026-11-24 17:03:45", "2026-11-24 00:00:00"),
        ("week", "2026-11-24 17:03:45", "2026-11-23 00:00:00"),
        ("week", "2026-11-23 00:00:00", "2026-11-23 00:00:00"),
        ("week", "2027-01-03 12:00:00", "2026-12-28 00:00:00"),
        ("month", "2026-11-24 17:03:45", "2026-11-01 00:00:00"),
        ("quarter", "2026-11-24 17:03:45", "2026-10-01 00:00:00"),
        ("decade", "2026-11-24 17:03:45", "2020-01-01 00:00:00"),
        ("century", "2026-11-24 17:03:45", "2001-01-01 00:00:00"),
        ("century", "2000-11-24 17:03:45", "1901-01-01 00:00:00"),
        ("millennium", "2026-11-24 17:03:45", "2001-01-01 00:00:00"),
        ("MINUTES", "2026-11-24 17:03:45", "2026-11-24 17:03:00"),
    ])
    func dateTruncCutsBelowTheUnit(_ unit: String, _ time: String, _ expected: String) throws {
        #expect(try evaluate("date_trunc('\(unit)', ts)", ts: .string(time)) == .string(expected))
    }

    @Test(arguments: [
        // PostgreSQL's manual, EXTRACT section.
        ("CENTURY", "2000-12-16 12:21:13", 20.0),
        ("DAY", "2001-02-16 20:38:40", 16),
        ("DECADE", "2001-02-16 20:38:40", 200),
        ("DOW", "2001-02-16 20:38:40", 5),
        ("DOY", "2001-02-16 20:38:40", 47),
        ("EPOCH", "2001-02-16 20:38:40.12", 982_355_920.12),
        ("HOUR", "2001-02-16 20:38:40", 20),
        ("ISODOW", "2001-02-18 20:38:40", 7),
        ("ISOYEAR", "2006-01-01 00:00:00", 2005),
        ("ISOYEAR", "2006-01-02 00:00:00", 2006),
        ("MICROSECONDS", "2001-02-16 17:12:28.5", 28_500_000),
        ("MILLENNIUM", "2001-02-16 20:38:40", 3),
        ("MILLISECONDS", "2001-02-16 17:12:28.5", 28_500),
        ("MINUTE", "2001-02-16 20:38:40", 38),
        ("MONTH", "2001-02-16 20:38:40", 2),
        ("QUARTER", "2001-02-16 20:38:40", 1),
        ("SECOND", "2001-02-16 20:38:40", 40),
        ("SECOND", "2001-02-16 17:12:28.5", 28.5),
        ("WEEK", "2001-02-16 20:38:40", 7),
        ("YEAR", "2001-02-16 20:38:40", 2001),
    ])
    func extractReadsAField(_ field: String, _ time: String, _ expected: Double) throws {
        let extract = try bound("EXTRACT(\(field) FROM ts)")
        #expect(extract.type == .numeric)
        #expect(extract.expression.evaluate(column: { $0 == 0 ? .string(time) : .null }) == .double(expected))
        let datePart = try bound("date_part('\(field.lowercased())', ts)")
        #expect(datePart.type == .double)
        #expect(datePart.expression.evaluate(column: { $0 == 0 ? .string(time) : .null }) == .double(expected))
    }

    @Test func extractReadsDatesAndTypedLiteralsAndNamesItself() throws {
        #expect(try evaluate("EXTRACT(YEAR FROM d)", d: .string("2026-03-01")) == .double(2026))
        #expect(try evaluate("EXTRACT(DOY FROM DATE '2026-12-31')") == .double(365))
        #expect(try evaluate("EXTRACT(HOUR FROM ts)") == .null)
        #expect(try bound("EXTRACT(hour FROM ts)").expression.description == "EXTRACT(HOUR FROM ts)")
        let pipeline = try #require(compiledPipeline(Self.sourceSQL + "\nCREATE MATERIALIZED VIEW v AS SELECT EXTRACT(HOUR FROM ts), date_trunc('hour', ts), INTERVAL '1 day' FROM src;"))
        #expect(pipeline.views[0].outputColumns.map(\.name) == ["extract", "date_trunc", "interval"])
        #expect(pipeline.views[0].outputColumns.map(\.type) == [.numeric, .timestamp, .interval])
    }

    /// Time functions work in WHERE, HAVING and as GROUP BY inputs of a view over a view.
    @Test func timeFunctionsWorkInEveryClauseOfADerivedView() throws {
        let pipeline = try #require(compiledPipeline(Self.sourceSQL + """

            CREATE MATERIALIZED VIEW minutes AS SELECT date_trunc('minute', ts) AS minute, s FROM src WHERE ts > TIMESTAMP '2026-01-01' - INTERVAL '1 day';
            CREATE MATERIALIZED VIEW per_minute AS SELECT minute, COUNT(*) AS n FROM minutes GROUP BY minute HAVING EXTRACT(MINUTE FROM minute) < 30 AND minute + INTERVAL '1 hour' > '2026-01-01 00:00:00';
            """))
        let minutes = pipeline.views[0]
        #expect(minutes.filter?.description == "(ts > ('2026-01-01 00:00:00' - INTERVAL '1 day'))")
        #expect(minutes.outputColumns[0].type == .timestamp)
        let perMinute = pipeline.views[1]
        let having = try #require(perMinute.having)
        let keep = having.evaluate(column: { _ in .null }, groupKey: { _ in .string("2026-01-01 00:10:00") }, aggregate: { _ in .int(1) })
        let drop = having.evaluate(column: { _ in .null }, groupKey: { _ in .string("2026-01-01 00:40:00") }, aggregate: { _ in .int(1) })
        #expect(keep == .bool(true) && drop == .bool(false))
        let filter = try #require(minutes.filter)
        #expect(filter.evaluate(column: { $0 == 0 ? .string("2025-12-31 00:00:01") : .null }) == .bool(true))
        #expect(filter.evaluate(column: { $0 == 0 ? .string("2025-12-30 23:59:59") : .null }) == .bool(false))
    }

    @Test(arguments: [
        ("date_trunc('fortnight', ts)", "2:49: unit 'fortnight' is not recognized by date_trunc"),
        ("date_trunc('dow', ts)", "2:49: unit 'dow' is not recognized by date_trunc"),
        ("EXTRACT(fortnight FROM ts)", "2:46: unit 'fortnight' is not recognized by EXTRACT"),
        ("EXTRACT(hour FROM s)", "2:56: function EXTRACT(VARCHAR, VARCHAR) does not exist"),
        ("date_part('hour', 5)", "2:56: function date_part(VARCHAR, BIGINT) does not exist"),
        ("ts + 1", "2:41: operator does not exist: TIMESTAMP + BIGINT"),
        ("ts - ts", "2:41: operator does not exist: TIMESTAMP - TIMESTAMP (the difference of two times is not supported yet"),
        ("INTERVAL '1 day' - ts", "2:55: operator does not exist: INTERVAL - TIMESTAMP"),
        ("INTERVAL '1 day' > INTERVAL '2 hours'", "2:55: comparing intervals is not supported yet"),
        ("INTERVAL 'five minutes'", "2:38: invalid input syntax for type interval: 'five minutes'"),
        ("INTERVAL '5 fortnights'", "2:38: invalid input syntax for type interval: '5 fortnights' (unit 'fortnights' is not recognized)"),
        ("TIMESTAMP '2026-02-30'", "2:38: invalid input syntax for type TIMESTAMP: '2026-02-30'"),
    ])
    func misuseIsReportedWhereItIs(_ expression: String, _ expected: String) {
        let reported = error(expression)
        #expect(reported?.hasPrefix(expected) == true, "\(reported ?? "no error")")
    }

    @Test func intervalTextRoundTripsThroughItsOwnParser() throws {
        let samples = [
            SQLInterval(months: 14, days: 3, microseconds: 14_706_500_000), SQLInterval(days: -1), SQLInterval(microseconds: -300_000_000),
            SQLInterval(), SQLInterval(months: -25, days: 2, microseconds: 1), SQLInterval(microseconds: 90_000_000_000),
        ]
        for interval in samples {
            #expect(try SQLInterval.parse(interval.description).get() == interval, "\(interval)")
        }
        #expect(SQLInterval(months: 14, days: 3, microseconds: 14_706_500_000).description == "1 year 2 mons 3 days 04:05:06.5")
        #expect(SQLInterval(days: -1).description == "-1 days")
        #expect(SQLInterval().description == "00:00:00")
    }

    @Test func civilTimeAgreesWithTheCanonicalParserOverFourCenturies() {
        // Every 13th hour and 7th minute from 1900 to 2300: microseconds → text → microseconds.
        var micros = CivilTime.days(year: 1900, month: 1, day: 1) * CivilTime.microsecondsPerDay + 123_456
        let end = CivilTime.days(year: 2300, month: 1, day: 1) * CivilTime.microsecondsPerDay
        while micros < end {
            let text = CivilTime.timestampText(microseconds: micros)
            #expect(CanonicalTime.parse(text, dateOnly: false) == text)
            #expect(CivilTime.microseconds(of: text) == micros, "\(text)")
            micros += 13 * 3_600_000_000 + 7 * 60_000_000
        }
    }
}
