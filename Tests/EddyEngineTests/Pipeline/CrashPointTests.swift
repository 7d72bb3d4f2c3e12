import Testing

@testable import EddyEngine

/// `EDDY_CRASH_POINT`: read without arming (arming in this process would kill it at the point).
@Suite struct CrashPointTests {
    private func armed(_ value: String?) throws -> (point: CrashPoint, nth: Int)? {
        try CrashPoint.armed(by: value.map { [CrashPoint.environmentVariable: $0] } ?? [:])
    }

    @Test func everyPointIsNamedByItsNameWithAnOptionalCount() throws {
        for point in CrashPoint.allCases {
            #expect(try armed(point.name)?.point == point)
            #expect(try armed(point.name)?.nth == 1)
            #expect(try armed("\(point.name):17")?.nth == 17)
        }
        #expect(Set(CrashPoint.allCases.map(\.name)).count == CrashPoint.allCases.count)
    }

    @Test func unsetOrEmptyArmsNothing() throws {
        #expect(try armed(nil) == nil)
        #expect(try armed("") == nil)
    }

    @Test(arguments: ["after-comit", "after-commit:0", "after-commit:-1", "after-commit:x", "after-commit:", ":3"])
    func aBadValueIsRefusedNamingTheVariableAndTheNames(value: String) {
        #expect {
            try armed(value)
        } throws: { error in
            let error = error as! EngineError
            return error.code == .invalidArgument && error.reason.contains("EDDY_CRASH_POINT='\(value)'")
                && error.reason.contains("after-commit, after-exec, mid-consumption, whole-view-resend, startup-restore")
        }
    }
}
