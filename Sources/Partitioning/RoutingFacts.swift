import ARContract

/// What kind of business object a message refers to by id.
public enum ReferenceKind: String, Sendable, Hashable, CaseIterable {
    case invoice
    case payment
}

/// The facts of one inbound message that decide its partition, read leniently from the raw body
/// (the router runs before validation: a message it cannot read still has to reach a consumer,
/// which dead-letters it with its reason).
public struct RoutingFacts: Sendable, Equatable {
    public var type: String?
    public var source: String?
    public var id: String?
    /// CloudEvents `subject` (the customer id by the contract, optional).
    public var subject: String?
    /// `data.customer_id`.
    public var customerID: String?
    /// The invoice or payment the message is about when it does not name its customer
    /// (`invoice.voided` → invoice_id, `payment.refunded` → payment_id, `promise_to_pay` → first invoice id).
    public var reference: (kind: ReferenceKind, id: String)?
    /// An id this message creates for its customer, remembered so that later messages naming
    /// only that id follow the customer (`invoice.issued` → invoice, `payment.*` → payment).
    public var creates: (kind: ReferenceKind, id: String)?
    /// A digest of the body, the key of last resort (unreadable input).
    public var bodyDigest: UInt64

    public static func == (lhs: RoutingFacts, rhs: RoutingFacts) -> Bool {
        lhs.type == rhs.type && lhs.source == rhs.source && lhs.id == rhs.id && lhs.subject == rhs.subject
            && lhs.customerID == rhs.customerID && lhs.reference?.kind == rhs.reference?.kind && lhs.reference?.id == rhs.reference?.id
            && lhs.creates?.kind == rhs.creates?.kind && lhs.creates?.id == rhs.creates?.id && lhs.bodyDigest == rhs.bodyDigest
    }

    /// Identifiers longer than this are not used as keys (the consumer rejects them anyway).
    public static let maximumIdentifierBytes = 256

    public static func read(body: [UInt8], routingKey: String, maximumBodyBytes: Int) -> RoutingFacts {
        var facts = RoutingFacts(bodyDigest: PartitionLayout.hash(String(decoding: body.prefix(4096), as: UTF8.self) + "#\(body.count)"))
        facts.type = routingKey.isEmpty ? nil : routingKey
        guard body.count <= maximumBodyBytes, let value = try? JSONParser(maximumDepth: 64).parse(body), let object = value.objectValue else {
            return facts
        }
        func text(_ value: JSONValue?) -> String? {
            guard let text = value?.stringValue, !text.isEmpty, text.utf8.count <= maximumIdentifierBytes else { return nil }
            return text
        }
        if let type = text(object["type"]) { facts.type = type }
        facts.source = text(object["source"])
        facts.id = text(object["id"])
        facts.subject = text(object["subject"])
        let data = object["data"]?.objectValue
        facts.customerID = text(data?["customer_id"])
        if let invoice = text(data?["invoice_id"]) {
            facts.reference = (.invoice, invoice)
        } else if let payment = text(data?["payment_id"]) {
            facts.reference = (.payment, payment)
        } else if let first = data?["invoice_ids"]?.arrayValue?.first, let invoice = text(first) {
            facts.reference = (.invoice, invoice)
        }
        if let customer = facts.customerID, customer.isEmpty == false {
            if facts.type == "invoice.issued", let invoice = text(data?["invoice_id"]) {
                facts.creates = (.invoice, invoice)
            } else if facts.type?.hasPrefix("payment.") == true, let payment = text(data?["payment_id"]) {
                facts.creates = (.payment, payment)
            }
        }
        return facts
    }

    /// Bank traffic (`bank.*`, `reconciliation.resolved`) has its own partition.
    public var isBankTraffic: Bool { type.map { $0.hasPrefix("bank.") || $0 == "reconciliation.resolved" } ?? false }
}

/// Why a message went to its partition (logs and `check-config --customer`).
public enum RoutingDecision: Sendable, Equatable {
    case bank
    /// data.customer_id, or the customer the router remembered for the referenced id.
    case customer(String)
    /// Only the CloudEvents subject names the customer.
    case subject(String)
    /// A reference to an id the router has not seen: by the id (held until it arrives).
    case unknownReference(ReferenceKind, String)
    /// Neither customer nor reference readable (bad input, dead-lettered by the consumer).
    case opaque(UInt64)

    /// The hash key; a customer id hashes the same whether it came from data or subject.
    public var key: String {
        switch self {
        case .bank: return "bank"
        case .customer(let id), .subject(let id): return id
        case .unknownReference(let kind, let id): return "\(kind.rawValue):\(id)"
        case .opaque(let digest): return "opaque:\(digest)"
        }
    }

    /// The customer partition key order: data.customer_id; the customer of the referenced
    /// invoice/payment (`lookup`); the subject; the reference itself; the message's identity.
    public static func decide(_ facts: RoutingFacts, lookup: (ReferenceKind, String) -> String?) -> RoutingDecision {
        if facts.isBankTraffic { return .bank }
        if let customer = facts.customerID { return .customer(customer) }
        if let reference = facts.reference, let customer = lookup(reference.kind, reference.id) { return .customer(customer) }
        if let subject = facts.subject { return .subject(subject) }
        if let reference = facts.reference { return .unknownReference(reference.kind, reference.id) }
        if let source = facts.source, let id = facts.id { return .opaque(PartitionLayout.hash(source + "\u{0}" + id)) }
        return .opaque(facts.bodyDigest)
    }

    public func slot(in layout: PartitionLayout) -> PartitionSlot {
        if case .bank = self { return .bank }
        return layout.slot(forKey: key)
    }
}
