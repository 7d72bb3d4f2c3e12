import CHiredis
/// The hiredis version this build links against.
public var hiredisVersion: String { "\(HIREDIS_MAJOR).\(HIREDIS_MINOR).\(HIREDIS_PATCH)" }
