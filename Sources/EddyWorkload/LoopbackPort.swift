#if canImport(Glibc)
import Glibc
#endif

/// Free TCP ports on 127.0.0.1, for the servers tests, `eddy bench` and `eddy drill` start.
public enum LoopbackPort {
    /// A loopback TCP port that was free a moment ago (bind to port 0, read it back, close). Another
    /// process may take it before the caller binds it: servers started on it should retry with a new one.
    public static func unused() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        return bindAnyPort(descriptor)
    }

    /// Binds `descriptor` to 127.0.0.1 on a port the kernel picks, and returns that port.
    public static func bindAnyPort(_ descriptor: Int32) -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(descriptor, pointer, length)
                return getsockname(descriptor, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
