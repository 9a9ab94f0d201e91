import Foundation
import Testing
import TestSupport

/// `receivablesd bench e2e` as an operator runs it, shortened: it must start a real instance,
/// get every payment it published confirmed, measure both baselines, and leave books that verify.
/// (The figures themselves are not asserted: speed is measured, never tested.)
@Suite(.serialized) struct EndToEndBenchTests {
    @Test func shortRunConfirmsEveryPaymentAndWritesItsResults() async throws {
        try await withScope("e2e") { scope in
            let output = scope.directory + "/e2e.json"
            let result = try await scope.cli(["bench", "e2e", "--seconds", "2", "--rates", "50,0", "--instances", "1", "--customers", "40",
                                              "--seed", "3", "--mixed", "--output", output], timeout: .seconds(300))
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("verify after every run: passes"), "\(result.output)")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any]
            let baselines = json?["baselines"] as? [String: Any]
            #expect((baselines?["broker_per_second"] as? Int ?? 0) > 0 && (baselines?["database_per_second"] as? Int ?? 0) > 0)
            let runs = json?["runs"] as? [[String: Any]] ?? []
            try #require(runs.count == 1)
            #expect((runs[0]["verify_violations"] as? [Any])?.isEmpty == true)
            #expect(runs[0]["dead_letters"] as? Int == 0)
            let phases = runs[0]["phases"] as? [[String: Any]] ?? []
            #expect(phases.count == 2)
            for phase in phases {
                let published = phase["published"] as? Int ?? -1
                let latency = phase["latency"] as? [String: Any]
                #expect(published > 0 && phase["confirmed"] as? Int == published, "\(phase)")
                #expect(latency?["samples"] as? Int == published)
                #expect((phase["other_messages"] as? Int ?? 0) > 0, "the mixed stream carries invoices and customer updates too")
                let resident = phase["resident_kib"] as? [String: Any]
                #expect((resident?["end"] as? Int ?? 0) > 0 && (resident?["warm"] as? Int ?? 0) > 0)
                #expect((resident?["samples"] as? [Int])?.isEmpty == false, "resident memory is sampled through the phase")
            }
        }
    }
}
