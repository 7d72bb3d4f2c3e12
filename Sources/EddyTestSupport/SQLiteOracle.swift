// The oracle lives in EddyWorkload (eddy drill uses it too); tests keep finding it through the test support.
@_exported import enum EddyWorkload.SQLiteOracle
