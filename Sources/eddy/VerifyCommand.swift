import ArgumentParser
import EddyEngine
import Foundation

/// `eddy verify FILE.sql --state-dir DIR`: compares Redis with the last checkpoint once.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare Redis with the last checkpoint of a state directory, once.",
        discussion: """
            Renders every sink's view from the last checkpoint in the state directory exactly as the sink writes it \
            (the pipeline file gives the Redis URLs and templates; ${NAME} is replaced from the environment, as \
            `eddy run` does) and compares it key by key with Redis, read-only. Prints per sink the keys compared, \
            missing, different and unexpected (present in Redis though the row left the view), and the first \
            differing keys (names only).

            Exit status: 0 when Redis equals the checkpoint, 1 on a difference, 2 when no comparison can be made: \
            Redis unreachable, no state, a pipeline file that does not fit the state directory, or Redis at another \
            point of the stream than the checkpoint (the daemon is writing, or has not written its last checkpoint): \
            retry when the daemon is idle, or pass --wait to retry until they meet.
            """
    )

    @Argument(help: "The pipeline file the daemon runs.", completion: .file(extensions: ["sql"]))
    var file: String

    @Option(name: .customLong("state-dir"), help: "The state directory of the pipeline.")
    var stateDirectory: String = ".eddy/state"

    @Option(help: "Seconds to keep retrying while Redis is at another point of the stream than the checkpoint (or unreachable).")
    var wait: Double = 0

    @Option(name: .customLong("list"), help: "Differing keys listed per sink at most.")
    var listedKeys: Int = 10

    func validate() throws {
        guard wait >= 0, wait <= 86_400 else { throw ValidationError("--wait must be in [0, 86400] seconds") }
        guard listedKeys >= 0 else { throw ValidationError("--list must be at least 0") }
    }

    func run() throws {
        let logger = makeCLILogger(label: "eddy.verify")
        let pipeline = try loadPipeline(file)
        var settings = SinkVerifier.Settings()
        settings.listedKeys = listedKeys
        let verifier: SinkVerifier
        do {
            verifier = try SinkVerifier(pipeline: pipeline, stateDirectory: stateDirectory, settings: settings, logger: logger)
        } catch {
            printToStandardError("eddy verify: \(error.reason)")
            throw ExitCode(2)
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
        var results: [SinkVerifier.Result]
        while true {
            do {
                results = try verifier.verify()
            } catch {
                printToStandardError("eddy verify: \(error.reason)")
                throw ExitCode(2)
            }
            let retryable = results.contains { if case .cannotCompare(_, true) = $0.outcome { true } else { false } }
            let differs = results.contains { ($0.differingKeys ?? 0) > 0 }
            guard retryable, !differs, ContinuousClock.now < deadline else { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        for result in results { print(Self.describe(result), terminator: "") }
        if results.contains(where: { ($0.differingKeys ?? 0) > 0 }) {
            printToStandardError("eddy verify: Redis differs from the checkpoint in \(stateDirectory)")
            throw ExitCode(1)
        }
        if results.contains(where: { $0.differingKeys == nil }) {
            printToStandardError("eddy verify: Redis could not be compared with the checkpoint in \(stateDirectory)")
            throw ExitCode(2)
        }
    }

    /// A sink's lines: a header naming the sink, the Redis server (never the password) and the checkpoint,
    /// then what was found.
    static func describe(_ result: SinkVerifier.Result) -> String {
        var text = "sink \(result.sink) (view \(result.view), Redis \(result.redisAddress))"
        if let checkpoint = result.checkpoint { text += ", checkpoint epoch \(checkpoint.epoch)" }
        text += ":\n"
        switch result.outcome {
        case .cannotCompare(let reason, _):
            text += "  cannot compare: \(reason)\n"
        case .compared(let keys, let missing, let different, let unexpected, let first):
            let total = missing + different + unexpected
            guard total > 0 else { return text + "  \(keys) keys compared: all equal\n" }
            text += "  \(keys) keys compared: \(total) differ (\(missing) missing, \(different) different, \(unexpected) unexpected)\n"
            if !first.isEmpty {
                let named = first.map { "'\(String(decoding: $0.key.prefix(200), as: UTF8.self))' (\($0.difference))" }
                text += "  first differing keys: \(named.joined(separator: ", "))\(total > first.count ? ", …" : "")\n"
            }
        }
        return text
    }
}
