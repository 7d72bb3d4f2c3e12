import ArgumentParser

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print a view from the last checkpoint of a state directory."
    )

    func run() async throws {
        throw ValidationError("'eddy query' is not built yet.")
    }
}
