#if canImport(Glibc)
import Glibc
#endif
import EddyTestSupport
import Foundation
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let bash = URL(fileURLWithPath: "/bin/bash")

/// One process as /proc shows it; its start time tells it from a later process that reuses the pid.
struct ProcessEntry: Hashable, CustomStringConvertible {
    let pid: Int32
    let parent: Int32
    let name: String
    let startTime: UInt64
    let isZombie: Bool
    /// CPU time used so far (user and system), in clock ticks.
    let cpuTicks: UInt64

    init?(pid: Int32) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) ": state, ppid, ... starttime is the 20th field.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let parent = Int32(fields[1]), let startTime = UInt64(fields[19]),
            let userTicks = UInt64(fields[11]), let systemTicks = UInt64(fields[12])
        else { return nil }
        cpuTicks = userTicks + systemTicks
        self.pid = pid
        self.parent = parent
        name = String(stat[stat.index(after: open)..<close])
        self.startTime = startTime
        isZombie = fields[0] == "Z"
    }

    /// Still this process, and not a zombie.
    var isRunning: Bool {
        guard let now = ProcessEntry(pid: pid) else { return false }
        return now.startTime == startTime && !now.isZombie
    }

    var description: String { "\(name)[\(pid)]" }

    /// Every running descendant of `root` (children, theirs, ...): what `root` started, whatever session or
    /// process group it put them in.
    static func descendants(of root: Int32) -> [ProcessEntry] {
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.compactMap { ProcessEntry(pid: $0) }
        var found: [ProcessEntry] = []
        var parents: Set<Int32> = [root]
        while true {
            let next = all.filter { parents.contains($0.parent) && !found.contains($0) && !$0.isZombie }
            if next.isEmpty { return found }
            found += next
            parents.formUnion(next.map(\.pid))
        }
    }
}

/// `bash ops/run.sh` on the already built binary (EDDY_BIN: nothing installed nor built), its logs and state in
/// a scratch directory of its own (EDDY_DEMO_DIR), so that a user's demo is neither touched nor in the way.
private final class Demo {
    let directory: ScratchDirectory
    let script: EddyProcess
    /// What `runningProcesses` found: killed by `remove` if the script failed to stop it.
    private var started: [ProcessEntry] = []

    /// The script run by bash as the user would (`bash ops/run.sh`), or piped into a reader that passes on
    /// three lines and ends (`| head -n 3`, unbuffered): then `script` is the shell running the pipeline.
    init(pipedIntoHead: Bool = false) throws {
        directory = try ScratchDirectory(prefix: "eddy-demo")
        let path = packageRoot.appendingPathComponent("ops/run.sh").path
        script = try EddyProcess.launch(
            pipedIntoHead ? ["-c", #"bash "$0" | for n in 1 2 3; do IFS= read -r line && printf '%s\n' "$line"; done"#, path] : [path], executable: bash,
            environment: [
                "EDDY_BIN": EddyProcess.executable.path, "EDDY_DEMO_DIR": directory.path + "/demo",
                "EDDY_DEMO_RATE": "200", "EDDY_DEMO_HTTP_PORT": String(LoopbackPort.unused()),
            ],
            outputDirectory: directory.path, name: "run.sh")
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: directory.path + "/demo/\(name)", encoding: .utf8)) ?? "" }

    /// Waits until a live-counts line shows a count above zero (the whole pipeline works; with `anyCount`,
    /// any live-counts line), then returns every process the script has started so far, having checked that
    /// the four programs are among them.
    func runningProcesses(under root: Int32, anyCount: Bool = false) throws -> [ProcessEntry] {
        let counted = eventually(timeout: .seconds(40), every: .milliseconds(50)) {
            script.standardOutput.split(separator: "\n").contains { $0.contains("total=") && (anyCount || !$0.contains("total=0 ")) }
        }
        guard counted else {
            throw ProcessError("no live count from ops/run.sh:\n\(script.standardError)\n\(script.standardOutput)\n\(log("run.log"))")
        }
        let processes = ProcessEntry.descendants(of: root)
        started = processes
        let names = processes.map(\.name)
        #expect(names.filter { $0 == "eddy" }.count == 3, "dev-broker, produce and run: \(processes)")
        #expect(names.contains("redis-server"), "\(processes)")
        return processes
    }

    /// Asserts that none of `processes` runs `within` from now.
    func expectAllGone(_ processes: [ProcessEntry], within timeout: Duration) {
        let gone = eventually(timeout: timeout, every: .milliseconds(50)) { !processes.contains { $0.isRunning } }
        #expect(gone, "still running: \(processes.filter(\.isRunning)); watchdog: \(log("watchdog.log")); script: \(script.standardError)")
    }

    /// Ends the test leaving nothing behind even when the script failed: SIGKILL to the script (its
    /// watchdog then stops the children), and to any child still running 10 s later.
    func remove() {
        if script.isRunning { script.kill() }
        if !eventually(timeout: .seconds(10), every: .milliseconds(50), { !started.contains { $0.isRunning } }) {
            for process in started where process.isRunning { kill(process.pid, SIGKILL) }
        }
        directory.remove()
    }
}

