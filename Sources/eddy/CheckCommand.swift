import ArgumentParser
import EddyEngine
import EddySQL
import Foundation

/// `eddy check FILE.sql`: parse and bind a pipeline file; print its plan, or its errors with line:column.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Parse and bind a pipeline file; print its plan or its errors.",
        discussion: """
            Prints the bound pipeline — sources with their columns and Kafka settings, materialized views with their \
            grouping and aggregates, sinks with their Redis keys and templates, queries — with passwords masked, then \
            the dataflow `eddy run` would execute (which operator runs each view, where, and what it reads), and \
            exits 0. On errors, prints each as FILE:LINE:COLUMN: error: MESSAGE with the line and a caret, and exits 1.

            ${NAME} inside quoted strings is replaced from the environment, as `eddy run` does.
            """
    )

    @Argument(help: "The pipeline file (RisingWave-dialect SQL).", completion: .file(extensions: ["sql"]))
    var file: String

    func run() throws {
        let pipeline = try loadPipeline(file)
        print(pipeline.planDescription)
        do {
            print(try DataflowGraph(pipeline: pipeline).description, terminator: "")
        } catch {
            // Valid SQL that the engine does not run yet: `eddy run` refuses it with the same reason.
            print("dataflow: not runnable yet: \(error.reason)")
        }
    }
}

/// Reads and compiles a pipeline file; prints warnings to stderr; on errors prints them all and exits 1.
func loadPipeline(_ path: String) throws -> Pipeline {
    guard let data = FileManager.default.contents(atPath: path) else {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        throw ValidationError(exists ? (isDirectory.boolValue ? "\(path) is a directory, not a pipeline file" : "cannot read \(path): permission denied") : "no such file: \(path)")
    }
    let result = PipelineCompiler.compile(bytes: Array(data), file: path, environment: ProcessInfo.processInfo.environment)
    for warning in result.warnings { printToStandardError(warning.description) }
    guard let pipeline = result.pipeline else {
        for error in result.errors { printToStandardError(error.description) }
        printToStandardError("\(path): \(result.errors.count) error\(result.errors.count == 1 ? "" : "s")")
        throw ExitCode.failure
    }
    return pipeline
}
