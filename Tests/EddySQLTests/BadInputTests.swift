import Testing
@testable import EddySQL

/// One bad pipeline file: where the first error must point (line, and the text it must start at on that
/// line) and what its message must say.
struct BadInput: CustomTestStringConvertible, Sendable {
    let sql: String
    let line: Int
    /// The error's column is where this text first occurs on `line` (`occurrence` picks a later one).
    let at: String
    var occurrence = 1
    let message: String
    var environment: [String: String] = [:]

    var testDescription: String { message }
}

private let source = exampleSource
private let view = exampleView
private let sink = exampleSink

/// Line 1 is the example source, line 2 the view, line 3 the sink, unless a case replaces them.
private func file(_ lines: String...) -> String { lines.joined(separator: "\n") }

let badInputs: [BadInput] = [
    // Lexical.
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (topic='unterminated) FORMAT PLAIN ENCODE JSON;", line: 1, at: "'unterminated", message: "unterminated string"),
    BadInput(sql: "CREATE SOURCE \"s (a VARCHAR);", line: 1, at: "\"s", message: "unterminated quoted name"),
    BadInput(sql: file(source, "/* never closed"), line: 2, at: "/*", message: "unterminated /* comment"),
    BadInput(sql: file(source, "SELECT event FROM user_events WHERE event = 'a' # 1;"), line: 2, at: "#", message: "unexpected character '#'"),
    BadInput(sql: file(source, "SELECT 12abc FROM events;"), line: 2, at: "12abc", message: "trailing characters after the number 12"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='${NOT_SET_ANYWHERE}') FORMAT PLAIN ENCODE JSON;", line: 1, at: "${NOT_SET", message: "environment variable NOT_SET_ANYWHERE is not set"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic=${TOPIC}) FORMAT PLAIN ENCODE JSON;", line: 1, at: "${TOPIC}", message: "outside quotes", environment: ["TOPIC": "t"]),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='${1BAD}', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "${1BAD}", message: "malformed environment reference"),
    BadInput(sql: "CREATE SOURCE \"\" (a VARCHAR);", line: 1, at: "\"\"", message: "a quoted name cannot be empty"),

    // Syntax.
    BadInput(sql: "CREAT SOURCE s;", line: 1, at: "CREAT", message: "expected CREATE SOURCE, CREATE TABLE, CREATE MATERIALIZED VIEW, CREATE SINK or SELECT, found 'creat'"),
    BadInput(sql: "CREATE INDEX i ON t (a);", line: 1, at: "INDEX", message: "expected SOURCE, TABLE, MATERIALIZED VIEW or SINK after CREATE"),
    BadInput(sql: "CREATE SOURCE IF EXISTS s (a VARCHAR);", line: 1, at: "EXISTS", message: "expected NOT in IF NOT EXISTS"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR, ) WITH (connector='kafka');", line: 1, at: ")", message: "expected a column name, found ')'"),
    BadInput(sql: "CREATE SOURCE s (a BLOB) WITH (connector='kafka');", line: 1, at: "BLOB", message: "unknown type 'blob' for column 'a'"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector 'kafka');", line: 1, at: "'kafka'", message: "expected '=' after option 'connector'"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector=kafka);", line: 1, at: "kafka)", message: "expected a quoted value for option 'connector'"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v SELECT event FROM user_events GROUP BY event;"), line: 2, at: "SELECT", message: "expected AS before the view's query"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(* FROM user_events GROUP BY event;"), line: 2, at: "FROM", message: "expected ')' to close the arguments of count("),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "(", message: "expected FROM after the select list"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP event;"), line: 2, at: "event;", message: "expected BY after GROUP"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE event = GROUP BY event;"), line: 2, at: "GROUP", message: "expected an expression, found the keyword GROUP"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE 1 < 2 < 3 GROUP BY event;"), line: 2, at: "< 3", message: "comparisons do not chain"),
    BadInput(sql: file(source, "SELECT * FROM user_events LIMIT -1;"), line: 2, at: "-1", message: "expected a non-negative whole number after LIMIT"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP BY event"), line: 2, at: "", occurrence: 0, message: ""),  // valid: a final ';' is optional
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP BY event) ;"), line: 2, at: ") ;", message: "expected ';' after the statement, found ')'"),

    // Unsupported statements and constructs.
    BadInput(sql: file(source, "DROP SOURCE user_events;"), line: 2, at: "DROP", message: "DROP is not supported"),
    BadInput(sql: file(source, "SHOW SOURCES;"), line: 2, at: "SHOW", message: "SHOW is not supported"),
    BadInput(sql: file(source, "INSERT INTO user_events VALUES (1);"), line: 2, at: "INSERT", message: "INSERT is not supported"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events JOIN other ON true GROUP BY event;"), line: 2, at: "JOIN", message: "joins are not supported"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP BY lower(event);"), line: 2, at: "lower", message: "GROUP BY an expression is not supported yet"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, string_agg(user) FROM user_events GROUP BY event;"), line: 2, at: "string_agg", message: "aggregate string_agg() is not supported yet"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, SUM(DISTINCT page) FROM user_events GROUP BY event;"), line: 2, at: "SUM", message: "SUM(DISTINCT ...) is not supported"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event FROM user_events;"), line: 2, at: "", occurrence: 0, message: ""),  // valid: a view that does not aggregate binds (the runtime refuses it for now)
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, CAST(event AS STRUCT<a INT>) FROM user_events GROUP BY event;"), line: 2, at: "STRUCT", message: "a cast to STRUCT is not supported"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT UPSERT ENCODE JSON;", line: 1, at: "UPSERT", message: "FORMAT UPSERT is not supported"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE AVRO;", line: 1, at: "AVRO", message: "ENCODE AVRO is not supported for sources"),

    // Names.
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "evnt", message: "column 'evnt' does not exist in 'user_events'; did you mean 'event'?"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_event GROUP BY event;"), line: 2, at: "user_event ", message: "source or materialized view 'user_event' does not exist; did you mean 'user_events'?"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT \"Event\", COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "\"Event\"", message: "did you mean \"event\"? (quoted names keep their case)"),
    BadInput(sql: file(source, source), line: 2, at: "user_events", occurrence: -1, message: "already exists (line 1); this source is skipped (IF NOT EXISTS)"),  // warning only: compiles
    BadInput(sql: file(source, "CREATE SOURCE user_events (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;"), line: 2, at: "user_events", message: "source 'user_events' already exists (defined at 1:29)"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR, A INT) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "A INT", message: "column 'a' is declared twice"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*), COUNT(user) FROM user_events GROUP BY event;"), line: 2, at: "COUNT(user)", message: "column 'count' specified more than once"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM nope WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "nope", message: "materialized view 'nope' does not exist"),
    BadInput(sql: file(source, view, "SELECT * FROM events_statistics_mv;"), line: 3, at: "events_statistics_mv", message: "did you mean 'events_statisics_mv'?"),
    BadInput(sql: file(source, view, "SELECT * FROM user_events;"), line: 3, at: "user_events", message: "'user_events' is a source: Eddy answers queries over materialized views"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM other.user_events GROUP BY event;"), line: 2, at: "other", message: "schema 'other' is not supported"),
    // An unknown column written in several clauses is reported where it first occurs, as PostgreSQL does.
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events GROUP BY evnt;"), line: 2, at: "evnt", message: "column 'evnt' does not exist in 'user_events'; did you mean 'event'?"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*), evnt FROM user_events WHERE evnt <> 'x' GROUP BY evnt;"), line: 2, at: "evnt", message: "column 'evnt' does not exist in 'user_events'"),

    // Grouping and types.
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE COUNT(*) > 1 GROUP BY event;"), line: 2, at: "COUNT(*) >", message: "aggregate functions are not allowed in WHERE"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, page, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "page", message: "column 'page' must appear in the GROUP BY clause or be used in an aggregate function"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, SUM(page) FROM user_events GROUP BY event;"), line: 2, at: "SUM", message: "function sum(VARCHAR) does not exist"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE event GROUP BY event;"), line: 2, at: "event GROUP", message: "argument of WHERE must be boolean, not VARCHAR"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE event = 3 GROUP BY event;"), line: 2, at: "= 3", message: "operator does not exist: VARCHAR = BIGINT"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE event_timestamp > '2026-02-30' GROUP BY event;"), line: 2, at: "> '2026", message: "invalid input syntax for type TIMESTAMP: '2026-02-30'"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(MAX(page)) FROM user_events GROUP BY event;"), line: 2, at: "MAX(page)", message: "aggregate function calls cannot be nested"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP BY event HAVING page = 'x';"), line: 2, at: "page =", message: "column 'page' must appear in the GROUP BY clause"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events GROUP BY 3;"), line: 2, at: "3;", message: "GROUP BY position 3 is not in the select list"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE page LIKE 5 GROUP BY event;"), line: 2, at: "5 GROUP", message: "LIKE compares text"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, SUM(*) FROM user_events GROUP BY event;"), line: 2, at: "*)", message: "SUM(*) is not allowed; only COUNT(*)"),

    // Expressions: CASE, functions, FILTER.
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, CASE WHEN event THEN 1 END, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "event THEN", message: "argument of CASE/WHEN must be boolean, not VARCHAR"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, CASE WHEN true THEN 1 ELSE 'x' END, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "'x'", message: "CASE types BIGINT and VARCHAR cannot be matched"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, CASE WHEN true THEN 1, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: ", COUNT", message: "expected END to close CASE"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, CASE END, COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "END", message: "expected WHEN in CASE"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COALESCE(event, 1), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "1)", message: "COALESCE types VARCHAR and BIGINT cannot be matched"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, NULLIF(event), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "NULLIF", message: "function nullif takes 2 arguments, got 1"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, NULLIF(event, 3), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "3)", message: "operator does not exist: VARCHAR NULLIF BIGINT"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, lower(event, event), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "lower", message: "function lower takes 1 argument, got 2"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, upper(COUNT(*)) FROM user_events GROUP BY event;"), line: 2, at: "COUNT(*))", message: "function upper(BIGINT) does not exist: argument 1 of upper must be VARCHAR"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, substr(event, 'a'), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "'a'", message: "function substr(VARCHAR, VARCHAR) does not exist: argument 2 of substr must be BIGINT"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, split_part(event, ','), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "split_part", message: "function split_part takes 3 arguments, got 2"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, concat(), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "concat", message: "function concat takes at least one argument"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, initcap(event), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "initcap", message: "function initcap() is not supported; a view may use"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, regexp_match(event, 'a'), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "regexp_match", message: "regexp_match returns text[], which a column cannot hold yet"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, (regexp_match(event, 'a('))[1], COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "'a('", message: "invalid regular expression 'a(' in regexp_match"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, (regexp_match(event, 'a'))['x'], COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "'x'", message: "array subscript must be an integer, not VARCHAR"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, (lower(event))[1], COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "lower", message: "only the result of regexp_match(...) can be subscripted"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, (regexp_match(event, 'a'))[1:2], COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: ":2", message: "array slices ([a:b]) are not supported"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, to_char(MAX(event_timestamp), 'YYYY-Q'), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "'YYYY-Q'", message: "to_char pattern 'Q' is not supported (supported: YYYY"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, to_char(event, 'YYYY'), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "event, 'YYYY'", message: "function to_char(VARCHAR, VARCHAR) does not exist: argument 1 of to_char must be TIMESTAMP"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FILTER (WHERE page) FROM user_events GROUP BY event;"), line: 2, at: "page)", message: "argument of FILTER must be boolean, not VARCHAR"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FILTER (WHERE COUNT(*) > 1) FROM user_events GROUP BY event;"), line: 2, at: "COUNT(*) >", message: "aggregate functions are not allowed in FILTER"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FILTER (WHERE pge = 'x') FROM user_events GROUP BY event;"), line: 2, at: "pge", message: "column 'pge' does not exist in 'user_events'"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, lower(event) FILTER (WHERE true), COUNT(*) FROM user_events GROUP BY event;"), line: 2, at: "true)", message: "FILTER is only allowed on aggregate functions; lower() is not one"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FILTER (page = 'x') FROM user_events GROUP BY event;"), line: 2, at: "page =", message: "expected WHERE in FILTER (WHERE ...)"),

    // The graph of views: aliases, views over views, subqueries.
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT e.event, COUNT(*) FROM user_events e GROUP BY user_events.event;"), line: 2, at: "user_events.event", message: "missing FROM-clause entry for 'user_events': the view reads 'e'"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT x.event, COUNT(*) FROM user_events AS e GROUP BY event;"), line: 2, at: "x.event", message: "missing FROM-clause entry for 'x'"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM v GROUP BY event;"), line: 2, at: "v GROUP", message: "materialized view 'v' reads itself: views may not form a cycle"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW a AS SELECT n, COUNT(*) FROM b GROUP BY n;", "CREATE MATERIALIZED VIEW b AS SELECT count AS n, COUNT(*) FROM a GROUP BY count;"), line: 2, at: "b GROUP", message: "materialized view 'b' is defined later (line 3)"),
    BadInput(sql: file(source, view, "CREATE MATERIALIZED VIEW v2 AS SELECT count, COUNT(*) FROM events_statisics_mx GROUP BY count;"), line: 3, at: "events_statisics_mx", message: "source or materialized view 'events_statisics_mx' does not exist; did you mean 'events_statisics_mv'?"),
    BadInput(sql: file(source, view, "CREATE MATERIALIZED VIEW v2 AS SELECT evnt, COUNT(*) FROM events_statisics_mv GROUP BY evnt;"), line: 3, at: "evnt", message: "column 'evnt' does not exist in 'events_statisics_mv'; did you mean 'event'?"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT t.x, COUNT(*) FROM (SELECT user AS x FROM user_evnts) AS t GROUP BY t.x;"), line: 2, at: "user_evnts", message: "source or materialized view 'user_evnts' does not exist"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT t.y, COUNT(*) FROM (SELECT user AS x FROM user_events) AS t GROUP BY t.y;"), line: 2, at: "t.y", message: "column 'y' does not exist in 't'; did you mean 'x'?"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT x, COUNT(*) FROM (SELECT user AS x FROM user_events) GROUP BY x;"), line: 2, at: "GROUP", message: "a subquery in FROM needs an alias"),
    BadInput(sql: file(source, "CREATE MATERIALIZED VIEW v AS SELECT x, COUNT(*) FROM (VALUES (1)) AS t GROUP BY x;"), line: 2, at: "VALUES", message: "expected SELECT after '(' in FROM"),
    BadInput(sql: file(source, view, "SELECT * FROM (SELECT event FROM events_statisics_mv) AS t;"), line: 3, at: "(SELECT", message: "a subquery in FROM of a query is not supported"),

    // Options.
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t') FORMAT PLAIN ENCODE JSON;", line: 1, at: "WITH", message: "source 's' needs properties.bootstrap.server"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='pulsar', topic='t') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'pulsar'", message: "connector 'pulsar' is not supported for sources"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', scan.startup.mode='sometimes') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'sometimes'", message: "scan.startup.mode must be 'earliest', 'latest' or 'timestamp', not 'sometimes'"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', scan.startup.mode='timestamp') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'timestamp'", message: "scan.startup.mode='timestamp' needs scan.startup.timestamp.millis"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', scan.startup.mode='timestamp', scan.startup.timestamp.millis='yesterday') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'yesterday'", message: "scan.startup.timestamp.millis must be milliseconds since 1970-01-01 UTC"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', startup='x') FORMAT PLAIN ENCODE JSON;", line: 1, at: "startup=", message: "unknown Kafka source option 'startup'; accepted: connector, topic, properties.bootstrap.server"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.enable.auto.commit='true') FORMAT PLAIN ENCODE JSON;", line: 1, at: "properties.enable", message: "cannot be set: Eddy keeps offsets in its own checkpoint"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.security.protocol='TLS') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'TLS'", message: "properties.security.protocol must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='a topic', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "'a topic'", message: "topic 'a topic' is not a valid Kafka topic name"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', topic='u', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "topic='u'", message: "option 'topic' is given twice (first at 1:54)"),
    BadInput(sql: "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1');", line: 1, at: ")", occurrence: 2, message: "needs FORMAT PLAIN ENCODE JSON"),
    BadInput(sql: "CREATE SOURCE s WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "s WITH", message: "source 's' needs a column list"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='http://h:6380') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'http", message: "redis.url: expected redis://[user[:password]@]host[:port][/db] (rediss:// for TLS)"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[\"redis://u:secret@127.0.0.1:7000\" \"redis://u:secret@127.0.0.1:7001\"]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url: expected a JSON array of URLs"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url: the list of Redis Cluster nodes is empty"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[\"redis://u:secret@127.0.0.1:7000\",\"redis://u:secret@127.0.0.1:x\"]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url node 2 of 2: the port must be a number from 1 to 65535"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[\"redis://127.0.0.1:7000\",\"rediss://127.0.0.1:7001\"]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url: every node of a Redis Cluster must use the same scheme"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[\"redis://u:secret@127.0.0.1:7000\",\"redis://u:other@127.0.0.1:7001\"]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url: every node of a Redis Cluster must carry the same user and password"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='[\"redis://127.0.0.1:7000/2\"]') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'[", message: "redis.url: node 1 names database 2: a Redis Cluster has database 0 only"),
    // Accepted: a JSON array of URLs (a Redis Cluster, RisingWave's form).
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url=' [ \"redis://u:secret@127.0.0.1:7000\" , \"redis://u:secret@127.0.0.1:7001\" ] ') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "", occurrence: 0, message: ""),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:6380', redis.ssl.ca.location='/ca.pem') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "redis.ssl.ca", message: "redis.ssl.ca.location applies to TLS connections only: redis.url must start with rediss://"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='rediss://h:6380', redis.ssl.certificate.location='/c.pem') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "redis.ssl.certificate", message: "redis.ssl.certificate.location needs redis.ssl.key.location"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='rediss://h:6380', redis.ssl.key.location='/k.pem') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "redis.ssl.key", message: "redis.ssl.key.location needs redis.ssl.certificate.location"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='rediss://h:6380', redis.ssl.server.name='') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "''", message: "redis.ssl.server.name must not be empty"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='rediss://h:6380', redis.tls.ca='/ca.pem') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "redis.tls", message: "unknown Redis sink option 'redis.tls.ca'; accepted: connector, primary_key, redis.url, redis.ssl.ca.location, redis.ssl.certificate.location, redis.ssl.key.location, redis.ssl.server.name, sink.max_pending_epochs"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:port') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'redis://h", message: "redis.url: the port must be a number from 1 to 65535"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://u:pa?ss@h:port') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'redis://u", message: "redis.url: the port must be a number from 1 to 65535"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://u:pa?ss@h:1?timeout=3') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'redis://u", message: "redis.url: query parameters ('?timeout') are not supported"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://u:p/w@h:1/x') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'redis://u", message: "redis.url: the database after '/' must be a number, not 'x'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='evt', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'evt'", message: "primary_key column 'evt' is not a column of view 'events_statisics_mv'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='count', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'count'", message: "primary_key must include the view's GROUP BY column 'event'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "WITH", message: "sink 'k' needs primary_key"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{evnt}', value_format='{count}');"), line: 3, at: "{evnt}", message: "key_format names '{evnt}', which is not a column of view 'events_statisics_mv'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{count}:{event}', value_format='{count}');"), line: 3, at: "{count}:", message: "key_format may only use primary_key columns (event); '{count}' is not one"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count');"), line: 3, at: "{count'", message: "value_format: '{' at character 1 has no closing '}'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}');"), line: 3, at: "TEMPLATE", message: "ENCODE TEMPLATE needs value_format"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1', key_format='{event}') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "key_format", message: "key_format belongs in FORMAT PLAIN ENCODE TEMPLATE"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}', force_append_only='yes');"), line: 3, at: "'yes'", message: "force_append_only must be 'true' or 'false'"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='kafka', primary_key='event') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "'kafka'", message: "connector 'kafka' is not supported for sinks"),
    BadInput(sql: file(source, view, "CREATE SINK k FROM user_events WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;"), line: 3, at: "user_events", message: "Eddy sinks materialized views"),
]

