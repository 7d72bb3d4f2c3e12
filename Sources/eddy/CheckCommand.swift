import ArgumentParser

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Parse and bind a pipeline file; print its plan or its errors."
    )

    func run() async throws {
        throw ValidationError("'eddy check' is not built yet.")
    }
}
