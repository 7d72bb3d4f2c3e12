import ArgumentParser

/// The `eddy` command line. Each subcommand lives in its own file; this root holds only the configuration.
@main
struct Eddy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eddy",
        abstract: "A durable, stateful stream processor: Kafka JSON events → SQL materialized views → Redis, exactly-once in effect.",
        discussion: """
            Describe a pipeline in SQL (RisingWave dialect): a Kafka source, a materialized view, a Redis sink.
            Check it with `eddy check FILE.sql`; run it with `eddy run FILE.sql`.
            For a local try-out, `eddy dev-broker` hosts a Kafka-protocol broker and `eddy produce` feeds it events.
            """,
        subcommands: [
            CheckCommand.self,
            RunCommand.self,
            DevBrokerCommand.self,
            ProduceCommand.self,
            QueryCommand.self,
            VerifyCommand.self,
            DrillCommand.self,
            BenchCommand.self,
        ]
    )
}
