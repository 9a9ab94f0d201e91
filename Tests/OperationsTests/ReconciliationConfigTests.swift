import Foundation
import Testing
import TestSupport

/// `reconciliation:` in the configuration (tolerances, oldest-first policies): the documented
/// file is the built-in default, every mistake is named, the environment replaces the file.
extension CheckConfigTests {
    static func reconciliationLine(_ output: String) -> String {
        output.split(separator: "\n").map(String.init).first { $0.hasPrefix("reconciliation:") } ?? ""
    }

    @Test func documentedReconciliationSettingsAreTheBuiltInOnes() throws {
        let environment = ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"]
        let documented = try Self.run(["check-config", "--config", try Self.documentedConfig()], environment: environment)
        #expect(documented.status == 0, "\(documented.output)")
        let builtIn = try Self.run(["check-config", "--config", try Self.temporaryFile("empty.yaml", "log_level: info\n")], environment: environment)
        #expect(builtIn.status == 0, "\(builtIn.output)")
        let line = Self.reconciliationLine(documented.output)
        #expect(line.contains("EUR shortfall 25.00/1 % payout fees 10000.00/5 %") && line.contains("KWD shortfall 8.000/1 %"), "\(line)")
        #expect(line == Self.reconciliationLine(builtIn.output), "the documented file differs from the built-in defaults:\n\(line)\n\(Self.reconciliationLine(builtIn.output))")
    }

    @Test func everyReconciliationMistakeIsNamed() throws {
        let broken = try Self.temporaryFile("broken-reconciliation.yaml", """
            reconciliation:
              oldest_first_policy: [gentle]
              tolerances:
                EUR: { shortfall: "25.001", shortfall_percent: "1" }
                XXX: { shortfall: "1" }
                USD: { shortfall: "5.00", shortfall_percent: "101", payout_fee: "1" }
            """)
        let result = try Self.run(["check-config", "--config", broken], environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"])
        #expect(result.status != 0, "accepted:\n\(result.output)")
        for mistake in ["reconciliation.oldest_first_policy", "tolerances.EUR.shortfall = '25.001'", "XXX is not an ISO 4217 currency",
                        "tolerances.USD.shortfall_percent = '101'", "tolerances.USD: unknown key 'payout_fee'"] {
            #expect(result.output.split(separator: "\n").filter { $0.contains(mistake) }.count == 1, "expected one line naming \(mistake):\n\(result.output)")
        }
    }

    @Test func environmentReplacesTheReconciliationFile() throws {
        let result = try Self.run(["check-config", "--config", try Self.documentedConfig()], environment: [
            "PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x",
            "RECEIVABLESD_RECONCILIATION_TOLERANCES": "EUR=2.50/0.5/100.00/3", "RECEIVABLESD_RECONCILIATION_OLDEST_FIRST_POLICIES": "gentle, default",
        ])
        #expect(result.status == 0, "\(result.output)")
        #expect(Self.reconciliationLine(result.output) == "reconciliation: oldest-first policies [default,gentle]; tolerances: EUR shortfall 2.50/0.50 % payout fees 100.00/3 %",
                "\(result.output)")
        let bad = try Self.run(["check-config"], environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x",
                                                             "RECEIVABLESD_RECONCILIATION_TOLERANCES": "EUR=2.50/0.5"])
        #expect(bad.status != 0 && bad.output.contains("RECEIVABLESD_RECONCILIATION_TOLERANCES"), "\(bad.output)")
    }
}
