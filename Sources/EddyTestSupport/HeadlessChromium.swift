import Foundation

/// Debian's `chromium` driven headless from tests: load a page, let it run for a budget of virtual time
/// (timers fire as fast as the page allows; network fetches are waited for), then dump the DOM or take a
/// screenshot. Each call is its own browser process with its own throw-away profile, so parallel tests
/// share nothing.
public struct HeadlessChromium: Sendable {
    /// The browser executable.
    public let executable: URL

    /// Looks for `$EDDY_CHROMIUM`, then `chromium`, `chromium-browser`, `google-chrome` on `PATH`;
    /// nil when none is installed (`ops/install-deps.sh` installs Debian's `chromium`).
    public static func find() -> HeadlessChromium? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["EDDY_CHROMIUM"], FileManager.default.isExecutableFile(atPath: path) {
            return HeadlessChromium(executable: URL(fileURLWithPath: path))
        }
        let directories = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories {
                let path = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return HeadlessChromium(executable: URL(fileURLWithPath: path)) }
            }
        }
        return nil
    }

    /// What a page looked like after it ran.
    public struct PageDump: Sendable {
        /// The serialized DOM.
        public let dom: String
        /// What the page wrote to its console, uncaught exceptions included ("Uncaught TypeError: ...").
        public let consoleMessages: [String]
    }

    /// The serialized DOM of `url` after `virtualTime` of page time, and its console output. The browser
    /// runs and is waited for on a thread of its own, never on the cooperative pool.
    public func dumpDOM(of url: String, virtualTime: Duration = .seconds(5), windowSize: WindowSize = WindowSize()) async throws -> PageDump {
        let (output, errors) = try await onOwnThread {
            try run(["--dump-dom", "--enable-logging=stderr", "--v=0"], url: url, virtualTime: virtualTime, windowSize: windowSize)
        }
        // Console lines look like: [pid:tid:date:INFO:CONSOLE:12] "message", source: http://... (12)
        let console = String(decoding: errors, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
            guard line.contains(":CONSOLE"), let open = line.firstIndex(of: "\""), let close = line.range(of: "\", source:", options: .backwards)
            else { return nil }
            return String(line[line.index(after: open)..<close.lowerBound])
        }
        return PageDump(dom: String(decoding: output, as: UTF8.self), consoleMessages: console)
    }

    /// A PNG screenshot of the viewport of `url` after `virtualTime` of page time, written to `file`.
    public func screenshot(of url: String, to file: URL, virtualTime: Duration = .seconds(5), windowSize: WindowSize = WindowSize()) async throws {
        try? FileManager.default.removeItem(at: file)
        _ = try await onOwnThread { try run(["--screenshot=\(file.path)", "--hide-scrollbars"], url: url, virtualTime: virtualTime, windowSize: windowSize) }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw HeadlessChromiumError(reason: "chromium exited without writing \(file.path)")
        }
    }

    /// Takes a screenshot of `url` and one of a blank page of the same size (`blank`), and returns both
    /// summaries: a page that drew something compresses to many times the blank one's image data.
    public func screenshotBesideBlank(
        of url: String, to file: URL, blank: URL, virtualTime: Duration, windowSize: WindowSize = WindowSize()
    ) async throws -> (page: PNGSummary, blank: PNGSummary) {
        try await screenshot(of: url, to: file, virtualTime: virtualTime, windowSize: windowSize)
        try await screenshot(of: "data:text/html,<html><body></body></html>", to: blank, virtualTime: .seconds(1), windowSize: windowSize)
        return (try PNGSummary(Data(contentsOf: file)), try PNGSummary(Data(contentsOf: blank)))
    }

    /// The browser window (and so the screenshot) in CSS pixels.
    public struct WindowSize: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public init(width: Int = 1440, height: Int = 1000) {
            self.width = width
            self.height = height
        }
    }

    private func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result(catching: work)) }.start()
        }
    }

    /// Runs the browser to completion; returns its stdout and stderr.
    /// Killed after 90 s plus the virtual-time budget: page time stands still while fetches are in flight, so
    /// a page polling a slow server can take as long as its budget in real time.
    private func run(_ action: [String], url: String, virtualTime: Duration, windowSize: WindowSize) throws -> (Data, Data) {
        let timeout = Duration.seconds(90) + virtualTime
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = executable
        let milliseconds = virtualTime.components.seconds * 1000 + virtualTime.components.attoseconds / 1_000_000_000_000_000
        process.arguments = [
            // --no-sandbox: tests run as root here, where Chromium's sandbox refuses to start.
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            "--user-data-dir=\(profile.path)",
            "--window-size=\(windowSize.width),\(windowSize.height)",
            "--virtual-time-budget=\(milliseconds)",
        ] + action + [url]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(timeout.components.seconds)), execute: watchdog)
        // Drain stderr on another thread so that a chatty browser never blocks on a full pipe.
        let errorText = LockedData()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorText.set(errors.fileHandleForReading.readDataToEndOfFile())
            drained.signal()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        watchdog.cancel()
        guard process.terminationStatus == 0 else {
            // Chromium prints harmless D-Bus complaints on stderr; show only the tail.
            let tail = String(decoding: errorText.value, as: UTF8.self).split(separator: "\n").suffix(8).joined(separator: "\n")
            throw HeadlessChromiumError(reason: "chromium exited with status \(process.terminationStatus) for \(url):\n\(tail)")
        }
        return (data, errorText.value)
    }
}

/// Chromium failed to load or render a page.
public struct HeadlessChromiumError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    var value: Data { lock.withLock { data } }
}

/// What a PNG file's header says, and enough of its structure to tell a real picture from an empty one.
public struct PNGSummary: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Compressed image bytes (all IDAT chunks): a flat page compresses to almost nothing.
    public let imageDataBytes: Int

    /// Reads the signature, IHDR and chunk list; throws on anything that is not a well-formed PNG.
    public init(_ data: Data) throws {
        let bytes = [UInt8](data)
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count > 33, Array(bytes[0..<8]) == signature else { throw HeadlessChromiumError(reason: "not a PNG (bad signature)") }
        func uint32(_ offset: Int) -> Int { bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        var offset = 8
        var width = 0
        var height = 0
        var idat = 0
        var sawEnd = false
        while offset + 8 <= bytes.count {
            let length = uint32(offset)
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            guard offset + 12 + length <= bytes.count else { throw HeadlessChromiumError(reason: "PNG chunk \(type) runs past the end") }
            switch type {
            case "IHDR":
                width = uint32(offset + 8)
                height = uint32(offset + 12)
            case "IDAT": idat += length
            case "IEND": sawEnd = true
            default: break
            }
            offset += 12 + length
            if sawEnd { break }
        }
        guard width > 0, height > 0, sawEnd else { throw HeadlessChromiumError(reason: "PNG without IHDR or IEND") }
        self.width = width
        self.height = height
        self.imageDataBytes = idat
    }
}
