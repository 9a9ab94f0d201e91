import ARDomain
import Synchronization
import Yams

/// The `reconciliation:` part of the configuration (config/receivablesd.yaml documents it):
/// tolerances per currency (rule 5 and gateway payout fees) and which customers allow an
/// unreferenced credit from their registered account to be spread oldest-first (rule 4).
public struct ReconciliationSettings: Sendable, Equatable {
    public var policy: ReconciliationPolicy
    /// Dunning policy names (`customer.upserted.dunning_policy`) whose customers allow
    /// oldest-first; `default` stands for customers that name none.
    public var oldestFirstPolicies: Set<String>

    public init(policy: ReconciliationPolicy, oldestFirstPolicies: Set<String>) {
        self.policy = policy
        self.oldestFirstPolicies = oldestFirstPolicies
    }

    /// `dunningPolicy` is "" for a customer without one.
    public func allowsOldestFirst(dunningPolicy: String) -> Bool {
        oldestFirstPolicies.contains(dunningPolicy.isEmpty ? "default" : dunningPolicy)
    }

    /// The built-in defaults (the same as config/receivablesd.yaml shows): bank charges up to
    /// 25 major units and 1 % of what is due; gateway fees up to 5 % of a payout.
    public static let builtIn: ReconciliationSettings = {
        var tolerances: [Currency: Tolerance] = [:]
        func add(_ code: String, _ shortfall: String, _ payoutFees: String) {
            guard let currency = Currency(code: code) else { preconditionFailure("built-in tolerance for unknown \(code)") }
            do {
                let shortfallLimit = try Money.parse(shortfall, currency: currency)
                let payoutFeeLimit = try Money.parse(payoutFees, currency: currency)
                tolerances[currency] = Tolerance(shortfallLimit: shortfallLimit, shortfallShare: BasisPoints(100),
                                                 payoutFeeLimit: payoutFeeLimit, payoutFeeShare: BasisPoints(500))
            } catch {
                preconditionFailure("built-in tolerance \(code) \(shortfall)/\(payoutFees): \(error)")
            }
        }
        for code in ["EUR", "USD", "GBP", "CHF", "CAD", "AUD"] { add(code, "25.00", "10000.00") }
        add("JPY", "3000", "1500000")
        add("KWD", "8.000", "3000.000")
        return ReconciliationSettings(policy: ReconciliationPolicy(tolerances: tolerances), oldestFirstPolicies: [])
    }()

    /// One line for `check-config`.
    public var summary: String {
        let tolerances = policy.tolerances.keys.sorted().map { currency -> String in
            let t = policy.tolerances[currency]!
            return "\(currency) shortfall \(t.shortfallLimit.decimalString)/\(t.shortfallShare) payout fees \(t.payoutFeeLimit.decimalString)/\(t.payoutFeeShare)"
        }
        return "oldest-first policies [\(oldestFirstPolicies.sorted().joined(separator: ","))]; tolerances: "
            + (tolerances.isEmpty ? "none (exact amounts only)" : tolerances.joined(separator: "; "))
    }
}

/// The settings in force; replaced whole on reload (SIGHUP), read by every consumer thread.
public final class ReconciliationSettingsHolder: Sendable {
    private let current: Mutex<ReconciliationSettings>
    public init(_ settings: ReconciliationSettings) { current = Mutex(settings) }
    public var settings: ReconciliationSettings { current.withLock { $0 } }
    func replace(_ settings: ReconciliationSettings) { current.withLock { $0 = settings } }
}

/// Reads `reconciliation:` from the YAML file, then the environment:
/// `RECEIVABLESD_RECONCILIATION_OLDEST_FIRST_POLICIES=gentle,default` and
/// `RECEIVABLESD_RECONCILIATION_TOLERANCES="EUR=25.00/1/10000.00/5;JPY=3000/1/1500000/5"`
/// (shortfall / shortfall % / payout fees / payout fees %) replace what the file says.
enum ReconciliationConfiguration {
    static let toleranceKeys: Set<String> = ["shortfall", "shortfall_percent", "payout_fees", "payout_fees_percent"]