@Suite struct BadInputTests {
    @Test(arguments: badInputs)
    func reportsTheErrorWhereItIs(_ input: BadInput) throws {
        let result = compile(input.sql, environment: input.environment)
        if input.occurrence == 0 {
            #expect(result.errors.isEmpty, "expected no error, got \(result.errors.map(\.description))")
            return
        }
        if input.occurrence < 0 {
            // A warning: the file still compiles.
            #expect(result.errors.isEmpty, "expected only a warning, got \(result.errors.map(\.description))")
            let warning = try #require(result.warnings.first)
            try expect(warning, input, occurrence: 1)
            return
        }
        #expect(result.pipeline == nil)
        let error = try #require(result.errors.first, "no error for: \(input.sql)")
        try expect(error, input, occurrence: input.occurrence)
    }

    private func expect(_ error: SQLError, _ input: BadInput, occurrence: Int) throws {
        #expect(error.message.contains(input.message), "message: \(error.message)")
        #expect(error.line == input.line, "\(error.description)")
        let lineText = input.sql.split(separator: "\n", omittingEmptySubsequences: false)[input.line - 1]
        var searchStart = lineText.startIndex
        var found: Range<Substring.Index>?
        for _ in 0..<occurrence {
            found = lineText[searchStart...].range(of: input.at)
            guard let range = found else { break }
            searchStart = lineText.index(after: range.lowerBound)
        }
        let start = try #require(found, "'\(input.at)' is not on line \(input.line)")
        let expectedColumn = lineText.unicodeScalars.distance(from: lineText.startIndex, to: start.lowerBound) + 1
        #expect(error.column == expectedColumn, "\(error.description)")
        #expect(error.description.hasPrefix("test.sql:\(input.line):\(expectedColumn): \(error.severity.rawValue): "))
    }

