@testable import EddyKafka
import Testing

/// When a broker last answered, judged from librdkafka's statistics reports, without a broker.
@Suite struct BrokerLivenessTests {
    private let start = ContinuousClock.now

    private func broker(_ state: String, owed: Int = 1, rxidleMicroseconds: Int64? = 200_000) -> BrokerLiveness.Broker {
        BrokerLiveness.Broker(state: state, waitresp_cnt: owed, outbuf_cnt: 0, rxidle: rxidleMicroseconds)
    }

    @Test func aBrokerThatAnswersMovesTheInstant() {
        var liveness = BrokerLiveness(answeredAt: start)
        liveness.record([broker("UP", rxidleMicroseconds: 300_000)], at: start + .seconds(5))
        #expect(liveness.lastAnswer == start + .seconds(5) - .milliseconds(300))
    }

    @Test func brokersDownOrSilentLeaveTheInstantWhereItWas() {
        var liveness = BrokerLiveness(answeredAt: start)
        liveness.record([broker("UP", rxidleMicroseconds: 0)], at: start + .seconds(1))
        // Connection lost and retried; then connected but owing a reply for 4 s.
        liveness.record([broker("DOWN", rxidleMicroseconds: -1), broker("TRY_CONNECT", rxidleMicroseconds: -1)], at: start + .seconds(3))
        liveness.record([broker("CONNECT", rxidleMicroseconds: nil)], at: start + .seconds(4))
        liveness.record([broker("UP", owed: 2, rxidleMicroseconds: 4_000_000)], at: start + .seconds(5))
        #expect(liveness.lastAnswer == start + .seconds(1))
        // Back: the first report with a recent answer ends the silence.
        liveness.record([broker("UP", rxidleMicroseconds: 100_000)], at: start + .seconds(9))
        #expect(liveness.lastAnswer == start + .seconds(9) - .milliseconds(100))
    }

    @Test func aConnectedBrokerOwingNothingCountsAsAnswering() {
        // A paused consumer asks nothing: its connected brokers are not silent.
        var liveness = BrokerLiveness(answeredAt: start)
        liveness.record([broker("UP", owed: 0, rxidleMicroseconds: 60_000_000)], at: start + .seconds(70))
        #expect(liveness.lastAnswer == start + .seconds(70))
    }

    @Test func theNewestAnswerOfAnyBrokerWinsAndTheInstantNeverGoesBack() {
        var liveness = BrokerLiveness(answeredAt: start)
        liveness.record([broker("UP", rxidleMicroseconds: 2_000_000), broker("UP", rxidleMicroseconds: 500_000), broker("DOWN")], at: start + .seconds(10))
        #expect(liveness.lastAnswer == start + .milliseconds(9_500))
        liveness.record([broker("UP", rxidleMicroseconds: 9_000_000)], at: start + .seconds(11))
        #expect(liveness.lastAnswer == start + .milliseconds(9_500))
    }

    @Test func statisticsJSONIsReadForItsBrokers() throws {
        let json = """
            {"name":"rdkafka#consumer-1","type":"consumer","ts":1,"brokers":{
              "127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,"state":"UP","outbuf_cnt":0,
                "waitresp_cnt":1,"rxidle":120000,"toppars":{}},
              "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"state":"DOWN","outbuf_cnt":3,"waitresp_cnt":0,"rxidle":-1}},
             "topics":{"t":{"partitions":{"0":{"partition":0}}}}}
            """
        let brokers = try #require(BrokerLiveness.brokers(inStatistics: json))
        #expect(Set(brokers.map(\.state)) == ["UP", "DOWN"])
        #expect(brokers.first { $0.state == "UP" }?.rxidle == 120_000)
        #expect(BrokerLiveness.brokers(inStatistics: "not json") == nil)
        #expect(BrokerLiveness.brokers(inStatistics: #"{"type":"consumer"}"#) == [])
    }
}
