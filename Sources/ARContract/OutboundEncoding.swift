import ARDomain

/// Encodes an outbound CloudEvent (SPEC section 2: structured mode, routing key = `type`).
///
/// Compact JSON with attributes in a fixed order — specversion, id, source, type, time, subject
/// (when given), datacontenttype "application/json", data — and `data`'s members in their
/// insertion order, so the same event always has the same bytes: a re-published event is
/// byte-identical, as consumers de-duplicating by id may also compare bodies.
public func encodeEvent(id: String, source: String, type: String, time: Instant, subject: String?, data: JSONValue) -> [UInt8] {
    var attributes: [(String, JSONValue)] = [
        ("specversion", .string("1.0")),
        ("id", .string(id)),
        ("source", .string(source)),
        ("type", .string(type)),
        ("time", JSONValue(time)),
    ]
    if let subject { attributes.append(("subject", .string(subject))) }
    attributes.append(("datacontenttype", .string("application/json")))
    attributes.append(("data", data))
    return JSONSerializer.serialize(.object(JSONObject(attributes)))
}

/// Builders for outbound `data`: money as decimal strings with exactly the currency's minor
/// digits, dates as `YYYY-MM-DD`, instants as RFC 3339 UTC with microseconds.
extension JSONValue {
    /// `"1250.00"` for 1250 USD, `"1250"` for JPY, `"12.500"` for KWD. The currency goes in its
    /// own field (`JSONValue(money.currency)`).
    public init(_ money: Money) { self = .string(money.decimalString) }
    public init(_ currency: Currency) { self = .string(currency.code) }
    public init(_ date: BusinessDate) { self = .string(date.description) }
    public init(_ instant: Instant) { self = .string(instant.description) }
    public init(_ text: String) { self = .string(text) }
    public init(_ flag: Bool) { self = .bool(flag) }
    public init(_ integer: Int) { self = .number(String(integer)) }
    public init(_ elements: [JSONValue]) { self = .array(elements) }

    /// `null` for nil, so optional fields appear explicitly (e.g. `from` of a new invoice).
    public init<Wrapped>(_ optional: Wrapped?, _ convert: (Wrapped) -> JSONValue) {
        self = optional.map(convert) ?? .null
    }

    /// An object with members in the given order.
    public static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject(pairs.map { ($0.key, $0.value) }))
    }

    /// An object with members in the given order, leaving out the pairs whose value is nil (for
    /// optional fields that are absent rather than null).
    public static func object(omittingNil pairs: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(JSONObject(pairs.compactMap { pair in pair.value.map { (pair.key, $0) } }))
    }
}