    static func read(yaml: String?, environment: [String: String], origin: String) -> (ReconciliationSettings, [String]) {
        var settings = ReconciliationSettings.builtIn
        var problems: [String] = []
        var root: [String: Any]?
        if let yaml {
            // A file that is not YAML is reported by ConfigurationLoader.inspectYAML already.
            do { root = try Yams.load(yaml: yaml) as? [String: Any] } catch { root = nil }
        }
        if let node = root?["reconciliation"] {
            guard let section = node as? [String: Any] else {
                return (settings, ["\(origin): reconciliation must be a mapping"])
            }
            for key in section.keys.sorted() where key != "oldest_first_policies" && key != "tolerances" {
                problems.append("\(origin): unknown key 'reconciliation.\(key)'")
            }
            if let list = section["oldest_first_policies"] {
                if let names = list as? [Any] {
                    settings.oldestFirstPolicies = Set(names.map { "\($0)" })
                } else {
                    problems.append("\(origin): reconciliation.oldest_first_policies must be a list of dunning policy names")
                }
            }
            if let tolerances = section["tolerances"] {
                if let map = tolerances as? [String: Any] {
                    settings.policy.tolerances = [:]
                    for code in map.keys.sorted() {
                        let place = "\(origin): reconciliation.tolerances.\(code)"
                        guard let fields = map[code] as? [String: Any] else { problems.append("\(place) must map \(toleranceKeys.sorted().joined(separator: ", "))"); continue }
                        for key in fields.keys.sorted() where !toleranceKeys.contains(key) { problems.append("\(place): unknown key '\(key)'") }
                        let (tolerance, found) = parse(code: code, fields.mapValues { "\($0)" }, place: place)
                        problems += found
                        if let tolerance { settings.policy.tolerances[tolerance.shortfallLimit.currency] = tolerance }
                    }
                } else {
                    problems.append("\(origin): reconciliation.tolerances must map currency codes to tolerances")
                }
            }
        }
        if let text = environment["RECEIVABLESD_RECONCILIATION_OLDEST_FIRST_POLICIES"] {
            settings.oldestFirstPolicies = Set(text.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty })
        }
        if let text = environment["RECEIVABLESD_RECONCILIATION_TOLERANCES"], !text.isEmpty {
            settings.policy.tolerances = [:]
            for item in text.split(separator: ";") {
                let place = "RECEIVABLESD_RECONCILIATION_TOLERANCES: '\(item)'"
                let parts = item.split(separator: "=", maxSplits: 1)
                let values = parts.count == 2 ? parts[1].split(separator: "/", omittingEmptySubsequences: false).map { String($0).trimmed } : []
                guard values.count == 4 else { problems.append("\(place) is not CCY=shortfall/shortfall_percent/payout_fees/payout_fees_percent"); continue }
                let (tolerance, found) = parse(code: String(parts[0]).trimmed, ["shortfall": values[0], "shortfall_percent": values[1],
                                                                                "payout_fees": values[2], "payout_fees_percent": values[3]], place: place)
                problems += found
                if let tolerance { settings.policy.tolerances[tolerance.shortfallLimit.currency] = tolerance }
            }
        }
        return (settings, problems)
    }

    static func parse(code: String, _ fields: [String: String], place: String) -> (Tolerance?, [String]) {
        guard let currency = Currency(code: code) else { return (nil, ["\(place): \(code) is not an ISO 4217 currency"]) }
        var problems: [String] = []
        func amount(_ key: String) -> Money {
            guard let text = fields[key] else { return .zero(currency) }
            do { return try Money.parse(text, currency: currency) } catch {
                problems.append("\(place).\(key) = '\(text)': expected an amount of \(code) with at most \(currency.minorUnitDigits) decimals, e.g. \"25.00\"")
                return .zero(currency)
            }
        }
        func share(_ key: String) -> BasisPoints {
            guard let text = fields[key] else { return BasisPoints(0) }
            guard let share = BasisPoints(percent: text) else {
                problems.append("\(place).\(key) = '\(text)': expected a percentage 0...100 with at most two decimals, e.g. \"1.5\"")
                return BasisPoints(0)
            }
            return share
        }
        let tolerance = Tolerance(shortfallLimit: amount("shortfall"), shortfallShare: share("shortfall_percent"),
                                  payoutFeeLimit: amount("payout_fees"), payoutFeeShare: share("payout_fees_percent"))
        return (problems.isEmpty ? tolerance : nil, problems)
    }
}
