#if canImport(Glibc)
import Glibc
#endif
// LoopbackPort lives in EddyWorkload (eddy bench and drill pick ports too); tests keep finding it here.
@_exported import enum EddyWorkload.LoopbackPort

/// A TCP listener on a loopback port that accepts connections (in the kernel) and never answers: a server
/// that hangs, for timeout tests.
public final class SilentListener {
    public let port: Int
    private let descriptor: Int32

    public init() {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        port = LoopbackPort.bindAnyPort(descriptor)
        listen(descriptor, 16)
    }

    deinit { close(descriptor) }
}
