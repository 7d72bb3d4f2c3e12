@testable import EddySQL

/// The example pipeline's source, used as the prefix of most test files.
let exampleSource = """
    CREATE SOURCE IF NOT EXISTS user_events ( event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR ) WITH ( connector='kafka', topic='test', properties.bootstrap.server='127.0.0.1:9092', scan.startup.mode='earliest' ) FORMAT PLAIN ENCODE JSON;
    """

let exampleView = "CREATE MATERIALIZED VIEW IF NOT EXISTS events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;"

let exampleSink = """
    CREATE SINK IF NOT EXISTS redis_sink FROM events_statisics_mv WITH ( connector = 'redis', primary_key = 'event', redis.url= 'redis://127.0.0.1:6379' ) FORMAT PLAIN ENCODE TEMPLATE ( force_append_only='true', key_format = '{event}', value_format = '{count}' );
    """

func compile(_ text: String, environment: [String: String] = [:]) -> PipelineCompiler.Result {
    PipelineCompiler.compile(text: text, file: "test.sql", environment: environment)
}

/// Compiles and returns the pipeline, or nil (the test then fails on the errors printed by the caller).
func compiledPipeline(_ text: String, environment: [String: String] = [:]) -> Pipeline? {
    compile(text, environment: environment).pipeline
}
