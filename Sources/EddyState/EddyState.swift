import CLMDB
/// The LMDB version this build links against.
public var lmdbVersion: String { String(cString: mdb_version(nil, nil, nil)) }
