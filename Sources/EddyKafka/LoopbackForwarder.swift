#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Listens on 127.0.0.1:`port` and relays every connection to 127.0.0.1:`targetPort`, byte for byte.
///
/// Why: librdkafka 2.0.2's mock cluster only listens on ephemeral ports. A client bootstrapping through
/// this port learns the mock's advertised broker addresses and then talks to them directly, so only
/// bootstrap connections pass here. Owns the listening socket (closed by `stop`/`deinit`); each relay runs
/// on its own thread and ends when either side closes.
final class LoopbackForwarder: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let stopped = Mutex(false)

    private init(listener: Int32, port: Int, targetPort: Int) {
        self.listener = listener
        self.port = port
        self.targetPort = targetPort
    }

    static func make(port: Int, targetPort: Int) throws -> LoopbackForwarder {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw socketError("socket", port: port) }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = loopbackAddress(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            let error = socketError("listen on 127.0.0.1:\(port)", port: port)
            close(listener)
            throw error
        }
        let forwarder = LoopbackForwarder(listener: listener, port: port, targetPort: targetPort)
        Thread.detachNewThread { forwarder.acceptLoop() }
        return forwarder
    }

    func stop() {
        let wasStopped = stopped.withLock { value in
            defer { value = true }
            return value
        }
        if !wasStopped {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // stopped
            }
            let target = targetPort
            Thread.detachNewThread { Self.relay(client: client, targetPort: target) }
        }
    }

    private static func relay(client: Int32, targetPort: Int) {
        defer { close(client) }
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard upstream >= 0 else { return }
        defer { close(upstream) }
        var address = loopbackAddress(port: targetPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return }
        var descriptors = [
            pollfd(fd: client, events: Int16(POLLIN), revents: 0),
            pollfd(fd: upstream, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while poll(&descriptors, 2, -1) > 0 {
            for (index, descriptor) in descriptors.enumerated() where descriptor.revents != 0 {
                let destination = index == 0 ? upstream : client
                let readCount = buffer.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
                guard readCount > 0 else { return }
                var written = 0
                while written < readCount {
                    let result = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + written, readCount - written) }
                    guard result > 0 else { return }
                    written += result
                }
            }
        }
    }

    private static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        return address
    }

    private static func socketError(_ what: String, port: Int) -> KafkaError {
        KafkaError(code: .mockCluster, rdKafkaCode: nil, reason: "\(what): \(String(cString: strerror(errno)))")
    }
}