/// ops/run.sh leaves nothing behind however it ends (issue 14, point 7).
@Suite(.serialized) struct DemoScriptTests {
    @Test("SIGHUP (the terminal closed): the script stops every child in order and exits")
    func hangUpStopsEveryChild() throws {
        let demo = try Demo()
        defer { demo.remove() }
        let processes = try demo.runningProcesses(under: demo.script.pid)
        demo.script.send(SIGHUP)
        demo.expectAllGone(processes, within: .seconds(10))
        #expect(demo.script.waitForExit(timeout: .seconds(2)) == 0)
        #expect(demo.script.standardError.contains("ops/run.sh: stopped; logs and state are in"))
        #expect(!demo.script.standardError.contains("killing"), "every child stopped within its grace: \(demo.script.standardError)")
        #expect(demo.log("watchdog.log").isEmpty, "the script stopped them itself")
        // The daemon was asked first, while Kafka and Redis still ran: it stopped cleanly.
        #expect(!demo.script.standardError.contains("eddy run exited with status"), "\(demo.log("run.log"))")
    }

    @Test("SIGKILL of the script: the watchdog and --exit-with-parent stop every child")
    func killedScriptLeavesNothing() throws {
        let demo = try Demo()
        defer { demo.remove() }
        let processes = try demo.runningProcesses(under: demo.script.pid)
        #expect(processes.contains { $0.name == "bash" && $0.parent == demo.script.pid }, "the watchdog runs: \(processes)")
        demo.script.kill()
        demo.expectAllGone(processes, within: .seconds(10))
        #expect(demo.log("watchdog.log").contains("stopping eddy run"))
        // Each stopped, by the watchdog's SIGTERM or by its own --exit-with-parent check, whichever came first
        // (ProduceStopTests covers --exit-with-parent alone).
        for log in ["dev-broker.log", "produce.log"] {
            let text = demo.log(log)
            #expect(text.contains("parent process \(demo.script.pid) exited; stopping") || text.contains("stopped") || text.contains("acknowledged by"), "\(log): \(text)")
        }
    }

    @Test("A closed stdout (`| head`): the next live-counts line fails and the script stops every child")
    func closedOutputStopsEveryChild() throws {
        // The reader ends after the third line; the script learns it when it writes the fourth.
        let demo = try Demo(pipedIntoHead: true)
        defer { demo.remove() }
        let processes = try demo.runningProcesses(under: demo.script.pid, anyCount: true)
        demo.expectAllGone(processes, within: .seconds(15))
        #expect(demo.script.waitForExit(timeout: .seconds(2)) == 0)
        #expect(demo.script.standardError.contains("ops/run.sh: stopped; logs and state are in"))
        #expect(!demo.script.standardError.contains("killing"), "\(demo.script.standardError)")
        #expect(demo.log("watchdog.log").isEmpty, "the script stopped them itself")
    }
}