    /// Redis URLs whose credentials hold the characters the URL parser splits on ('?', '/', ':', '@'): no
    /// part of the user or password may appear in an error, neither its message nor the line it shows.
    @Test(arguments: [
        "redis://SECRETUSER:P4SS?W0RD@h:port",
        "redis://SECRETUSER:P4SS?W0RD@h:1?db=2",
        "redis://SECRETUSER:P4SS/W0RD@h:1/notadb",
        "redis://SECRETUSER:P4SS:W0RD@h:1/notadb",
        "redis://SECRETUSER:P4SS@W0RD@[::1",
        "redis://SECRETUSER:P4SS%zzW0RD@h:1",
        "redis://P4SS?W0RD@:1",
    ])
    func redisURLErrorsNeverShowTheCredentials(_ url: String) throws {
        let result = compile(file(source, view, "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='\(url)') FORMAT PLAIN ENCODE JSON;"))
        let error = try #require(result.errors.first)
        #expect(error.message.hasPrefix("redis.url: "))
        for part in ["SECRETUSER", "P4SS", "W0RD"] {
            #expect(!error.description.contains(part), "\(error.description)")
        }
        // The line shown keeps its columns: the credentials are starred, one '*' per character.
        let afterScheme = url.dropFirst("redis://".count)
        let userinfo = afterScheme[..<(try #require(afterScheme.lastIndex(of: "@")))]
        #expect(error.description.contains("redis://" + String(repeating: "*", count: userinfo.count) + "@"))
    }

    /// One report per unknown column and statement, at its first occurrence (line:column), however many clauses
    /// repeat it; a different mistake in GROUP BY is still reported on its own.
    @Test func anUnknownColumnIsReportedOnceWhereItFirstOccurs() throws {
        let repeated = compile(file(source, "CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events WHERE evnt <> 'x' GROUP BY evnt HAVING MAX(evnt) > 'a';"))
        #expect(repeated.errors.map(\.headline) == [
            "test.sql:2:38: error: column 'evnt' does not exist in 'user_events'; did you mean 'event'? (columns: event_timestamp, user, page, event)",
        ])
        let two = compile(file(source, "CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events GROUP BY evnt, pge;"))
        #expect(two.errors.map { "\($0.line):\($0.column)" } == ["2:38", "2:85"])
        #expect(two.errors.last?.message.hasPrefix("column 'pge' does not exist in 'user_events'; did you mean 'page'?") == true)
        // A GROUP BY error does not hide a type error of the select list, nor invent a grouping one.
        let typed = compile(file(source, "CREATE MATERIALIZED VIEW v AS SELECT page, SUM(page) FROM user_events GROUP BY pge;"))
        #expect(typed.errors.map { String($0.message.prefix(20)) } == ["function sum(VARCHAR", "column 'pge' does no"])
    }

