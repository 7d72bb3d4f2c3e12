/// Where the HTTP server listens, parsed from `--http`: `host:port`, `[v6-address]:port`, or `:port`
/// (loopback). The default is loopback only; binding beyond it (`0.0.0.0:9187`, `[::]:9187`, a LAN
/// address) happens only when the user writes such an address.
public struct HTTPBindAddress: Sendable, Equatable, CustomStringConvertible {
    /// The default of `eddy run --http`.
    public static let defaultAddress = HTTPBindAddress(host: "127.0.0.1", port: 9187)

    /// A host name or a literal address, IPv6 without brackets.
    public var host: String
    /// 0 asks the system for a free port (tests); the bound one is `EddyHTTPServer.boundPort`.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; throws `EddyHTTPError.Code.invalidBindAddress` naming what is wrong.
    public init(parsing text: String) throws {
        func invalid(_ why: String) -> EddyHTTPError {
            EddyHTTPError(.invalidBindAddress, reason: "invalid HTTP address '\(text)': \(why) (expected HOST:PORT, [IPV6]:PORT or :PORT)")
        }
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { throw invalid("it is empty") }
        let hostPart: Substring
        let portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw invalid("'[' without a closing ']'") }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("no ':PORT' after ']'") }
            portPart = rest.dropFirst()
            guard !hostPart.isEmpty, hostPart.contains(":") else { throw invalid("'[...]' must hold an IPv6 address") }
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw invalid("no port") }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
            if hostPart.contains(":") { throw invalid("an IPv6 address must be in brackets, as in [::1]:9187") }
        }
        guard !portPart.isEmpty else { throw invalid("no port after ':'") }
        guard portPart.allSatisfy(\.isASCIIDigit), let port = Int(portPart), port <= 65_535 else {
            throw invalid("port '\(portPart)' is not a number from 0 to 65535")
        }
        if hostPart.contains(where: { $0 == " " || $0 == "/" || $0 == "[" || $0 == "]" }) {
            throw invalid("host '\(hostPart)' is not a host name or an IP address")
        }
        self.init(host: hostPart.isEmpty ? "127.0.0.1" : String(hostPart), port: port)
    }

    /// Whether only this machine can connect: `localhost`, `127.0.0.0/8` or `::1`.
    public var isLoopback: Bool {
        let lowered = host.lowercased()
        return lowered == "localhost" || lowered == "::1" || lowered.hasPrefix("127.")
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map(index(after:)) ?? start
        return self[start..<end]
    }
}
