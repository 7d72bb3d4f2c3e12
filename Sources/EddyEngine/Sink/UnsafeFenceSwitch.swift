/// A test-only switch that turns the sink's progress fence off (DESIGN §3): the marker read on connect and probe
/// is ignored, and every epoch and whole-view write is applied whatever Redis' marker says, as a sink without
/// the fence would. It exists so that `eddy drill
/// --unsafe-disable-fence` can show that the drill catches a broken exactly-once protocol (issue 11).
///
/// Honoured only by debug builds: a release build compiles the switch out, whatever the environment holds.
public enum UnsafeFenceSwitch {
    /// Set to `1` to disable the fence (debug builds only).
    public static let environmentVariable = "EDDY_UNSAFE_DISABLE_FENCE"

    /// Whether this build honours the switch.
    public static var isHonoured: Bool {
        #if DEBUG
        true
        #else
        false
        #endif
    }

    /// Written only by `arm(from:)`, before the pipeline's threads exist; read-only afterwards.
    nonisolated(unsafe) public private(set) static var isFenceDisabled = false

    /// Disables the fence when `EDDY_UNSAFE_DISABLE_FENCE=1` and the build honours it; returns whether it did.
    @discardableResult
    public static func arm(from environment: [String: String]) -> Bool {
        if isHonoured && environment[environmentVariable] == "1" { isFenceDisabled = true }
        return isFenceDisabled
    }
}
