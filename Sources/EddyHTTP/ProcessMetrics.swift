#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The standard Prometheus `process_*` metrics, read on each scrape from `/proc/self` and `getrusage`,
/// so that nothing samples in the background. A value that cannot be read is left out, not faked.
struct ProcessMetrics: Sendable, Equatable {
    var residentMemoryBytes: Int?
    var virtualMemoryBytes: Int?
    var cpuSeconds: Double?
    var openFileDescriptors: Int?
    var maximumFileDescriptors: Int?
    var startTimeSeconds: Double?

    static func sample() -> ProcessMetrics {
        var metrics = ProcessMetrics()
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        // statm: size resident shared text lib data dt, in pages.
        if let statm = readProcFile("/proc/self/statm") {
            let fields = statm.split(separator: " ")
            if fields.count >= 2, let size = Int(fields[0]), let resident = Int(fields[1]), pageSize > 0 {
                metrics.virtualMemoryBytes = size * pageSize
                metrics.residentMemoryBytes = resident * pageSize
            }
        }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            metrics.cpuSeconds = usage.ru_utime.seconds + usage.ru_stime.seconds
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            metrics.openFileDescriptors = entries.count
        }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            metrics.maximumFileDescriptors = Int(clamping: limit.rlim_cur)
        }
        metrics.startTimeSeconds = processStartTime()
        return metrics
    }

    /// Appends the metrics in Prometheus text format, each family with HELP and TYPE.
    func emit(into buffer: inout [UInt8]) {
        func family(_ name: String, _ type: String, _ help: String, _ value: String?) {
            guard let value else { return }
            buffer.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n".utf8)
        }
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentMemoryBytes.map(String.init))
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", virtualMemoryBytes.map(String.init))
        family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpuSeconds.map { "\($0)" })
        family("process_open_fds", "gauge", "Number of open file descriptors.", openFileDescriptors.map(String.init))
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", maximumFileDescriptors.map(String.init))
        family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", startTimeSeconds.map { "\($0)" })
    }

    /// Boot time (`btime` in /proc/stat) plus the process's start in clock ticks after boot (field 22 of
    /// /proc/self/stat, counted after the parenthesised command name, which may itself hold spaces).
    private static func processStartTime() -> Double? {
        guard let stat = readProcFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")" come field 3 (state) onwards, so field 22 is at index 19.
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        guard let system = readProcFile("/proc/stat"),
            let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let bootTime = Double(line.dropFirst("btime ".count))
        else { return nil }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticksPerSecond > 0 else { return nil }
        return bootTime + ticks / ticksPerSecond
    }

    private static func readProcFile(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        return String(String(decoding: data, as: UTF8.self).drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

extension timeval {
    fileprivate var seconds: Double { Double(tv_sec) + Double(tv_usec) / 1_000_000 }
}
