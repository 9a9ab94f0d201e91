import ARDomain
import Yams

/// Reads dunning policies from YAML (config/dunning-policies.yaml documents the format).
/// Nested lists of steps do not fit swift-configuration's scalar keys, so this file is decoded
/// with Yams into Codable shapes and then checked by the domain (`DunningPolicy`).
public enum PolicyLoader {
    struct File: Decodable {
        let defaultPolicy: String
        let policies: [String: PolicyShape]
        enum CodingKeys: String, CodingKey { case defaultPolicy = "default_policy", policies }
    }

    struct PolicyShape: Decodable {
        let steps: [StepShape]
        let minimumBalance: [String: String]?
        let graceDays: Int?
        let retryDelaysDays: [Int]?
        enum CodingKeys: String, CodingKey {
            case steps, minimumBalance = "minimum_balance", graceDays = "grace_days", retryDelaysDays = "retry_delays_days"
        }
    }

    struct StepShape: Decodable {
        let offsetDays: Int
        let event: String
        let channel: String
        let template: String
        enum CodingKeys: String, CodingKey { case offsetDays = "offset_days", event, channel, template }
    }

    /// Parses and checks a policy file; every problem is listed.
    public static func parse(_ text: String, origin: String) throws(PolicyError) -> DunningPolicies {
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: text) } catch {
            throw PolicyError(problems: ["\(origin): \(error)"])
        }
        var problems: [String] = []
        var policies: [DunningPolicy] = []
        for (name, shape) in file.policies.sorted(by: { $0.key < $1.key }) {
            var steps: [DunningStep] = []
            for step in shape.steps {
                guard let action = DunningAction(rawValue: step.event) else {
                    problems.append("\(origin): policy \(name): unknown event '\(step.event)' (expected one of \(DunningAction.allCases.map(\.rawValue).joined(separator: ", ")))")
                    continue
                }
                steps.append(DunningStep(offsetDays: step.offsetDays, action: action, channel: step.channel, template: step.template))
            }
            var minimum: [Currency: Money] = [:]
            for (code, amount) in shape.minimumBalance ?? [:] {
                guard let currency = Currency(code: code) else { problems.append("\(origin): policy \(name): unknown currency \(code)"); continue }
                do { minimum[currency] = try Money.parse(amount, currency: currency) } catch {
                    problems.append("\(origin): policy \(name): minimum_balance \(code) '\(amount)' is not an amount of \(code)")
                }
            }
            do {
                policies.append(try DunningPolicy(name: name, steps: steps, minimumBalance: minimum, graceDays: shape.graceDays ?? 3,
                                                  retryDelaysDays: shape.retryDelaysDays ?? [1, 3, 7]))
            } catch {
                problems += error.problems.map { "\(origin): \($0)" }
            }
        }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        return try DunningPolicies(policies: policies, defaultPolicyName: file.defaultPolicy)
    }

    /// The configured policies, or the built-in standard policy when no file is configured.
    public static func load(_ path: String?) throws(PolicyError) -> DunningPolicies {
        guard let path else {
            do { return try DunningPolicies(policies: [.standard], defaultPolicyName: "standard") } catch { preconditionFailure("\(error)") }
        }
        guard let text = ConfigurationLoader.readFile(path, limit: 1_048_576) else { throw PolicyError(problems: ["cannot read policies file \(path)"]) }
        return try parse(text, origin: path)
    }
}
