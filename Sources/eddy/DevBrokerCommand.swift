import ArgumentParser

struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Host a Kafka-protocol broker (librdkafka's mock cluster) on 127.0.0.1."
    )

    func run() async throws {
        throw ValidationError("'eddy dev-broker' is not built yet.")
    }
}
