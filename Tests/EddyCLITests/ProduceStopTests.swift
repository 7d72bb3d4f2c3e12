#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyTestSupport
import Foundation
import Testing

private struct Manifest: Decodable {
    let total: Int
    let events: [String: Int]
    let failed: Int
    let unacknowledged: Int
}

/// `eddy produce` and `eddy dev-broker` stop promptly when asked, and when the process that started them is gone.
@Suite struct ProduceStopTests {
    @Test("SIGTERM while the broker does not answer: exit within 3 s (not librdkafka's 30 s), reporting the unacknowledged messages; the manifest counts only acknowledged ones")
    func sigtermGivesUpWhatIsUnacknowledged() throws {
        let broker = try KafkaTestBroker.start(topics: ["flood": 2])
        let directory = try ScratchDirectory(prefix: "eddy-produce-stop")
        defer { directory.remove() }
        let manifestPath = directory.path + "/m.json"
        let producer = try EddyProcess.launch(
            ["produce", "--brokers", broker.bootstrapServers, "--topic", "flood", "--rate", "0", "--count", "50000000", "--manifest", manifestPath],
            outputDirectory: directory.path, name: "produce")
        defer { if producer.isRunning { producer.kill() } }

        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "flood")
        configuration.startupMode = .earliest
        let consumer = try KafkaConsumer.make(configuration: configuration)
        defer { consumer.close() }
        func held() throws -> Int64 { try (0..<2).map { try consumer.watermarks(partition: $0).high }.reduce(0, +) }
        // Well under way, then the broker stops answering: what the producer sends from now on stays
        // unacknowledged. It surely sends some: it runs 50 ms more (at --rate 0, thousands of messages).
        #expect(try eventually(timeout: .seconds(20), every: .milliseconds(50)) { try held() >= 20_000 })
        try broker.broker.setBrokerDown(1)
        let ticksAtDown = try #require(ProcessEntry(pid: producer.pid)).cpuTicks
        let ticksPerSecond = UInt64(sysconf(Int32(_SC_CLK_TCK)))
        #expect(eventually(timeout: .seconds(10)) { (ProcessEntry(pid: producer.pid)?.cpuTicks ?? 0) >= ticksAtDown + ticksPerSecond / 20 })

        let stopped = ContinuousClock.now
        producer.send(SIGTERM)
        let status = producer.waitForExit(timeout: .seconds(40))
        let took = ContinuousClock.now - stopped
        #expect(took < .seconds(3), "exited \(took) after SIGTERM")
        #expect(status == 1, "messages were given up: \(producer.standardError)")
        let output = producer.standardError

        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        #expect(manifest.unacknowledged > 0 && manifest.failed == 0, "\(output)")
        #expect(manifest.total >= 20_000 && manifest.events.values.reduce(0, +) == manifest.total)
        let lines = output.split(separator: "\n")
        #expect(lines.contains { $0.contains("\(manifest.total) message(s) acknowledged") && $0.contains("\(manifest.unacknowledged) unacknowledged") }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("Error: \(manifest.unacknowledged) message(s) still unacknowledged") }, "\(output)")
        // Every acknowledged message is in the topic; besides them at most those given up in flight.
        try broker.broker.setBrokerUp(1)
        var inTopic: Int64 = -1
        #expect(eventually(timeout: .seconds(10), every: .milliseconds(50)) { inTopic = (try? held()) ?? -1; return inTopic >= manifest.total })
        #expect(inTopic <= Int64(manifest.total + manifest.unacknowledged), "\(inTopic) in the topic")
    }

    @Test("--exit-with-parent: a dev broker whose parent is killed outright stops by itself")
    func devBrokerStopsWhenItsParentIsKilled() throws {
        let directory = try ScratchDirectory(prefix: "eddy-parent")
        defer { directory.remove() }
        // A shell that starts the broker in the background and then waits, as ops/run.sh does.
        let shell = try EddyProcess.launch(
            ["-c", #""$0" dev-broker --topic t --exit-with-parent $$ >"$1/out" 2>"$1/err" & echo "$!" >"$1/pid"; wait"#,
             EddyProcess.executable.path, directory.path],
            executable: URL(fileURLWithPath: "/bin/bash"), outputDirectory: directory.path, name: "shell")
        defer { if shell.isRunning { shell.kill() } }
        func read(_ name: String) -> String { (try? String(contentsOfFile: directory.path + "/" + name, encoding: .utf8)) ?? "" }
        #expect(eventually(timeout: .seconds(20)) { read("out").hasPrefix("bootstrap=") })
        let pid = try #require(Int32(read("pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        let broker = try #require(ProcessEntry(pid: pid))
        #expect(broker.isRunning && broker.parent == shell.pid)

        shell.kill()
        let stopped = eventually(timeout: .seconds(3)) { !broker.isRunning }
        #expect(stopped, "eddy dev-broker \(pid) still runs: \(read("err"))")
        if !stopped { kill(pid, SIGKILL) }
        #expect(read("err").contains("parent process \(shell.pid) exited; stopping"))
        #expect(read("err").contains("eddy dev-broker: stopped"))
    }

    @Test("--exit-with-parent naming a process that is not the parent (it died before the watch began): stop at once")
    func produceWhoseParentIsAlreadyGoneStopsAtOnce() throws {
        let broker = try DevBrokerProcess(topics: ["t"])
        defer { _ = broker.stop() }
        let started = ContinuousClock.now
        let run = try EddyProcess.run(
            ["produce", "--brokers", broker.bootstrapServers, "--topic", "t", "--rate", "10", "--exit-with-parent", String(Int32.max)],
            timeout: .seconds(20))
        #expect(run.status == 0, "\(run.standardError)")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(run.standardError.contains("parent process \(Int32.max) exited; stopping"))
    }
}
