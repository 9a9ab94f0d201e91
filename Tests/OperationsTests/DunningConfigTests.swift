import Foundation
import Testing

/// `check-config` on dunning settings (SPEC section 4, docs/dunning.md): the documented policies
/// are valid and shown; a broken policies file or dunning key is named, one line per mistake.
/// Needs only the binary.
@Suite struct DunningConfigTests {
    static let environment = ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"]

    @Test func theDocumentedPoliciesAndDunningKeysAreShown() throws {
        let result = try CheckConfigTests.run(["check-config", "--config", try CheckConfigTests.documentedConfig()], environment: Self.environment)
        #expect(result.status == 0, "check-config of the documented files failed:\n\(result.output)")
        #expect(result.output.contains("dunning: pass every 60s"), "the dunning clock is not shown:\n\(result.output)")
        #expect(result.output.contains("stolen_card") && result.output.contains("r02"), "the hard declines are not shown:\n\(result.output)")
        #expect(result.output.contains("gentle: +0d reminder.due, +14d reminder.overdue, +45d reminder.final_notice"),
                "the gentle policy's steps are not shown:\n\(result.output)")
        let off = try CheckConfigTests.run(["check-config", "--config", try CheckConfigTests.documentedConfig()],
                                           environment: Self.environment.merging(["RECEIVABLESD_DUNNING_INTERVAL_SECONDS": "0"]) { $1 })
        #expect(off.status == 0 && off.output.contains("dunning: pass every off"), "interval 0 is not accepted as off:\n\(off.output)")
    }

    @Test func everyPolicyMistakeIsNamed() throws {
        let policies = try CheckConfigTests.temporaryFile("broken-policies.yaml", """
            default_policy: missing
            policies:
              a:
                grace_days: 400
                retry_delays_days: [0, 3]
                minimum_balance: { USD: "5.001", XXX: "1" }
                steps:
                  - { offset_days: 0, event: reminder.due, channel: email, template: due }
                  - { offset_days: 0, event: reminder.overdue, channel: email, template: late }
                  - { offset_days: 7, event: reminder.shout, channel: email, template: x }
              b:
                steps:
                  - { offset_days: 30, event: dunning.escalated, channel: collections, template: esc }
                  - { offset_days: 45, event: reminder.final_notice, channel: "", template: final }
            """)
        let config = try CheckConfigTests.temporaryFile("dunning-broken.yaml", "policies_file: \(policies)\n")
        let result = try CheckConfigTests.run(["check-config", "--config", config], environment: Self.environment)
        #expect(result.status != 0, "check-config accepted broken policies:\n\(result.output)")
        for fragment in ["unknown event 'reminder.shout'", "unknown currency XXX", "'5.001' is not an amount of USD", "grace_days 400",
                         "retry delays must be 1...365", "two steps on the same day", "escalation must be the last step",
                         "every step needs a channel and a template"] {
            #expect(result.output.contains(fragment), "'\(fragment)' not reported:\n\(result.output)")
        }
        let missingDefault = try CheckConfigTests.temporaryFile("no-default.yaml", """
            default_policy: missing
            policies:
              a:
                steps: [{ offset_days: 0, event: reminder.due, channel: email, template: due }]
            """)
        let second = try CheckConfigTests.run(["check-config", "--config", try CheckConfigTests.temporaryFile("d2.yaml", "policies_file: \(missingDefault)\n")],
                                              environment: Self.environment)
        #expect(second.status != 0 && second.output.contains("default policy missing is not defined"), "missing default not reported:\n\(second.output)")
    }

    @Test func badDunningKeysAreNamed() throws {
        let config = try CheckConfigTests.temporaryFile("dunning-keys.yaml", """
            dunning_interval_seconds: -5
            hard_decline_codes: [stolen_card, ""]
            """)
        let result = try CheckConfigTests.run(["check-config", "--config", config], environment: Self.environment)
        #expect(result.status != 0, "check-config accepted bad dunning keys:\n\(result.output)")
        #expect(result.output.contains("dunning_interval_seconds = -5"), "the interval is not named:\n\(result.output)")
        #expect(result.output.contains("hard_decline_codes"), "the empty code is not named:\n\(result.output)")
    }
}
