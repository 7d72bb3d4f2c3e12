import Testing

@testable import eddy

/// The line protocol of `eddy dev-broker --control`.
struct DevBrokerControlTests {
    @Test(arguments: [
        DevBrokerControl.brokerDown(2), .brokerUp(3), .leader(topic: "test", partition: 7, broker: 1),
        .requestErrors(apiKey: DevBrokerControl.fetchAPIKey, codes: [6, 7, 56]),
    ])
    func aCommandReadsBackFromItsLine(command: DevBrokerControl) throws {
        #expect(try DevBrokerControl(parsing: Substring(command.line)) == command)
    }

    @Test func extraSpacesAreIgnored() throws {
        #expect(try DevBrokerControl(parsing: "  leader   t  0   2 ") == .leader(topic: "t", partition: 0, broker: 2))
    }

    @Test(arguments: ["", "broker-down", "broker-down x", "broker-down 1 2", "leader t 0", "leader t p 1", "request-errors 1", "request-errors 1 six", "reboot"])
    func aBadLineSaysWhatIsWrong(line: String) {
        #expect {
            try DevBrokerControl(parsing: Substring(line))
        } throws: { error in
            (error as? DevBrokerControlError)?.reason.hasPrefix("'\(line)'") == true
        }
    }
}