    /// Lines that do not parse still hide their secrets: the value after a password option and the user-info
    /// of a Redis URL, whatever the tokens around them. `SECRET` stands for every secret part of each line.
    @Test(arguments: [
        // The two lines of the fault drill: a doubled '=' and an unterminated string in the sink.
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url = = 'redis://SECRETuser:SECRETpw@host') FORMAT PLAIN ENCODE JSON;",
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://SECRETuser:SECRETpw@host) FORMAT PLAIN ENCODE JSON;",
        // '@' (and ':') inside the password: everything up to the last '@' is user-info.
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url = = 'rediss://SECRET:SECRET@SECRET@host:1') FORMAT PLAIN ENCODE JSON;",
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='REDIS://SECRET:SECRET@SECRET@host:1",
        // A bare URL, and one in a comment on a line with an error.
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url=redis://SECRETuser:SECRETpw@host:1) FORMAT PLAIN ENCODE JSON;",
        "SHOW TABLES; -- was redis://SECRETuser:SECRET'pw@host",
        // Kafka passwords: unterminated, unquoted, without '=', after a doubled '=', with a quote doubled inside.
        "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.sasl.password='SECRETpw) FORMAT PLAIN ENCODE JSON;",
        "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.sasl.password=SECRETpw) FORMAT PLAIN ENCODE JSON;",
        "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.sasl.password 'SECRETpw') FORMAT PLAIN ENCODE JSON;",
        "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.ssl.key.password = = 'SECRET''pw') FORMAT PLAIN ENCODE JSON;",
        "CREATE SOURCE s (a VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', 'properties.sasl.oauthbearer.client.secret'='SECRET' 'x') FORMAT PLAIN ENCODE JSON;",
    ])
    func unparsableLinesNeverShowTheirSecrets(_ line: String) throws {
        let result = compile(file(source, view, line))
        #expect(!result.errors.isEmpty)
        let output = (result.errors + result.warnings).map(\.description).joined(separator: "\n")
        #expect(!output.contains("SECRET"), "\(output)")
        // The offending line is shown, starred where the secret was.
        #expect(output.contains("\n    " + String(line.prefix(12))), "\(output)")
        #expect(output.contains("*"), "\(output)")
    }

    @Test func aSecretBeforeInvalidUTF8IsMaskedToo() throws {
        let bytes = Array("CREATE SINK k FROM v WITH (redis.url='redis://u:SECRETpw@h".utf8) + [0xFF] + Array("');".utf8)
        let result = PipelineCompiler.compile(bytes: bytes, file: "bad.sql", environment: [:])
        let error = try #require(result.errors.first)
        #expect(error.message.hasPrefix("the file is not valid UTF-8"))
        #expect(!error.description.contains("SECRET") && error.description.contains("redis://" + String(repeating: "*", count: 10) + "@h"))
    }

    @Test func thereAreAtLeastFortyBadInputs() {
        #expect(badInputs.filter { $0.occurrence > 0 }.count >= 40)
    }

    @Test func everyStatementWithAnErrorIsReportedInOneRun() {
        let result = compile(file(
            "CREATE SOURCE s (a BLOB) WITH (connector='kafka');",
            "CREATE MATERIALIZED VIEW v AS SELECT x FROM nowhere;",
            "SHOW TABLES;"))
        #expect(result.errors.map(\.line) == [1, 2, 3])
    }

    @Test func anEmptyFileIsAnError() {
        for text in ["", "   \n\n", "-- only a comment\n", ";;;"] {
            let result = compile(text)
            #expect(result.errors.first?.message.contains("holds no statements") == true, "\(text.debugDescription)")
        }
    }

    @Test func invalidUTF8IsReportedWithItsPosition() {
        let bytes = Array("SELECT 1;\nSELECT '".utf8) + [0xFF, 0xFE] + Array("';".utf8)
        let result = PipelineCompiler.compile(bytes: bytes, file: "bad.sql", environment: [:])
        #expect(result.errors.count == 1)
        #expect(result.errors.first?.headline.hasPrefix("bad.sql:2:9: error: the file is not valid UTF-8") == true)
    }

    @Test func theCaretSitsUnderTheToken() throws {
        let error = try #require(compile(file(exampleSource, "CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events GROUP BY event;")).errors.first)
        let lines = error.description.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3)
        #expect(lines[1] == "    CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM user_events GROUP BY event;")
        #expect(lines[2] == "    " + String(repeating: " ", count: 37) + "^~~~")
    }
}
