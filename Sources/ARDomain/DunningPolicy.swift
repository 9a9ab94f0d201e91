/// What a dunning step does when it falls due (SPEC section 4).
public enum DunningAction: String, Sendable, Hashable, CaseIterable {
    case upcoming = "reminder.upcoming"
    case due = "reminder.due"
    case overdue = "reminder.overdue"
    case finalNotice = "reminder.final_notice"
    /// The last step: collections, credit hold (`dunning.escalated`).
    case escalate = "dunning.escalated"
}

/// One step of a policy: `offsetDays` from the due date (negative = before).
public struct DunningStep: Sendable, Hashable {
    public let offsetDays: Int
    public let action: DunningAction
    public let channel: String
    public let template: String

    public init(offsetDays: Int, action: DunningAction, channel: String, template: String) {
        self.offsetDays = offsetDays
        self.action = action
        self.channel = channel
        self.template = template
    }
}

/// A dunning policy (SPEC section 4): ordered steps, a minimum balance below which nobody is
/// reminded, a grace period after a promise to pay, and the retry schedule of failed payments.
public struct DunningPolicy: Sendable, Hashable {
    public let name: String
    public let steps: [DunningStep]
    /// Per currency; a currency without an entry has no minimum.
    public let minimumBalance: [Currency: Money]
    public let graceDays: Int
    public let retryDelaysDays: [Int]

    /// Checks the policy and orders its steps; every problem is named.
    public init(name: String, steps: [DunningStep], minimumBalance: [Currency: Money], graceDays: Int, retryDelaysDays: [Int]) throws(PolicyError) {
        var problems: [String] = []
        if steps.isEmpty { problems.append("policy \(name) has no steps") }
        let offsets = steps.map(\.offsetDays)
        if Set(offsets).count != offsets.count { problems.append("policy \(name) has two steps on the same day") }
        if let bad = steps.first(where: { !(-365...3650).contains($0.offsetDays) }) {
            problems.append("policy \(name): offset \(bad.offsetDays) days is outside -365...3650")
        }
        if let escalation = steps.firstIndex(where: { $0.action == .escalate }),
           steps.contains(where: { $0.offsetDays > steps[escalation].offsetDays }) {
            problems.append("policy \(name): the escalation must be the last step")
        }
        if steps.contains(where: { $0.channel.isEmpty || $0.template.isEmpty }) {
            problems.append("policy \(name): every step needs a channel and a template")
        }
        // They travel in reminder events: the contract's identifier bounds (schemas/reminder.*.json).
        func printable(_ text: String, _ limit: Int) -> Bool {
            text.unicodeScalars.count <= limit && !text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }
        }
        if let bad = steps.first(where: { !printable($0.channel, 32) || !printable($0.template, 128) }) {
            problems.append("policy \(name): step \(bad.offsetDays): channel (at most 32) and template (at most 128) must be printable text")
        }
        if !(0...365).contains(graceDays) { problems.append("policy \(name): grace_days \(graceDays) is outside 0...365") }
        if retryDelaysDays.contains(where: { !(1...365).contains($0) }) {
            problems.append("policy \(name): retry delays must be 1...365 days")
        }
        if retryDelaysDays.count > 20 { problems.append("policy \(name): at most 20 retry delays (\(retryDelaysDays.count) given)") }
        if steps.count > 50 { problems.append("policy \(name): at most 50 steps (\(steps.count) given)") }
        if minimumBalance.contains(where: { $0.value.isNegative || $0.key != $0.value.currency }) {
            problems.append("policy \(name): minimum balances must be positive amounts of their currency")
        }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        self.name = name
        self.steps = steps.sorted { $0.offsetDays < $1.offsetDays }
        self.minimumBalance = minimumBalance
        self.graceDays = graceDays
        self.retryDelaysDays = retryDelaysDays
    }

    /// SPEC section 4 defaults: -3 upcoming, 0 due, +7 overdue, +14 overdue, +30 final notice,
    /// +45 escalate; retries after 1, 3 and 7 days.
    public static let standard: DunningPolicy = {
        do {
            return try DunningPolicy(name: "standard", steps: [
                DunningStep(offsetDays: -3, action: .upcoming, channel: "email", template: "invoice-upcoming"),
                DunningStep(offsetDays: 0, action: .due, channel: "email", template: "invoice-due"),
                DunningStep(offsetDays: 7, action: .overdue, channel: "email", template: "invoice-overdue-1"),
                DunningStep(offsetDays: 14, action: .overdue, channel: "email", template: "invoice-overdue-2"),
                DunningStep(offsetDays: 30, action: .finalNotice, channel: "email", template: "final-notice"),
                DunningStep(offsetDays: 45, action: .escalate, channel: "collections", template: "escalation"),
            ], minimumBalance: [:], graceDays: 3, retryDelaysDays: [1, 3, 7])
        } catch {
            preconditionFailure("the built-in policy is invalid: \(error)")
        }
    }()
}

/// Why a policy set cannot be used; a reload keeps the previous policies.
public struct PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}

/// All policies by name, with the one customers without a policy get.
public struct DunningPolicies: Sendable, Hashable {
    public let policies: [String: DunningPolicy]
    public let defaultPolicyName: String

    public init(policies: [DunningPolicy], defaultPolicyName: String) throws(PolicyError) {
        var byName: [String: DunningPolicy] = [:]
        var problems: [String] = []
        for policy in policies {
            if byName[policy.name] != nil { problems.append("policy \(policy.name) is defined twice") }
            byName[policy.name] = policy
        }
        if byName[defaultPolicyName] == nil { problems.append("default policy \(defaultPolicyName) is not defined") }
        guard problems.isEmpty else { throw PolicyError(problems: problems) }
        self.policies = byName
        self.defaultPolicyName = defaultPolicyName
    }

    /// The customer's policy, or the default one for an unknown or absent name.
    public func policy(named name: String?) -> DunningPolicy {
        name.flatMap { policies[$0] } ?? policies[defaultPolicyName]!
    }
}
