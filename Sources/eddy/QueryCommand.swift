import ArgumentParser
import EddyEngine
import EddySQL
import EddyState
import Foundation

/// `eddy query`: a view from the last checkpoint of a state directory, read while the daemon runs.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print a view from the last checkpoint of a state directory.",
        discussion: """
            Opens the state directory read-only (it works while `eddy run` writes to it) and answers one SELECT over \
            a materialized view, e.g. eddy query --state-dir .eddy/state "SELECT * FROM events_statisics_mv ORDER BY count DESC". \
            The views' definitions are recorded in the state directory, so no pipeline file is needed.
            """
    )

    @Option(name: .customLong("state-dir"), help: "The state directory of the pipeline.")
    var stateDirectory: String = ".eddy/state"

    @Option(help: "Output format: table, json or csv.")
    var format: String = "table"

    @Argument(help: "SELECT ... FROM view [WHERE ...] [ORDER BY ...] [LIMIT n]")
    var query: String

    func validate() throws {
        guard ResultTable.Format(rawValue: format) != nil else { throw ValidationError("--format must be table, json or csv") }
    }

    func run() throws {
        let store: CheckpointStore
        do {
            store = try CheckpointStore.open(directory: stateDirectory, options: .init(readOnly: true))
        } catch {
            // The whole description: its code (`corrupt_state`, `no_checkpoint`, …) is what scripts match.
            throw QueryError(reason: error.description)
        }
        let checkpoint = try store.loadCheckpoint()
        var views: [View] = []
        var pipelines: [String: Pipeline] = [:]
        for (name, definition) in checkpoint.viewDefinitions.sorted(by: { $0.key < $1.key }) {
            let compiled = PipelineCompiler.compile(text: definition, file: "\(stateDirectory) (view \(name))", environment: ProcessInfo.processInfo.environment)
            guard let pipeline = compiled.pipeline, let view = pipeline.view(named: name) else {
                throw QueryError(reason: "the definition of view '\(name)' recorded in \(stateDirectory) does not compile: \(compiled.errors.first?.message ?? "unknown error")")
            }
            views.append(view)
            pipelines[name] = pipeline
        }
        guard !views.isEmpty else {
            throw QueryError(reason: "\(stateDirectory) records no views yet (has `eddy run` checkpointed there?)")
        }
        let (compiled, errors) = PipelineCompiler.compileQuery(query, views: views)
        guard let compiled else {
            for error in errors { printToStandardError(error.description) }
            throw ExitCode.failure
        }
        // The view's definition compiles with the views it reads: their graph reads it from the checkpoint.
        let graph = try DataflowGraph(pipeline: pipelines[compiled.viewName]!)
        let rows = compiled.run(on: try graph.rows(ofView: graph.index(ofView: compiled.viewName)!, in: store))
        print(ResultTable(columns: compiled.columns.map(\.name), rows: rows).rendered(as: ResultTable.Format(rawValue: format)!), terminator: "")
    }
}

/// A failure of `eddy query`, printed as one line.
struct QueryError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "eddy query: \(reason)" }
}
