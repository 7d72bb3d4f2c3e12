import ArgumentParser

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline file as a daemon until SIGTERM/SIGINT."
    )

    func run() async throws {
        throw ValidationError("'eddy run' is not built yet.")
    }
}
