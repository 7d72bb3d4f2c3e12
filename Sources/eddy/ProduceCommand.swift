import ArgumentParser

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Generate user-behaviour events into a Kafka topic."
    )

    func run() async throws {
        throw ValidationError("'eddy produce' is not built yet.")
    }
}
