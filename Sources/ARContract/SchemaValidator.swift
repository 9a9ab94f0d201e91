import ARDomain
import Foundation

/// One rule of a schema that an instance breaks.
public struct SchemaFailure: Hashable, Sendable, CustomStringConvertible {
    /// JSON Pointer into the instance (`/data/allocations/0/amount`); "" is the whole instance.
    public let instancePath: String
    /// Where the failing keyword is: `file.json#/json/pointer/keyword` (after `$ref`s).
    public let schemaPath: String
    /// The `x-rejection` of the failing subschema or its nearest ancestor on the evaluation
    /// path, else `schema_violation`.
    public let rejection: RejectionCode
    /// What is wrong, in words, without the location.
    public let message: String

    /// The instance path as dotted field names for people: `data.allocations[0].amount`.
    public var fieldPath: String {
        guard !instancePath.isEmpty else { return "(message)" }
        var result = ""
        for token in instancePath.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            let name = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if !name.isEmpty, name.allSatisfy(\.isASCII), name.allSatisfy(\.isNumber) {
                result += "[\(name)]"
            } else {
                result += result.isEmpty ? name : "." + name
            }
        }
        return result
    }

    public var description: String { "\(fieldPath): \(message) [\(rejection.rawValue) at \(schemaPath)]" }
}

/// Why the schema documents themselves cannot be used (a bug in `schemas/`, caught by tests).
public struct SchemaCompileError: Error, Hashable, Sendable, CustomStringConvertible {
    public let location: String
    public let problem: String
    public var description: String { "\(location): \(problem)" }
}

/// A JSON Schema (draft 2020-12) validator for the subset of the vocabulary our schemas use.
///
/// Ours because no Swift JSON Schema package is available to this project; the agreement test
/// (`ContractAgreementTests`) checks it against Python's `jsonschema` on every example.
///
/// Supported: `type`, `enum`, `const`, `required`, `properties`, `patternProperties`,
/// `additionalProperties`, `propertyNames`, `dependentRequired`, `minProperties`,
/// `maxProperties`, `items`, `prefixItems`, `minItems`, `maxItems`, `uniqueItems`, `minLength`,
/// `maxLength` (Unicode code points), `pattern` (ICU via `NSRegularExpression`; keep patterns to
/// what ICU and Python `re` agree on: no `\d`/`\w`/`\s` shorthands, and `(?![\s\S])` rather than
/// `$` for "end of string", since both engines let `$` match before a final newline), `format`
/// (`date` via `BusinessDate`, `date-time` via `Instant(rfc3339:)`; other formats are ignored),
/// `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (exact decimal comparison),
/// `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `$ref` to `#/...` in the same document
/// or to a sibling document (`common.json#/$defs/money`), `$defs`. Other keywords are ignored,
/// as the standard says; `$id`/`$schema` play no part in resolution (documents are named by file).
///
/// The custom annotation `x-rejection` names the rejection code of failures inside its subschema.
public struct SchemaValidator: Sendable {
    let nodes: [SchemaNode]
    let rootNodeByDocument: [String: Int]

    /// Compiles every document (file name → JSON text); all `$ref`s reachable from them are
    /// resolved now, so validation never fails on a broken reference.
    public init(documents: [String: String]) throws(SchemaCompileError) {
        var parsed: [String: JSONValue] = [:]
        let parser = JSONParser(maximumDepth: 64)
        for (name, text) in documents {
            do {
                parsed[name] = try parser.parse(Array(text.utf8))
            } catch {
                throw SchemaCompileError(location: name, problem: "not JSON: \(error)")
            }
        }
        var compiler = SchemaCompiler(documents: parsed)
        var roots: [String: Int] = [:]
        for name in parsed.keys.sorted() {
            roots[name] = try compiler.compile(document: name, pointer: "")
        }
        nodes = compiler.nodes.map { node in
            guard let node else { preconditionFailure("schema node reserved but never compiled") }
            return node
        }
        rootNodeByDocument = roots
    }

    /// The document names this validator knows (`invoice.issued.json`, `common.json`, ...).
    public var documentNames: Set<String> { Set(rootNodeByDocument.keys) }

    public func hasDocument(_ name: String) -> Bool { rootNodeByDocument[name] != nil }

    /// Every failure, in evaluation order (document order of the keywords); empty when valid.
    /// Failures inside `anyOf`/`oneOf`/`not`/`if` branches are not listed one by one: the
    /// combinator itself is the failure, as in other validators.
    public func validate(_ instance: JSONValue, against document: String) -> [SchemaFailure] {
        guard let root = rootNodeByDocument[document] else {
            preconditionFailure("no schema document \(document)")
        }
        var run = ValidationRun(nodes: nodes, collecting: true)
        _ = run.evaluate(instance, node: root, inherited: nil)
        return run.failures
    }

    /// True when `instance` is valid; stops at the first failure.
    public func isValid(_ instance: JSONValue, against document: String) -> Bool {
        guard let root = rootNodeByDocument[document] else {
            preconditionFailure("no schema document \(document)")
        }
        var run = ValidationRun(nodes: nodes, collecting: false)
        return run.evaluate(instance, node: root, inherited: nil)
    }

    /// The keywords this validator evaluates; schemas must use no others but annotations.
    public static let supportedKeywords: Set<String> = [
        "type", "enum", "const", "required", "properties", "patternProperties", "additionalProperties",
        "propertyNames", "dependentRequired", "minProperties", "maxProperties", "items", "prefixItems",
        "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format", "minimum",
        "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf", "anyOf", "oneOf", "not", "if", "then",
        "else", "$ref", "$defs",
    ]

    /// Keywords that carry no assertion (here or in the standard) and may appear freely.
    public static let annotationKeywords: Set<String> = [
        "$schema", "$id", "$comment", "title", "description", "examples", "default", "x-rejection",
        "contentEncoding", "contentMediaType", "deprecated", "readOnly", "writeOnly",
    ]
}

/// A compiled `pattern`. Two shapes that our schemas use on almost every field are matched
/// natively, with exactly the regex semantics, because ICU through `NSRegularExpression` costs a
/// string bridge per call and the decoder runs for every message:
/// - `[ranges]` (unanchored search for one character of a class), as in the "no control
///   characters" rule and the minor-digits rules' `\.`;
/// - `^[ranges]{m,n}(?![\s\S])` (the whole string, m to n characters of one class).
/// Everything else goes to ICU. `NSRegularExpression` is immutable after creation and
/// documented as safe to use from several threads at once, hence `@unchecked Sendable`.
struct CompiledPattern: @unchecked Sendable {
    enum Native: Sendable {
        case containsCharacter(ranges: [ClosedRange<UInt32>], followedByDigits: Int)
        case wholeStringOfClass(ranges: [ClosedRange<UInt32>], minimum: Int, maximum: Int)
    }

    let source: String
    let expression: NSRegularExpression
    let native: Native?

    init(source: String, expression: NSRegularExpression) {
        self.source = source
        self.expression = expression
        self.native = CompiledPattern.nativeForm(of: source)
    }

    func matches(_ text: String) -> Bool {
        switch native {
        case .containsCharacter(let ranges, let digits)?:
            let scalars = Array(text.unicodeScalars)
            for (position, scalar) in scalars.enumerated() where ranges.contains(where: { $0.contains(scalar.value) }) {
                guard position + digits < scalars.count || digits == 0 else { continue }
                if (0..<digits).allSatisfy({ offset in (0x30...0x39).contains(scalars[position + 1 + offset].value) }) { return true }
            }
            return false
        case .wholeStringOfClass(let ranges, let minimum, let maximum)?:
            var count = 0
            for scalar in text.unicodeScalars {
                guard ranges.contains(where: { $0.contains(scalar.value) }) else { return false }
                count += 1
                if count > maximum { return false }
            }
            return count >= minimum
        case nil:
            return expression.firstMatch(in: text, options: [], range: NSRange(location: 0, length: text.utf16.count)) != nil
        }
    }

    /// Recognizes the two native shapes; nil (use ICU) for anything else.
    static func nativeForm(of source: String) -> Native? {
        let end = "(?![\\s\\S])"
        if source.hasPrefix("^["), source.hasSuffix(end) {
            let body = source.dropFirst(1).dropLast(end.count)
            guard let close = body.firstIndex(of: "]"), let ranges = parseClass(body[body.index(after: body.startIndex)..<close]) else { return nil }
            let quantifier = body[body.index(after: close)...]
            guard quantifier.hasPrefix("{"), quantifier.hasSuffix("}") else { return nil }
            let bounds = quantifier.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            guard let minimum = Int(bounds[0]) else { return nil }
            let maximum = bounds.count == 1 ? minimum : Int(bounds[1])
            guard let maximum, bounds.count <= 2 else { return nil }
            return .wholeStringOfClass(ranges: ranges, minimum: minimum, maximum: maximum)
        }
        if source == "\\." { return .containsCharacter(ranges: [0x2E...0x2E], followedByDigits: 0) }
        if source.hasPrefix("\\.[0-9]{"), source.hasSuffix("}"), let digits = Int(source.dropFirst(8).dropLast()) {
            return .containsCharacter(ranges: [0x2E...0x2E], followedByDigits: digits)
        }
        if source.hasPrefix("["), source.hasSuffix("]"), let ranges = parseClass(source.dropFirst().dropLast()) {
            return .containsCharacter(ranges: ranges, followedByDigits: 0)
        }
        return nil
    }

    /// A character class body made only of ASCII letters/digits, `\xHH` and `\uHHHH` escapes and `a-b`
    /// ranges (no negation, no other escapes); nil otherwise.
    static func parseClass(_ body: Substring) -> [ClosedRange<UInt32>]? {
        var points: [UInt32] = []
        var isRangeMarker: [Bool] = []
        var scalars = Array(body.unicodeScalars)[...]
        while let scalar = scalars.first {
            scalars = scalars.dropFirst()
            if scalar == "\\" {
                // `\xHH` or `\uHHHH` (both mean the same code point in ICU and Python re).
                let width = scalars.first == "x" ? 2 : scalars.first == "u" ? 4 : 0
                guard width > 0, scalars.count >= width + 1,
                      let value = UInt32(String(String.UnicodeScalarView(scalars.dropFirst().prefix(width))), radix: 16) else { return nil }
                points.append(value)
                isRangeMarker.append(false)
                scalars = scalars.dropFirst(width + 1)
            } else if scalar == "-", !points.isEmpty, !scalars.isEmpty {
                points.append(0)
                isRangeMarker.append(true)
            } else if scalar.properties.isASCIIHexDigit || ("g"..."z").contains(scalar) || ("G"..."Z").contains(scalar) {
                points.append(scalar.value)
                isRangeMarker.append(false)
            } else {
                return nil
            }
        }
        guard !points.isEmpty, isRangeMarker.first == false, isRangeMarker.last == false else { return nil }
        var ranges: [ClosedRange<UInt32>] = []
        var index = 0
        while index < points.count {
            if index + 2 < points.count, isRangeMarker[index + 1] {
                guard points[index] <= points[index + 2], !isRangeMarker[index + 2] else { return nil }
                ranges.append(points[index]...points[index + 2])
                index += 3
            } else {
                guard !isRangeMarker[index] else { return nil }
                ranges.append(points[index]...points[index])
                index += 1
            }
        }
        return ranges
    }
}

enum SchemaFormat: Sendable {
    case date
    case dateTime
}

struct SchemaNode: Sendable {
    /// `file.json#/pointer` of this subschema.
    let location: String
    let rejection: RejectionCode?
    /// The boolean schema `false` (or a subschema that can never pass).
    let alwaysFails: Bool
    let keywords: [SchemaKeyword]
}

enum SchemaKeyword: Sendable {
    case type(Set<String>)
    /// `enum` whose members are all strings: a set lookup instead of a scan (the currency list).
    case stringEnumeration(Set<String>, display: [String])
    case enumeration([JSONValue])
    case constant(JSONValue)
    case required([String])
    case properties(named: [String: Int], patterns: [(CompiledPattern, Int)], additional: Int?)
    case propertyNames(Int)
    case dependentRequired([(String, [String])])
    case minProperties(Int)
    case maxProperties(Int)
    case items(Int, from: Int)
    case prefixItems([Int])
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case minLength(Int)
    case maxLength(Int)
    case pattern(CompiledPattern)
    case format(SchemaFormat)
    case minimum(String)
    case maximum(String)
    case exclusiveMinimum(String)
    case exclusiveMaximum(String)
    case allOf([Int])
    case anyOf([Int])
    case oneOf([Int])
    case not(Int)
    case conditional(if: Int, then: Int?, else: Int?)
    case reference(Int)

    /// The keyword's name, for schema paths.
    var name: String {
        switch self {
        case .type: return "type"
        case .stringEnumeration, .enumeration: return "enum"
        case .constant: return "const"
        case .required: return "required"
        case .properties: return "properties"
        case .propertyNames: return "propertyNames"
        case .dependentRequired: return "dependentRequired"
        case .minProperties: return "minProperties"
        case .maxProperties: return "maxProperties"
        case .items: return "items"
        case .prefixItems: return "prefixItems"
        case .minItems: return "minItems"
        case .maxItems: return "maxItems"
        case .uniqueItems: return "uniqueItems"
        case .minLength: return "minLength"
        case .maxLength: return "maxLength"
        case .pattern: return "pattern"
        case .format: return "format"
        case .minimum: return "minimum"
        case .maximum: return "maximum"
        case .exclusiveMinimum: return "exclusiveMinimum"
        case .exclusiveMaximum: return "exclusiveMaximum"
        case .allOf: return "allOf"
        case .anyOf: return "anyOf"
        case .oneOf: return "oneOf"
        case .not: return "not"
        case .conditional: return "if"
        case .reference: return "$ref"
        }
    }
}

/// Turns schema JSON into `SchemaNode`s. A subschema is compiled once per location; a `$ref`
/// cycle is fine because a node's index is reserved before its children are compiled.
struct SchemaCompiler {
    let documents: [String: JSONValue]
    var nodes: [SchemaNode?] = []
    var indexByLocation: [String: Int] = [:]

    init(documents: [String: JSONValue]) { self.documents = documents }

    mutating func compile(document: String, pointer: String) throws(SchemaCompileError) -> Int {
        let location = document + "#" + pointer
        if let existing = indexByLocation[location] { return existing }
        guard let root = documents[document] else {
            throw SchemaCompileError(location: location, problem: "no such schema document")
        }
        guard let schema = SchemaCompiler.resolve(pointer: pointer, in: root) else {
            throw SchemaCompileError(location: location, problem: "JSON pointer does not resolve")
        }
        let index = nodes.count
        nodes.append(nil)
        indexByLocation[location] = index
        nodes[index] = try build(schema, document: document, pointer: pointer)
        return index
    }

    static func resolve(pointer: String, in root: JSONValue) -> JSONValue? {
        guard !pointer.isEmpty else { return root }
        guard pointer.hasPrefix("/") else { return nil }
        var current = root
        for rawToken in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let token = rawToken.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch current {
            case .object(let object):
                guard let next = object[token] else { return nil }
                current = next
            case .array(let elements):
                guard let position = Int(token), elements.indices.contains(position) else { return nil }
                current = elements[position]
            case .null, .bool, .number, .string:
                return nil
            }
        }
        return current
    }

    static func escape(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    func fail(_ document: String, _ pointer: String, _ problem: String) -> SchemaCompileError {
        SchemaCompileError(location: document + "#" + pointer, problem: problem)
    }

    func nonNegativeInteger(_ value: JSONValue, _ document: String, _ pointer: String) throws(SchemaCompileError) -> Int {
        guard case .number(let lexeme) = value, let integer = Int(lexeme), integer >= 0 else {
            throw fail(document, pointer, "expected a non-negative integer")
        }
        return integer
    }

    func number(_ value: JSONValue, _ document: String, _ pointer: String) throws(SchemaCompileError) -> String {
        guard case .number(let lexeme) = value else { throw fail(document, pointer, "expected a number") }
        return lexeme
    }

    func strings(_ value: JSONValue, _ document: String, _ pointer: String) throws(SchemaCompileError) -> [String] {
        guard case .array(let elements) = value else { throw fail(document, pointer, "expected an array of strings") }
        var result: [String] = []
        for element in elements {
            guard case .string(let text) = element else { throw fail(document, pointer, "expected an array of strings") }
            result.append(text)
        }
        return result
    }

    func regex(_ source: String, _ document: String, _ pointer: String) throws(SchemaCompileError) -> CompiledPattern {
        do {
            return CompiledPattern(source: source, expression: try NSRegularExpression(pattern: source, options: []))
        } catch {
            throw fail(document, pointer, "pattern does not compile: \(error)")
        }
    }

    mutating func subschemas(_ value: JSONValue, _ document: String, _ pointer: String) throws(SchemaCompileError) -> [Int] {
        guard case .array(let elements) = value, !elements.isEmpty else {
            throw fail(document, pointer, "expected a non-empty array of schemas")
        }
        var result: [Int] = []
        for position in elements.indices {
            result.append(try compile(document: document, pointer: pointer + "/\(position)"))
        }
        return result
    }

    mutating func build(_ schema: JSONValue, document: String, pointer: String) throws(SchemaCompileError) -> SchemaNode {
        let location = document + "#" + pointer
        switch schema {
        case .bool(let accepts):
            return SchemaNode(location: location, rejection: nil, alwaysFails: !accepts, keywords: [])
        case .object(let object):
            var keywords: [SchemaKeyword] = []
            var rejection: RejectionCode?
            if let annotation = object["x-rejection"] {
                guard case .string(let code) = annotation else { throw fail(document, pointer, "x-rejection must be a string") }
                rejection = RejectionCode(rawValue: code)
            }
            var namedProperties: [String: Int] = [:]
            var patternProperties: [(CompiledPattern, Int)] = []
            var additionalProperties: Int?
            var hasObjectMembers = false
            var prefixCount = 0
            if case .array(let prefix)? = object["prefixItems"] { prefixCount = prefix.count }
            for member in object {
                let at = pointer + "/" + SchemaCompiler.escape(member.key)
                let value = member.value
                switch member.key {
                case "type":
                    switch value {
                    case .string(let name): keywords.append(.type([name]))
                    case .array: keywords.append(.type(Set(try strings(value, document, at))))
                    case .null, .bool, .number, .object: throw fail(document, at, "type must be a string or array")
                    }
                case "enum":
                    guard case .array(let options) = value else { throw fail(document, at, "enum must be an array") }
                    let texts = options.compactMap(\.stringValue)
                    if texts.count == options.count {
                        keywords.append(.stringEnumeration(Set(texts), display: texts))
                    } else {
                        keywords.append(.enumeration(options))
                    }
                case "const": keywords.append(.constant(value))
                case "required": keywords.append(.required(try strings(value, document, at)))
                case "properties":
                    guard case .object(let properties) = value else { throw fail(document, at, "properties must be an object") }
                    for property in properties {
                        namedProperties[property.key] = try compile(document: document, pointer: at + "/" + SchemaCompiler.escape(property.key))
                    }
                    hasObjectMembers = true
                case "patternProperties":
                    guard case .object(let patterns) = value else { throw fail(document, at, "patternProperties must be an object") }
                    for pattern in patterns {
                        let compiled = try regex(pattern.key, document, at)
                        patternProperties.append((compiled, try compile(document: document, pointer: at + "/" + SchemaCompiler.escape(pattern.key))))
                    }
                    hasObjectMembers = true
                case "additionalProperties":
                    additionalProperties = try compile(document: document, pointer: at)
                    hasObjectMembers = true
                case "propertyNames": keywords.append(.propertyNames(try compile(document: document, pointer: at)))
                case "dependentRequired":
                    guard case .object(let dependencies) = value else { throw fail(document, at, "dependentRequired must be an object") }
                    var pairs: [(String, [String])] = []
                    for dependency in dependencies {
                        pairs.append((dependency.key, try strings(dependency.value, document, at)))
                    }
                    keywords.append(.dependentRequired(pairs))
                case "minProperties": keywords.append(.minProperties(try nonNegativeInteger(value, document, at)))
                case "maxProperties": keywords.append(.maxProperties(try nonNegativeInteger(value, document, at)))
                case "items": keywords.append(.items(try compile(document: document, pointer: at), from: prefixCount))
                case "prefixItems": keywords.append(.prefixItems(try subschemas(value, document, at)))
                case "minItems": keywords.append(.minItems(try nonNegativeInteger(value, document, at)))
                case "maxItems": keywords.append(.maxItems(try nonNegativeInteger(value, document, at)))
                case "uniqueItems":
                    if value == .bool(true) { keywords.append(.uniqueItems) }
                case "minLength": keywords.append(.minLength(try nonNegativeInteger(value, document, at)))
                case "maxLength": keywords.append(.maxLength(try nonNegativeInteger(value, document, at)))
                case "pattern":
                    guard case .string(let source) = value else { throw fail(document, at, "pattern must be a string") }
                    keywords.append(.pattern(try regex(source, document, at)))
                case "format":
                    switch value.stringValue {
                    case "date": keywords.append(.format(.date))
                    case "date-time": keywords.append(.format(.dateTime))
                    default: break  // unknown formats are annotations, as in the standard
                    }
                case "minimum": keywords.append(.minimum(try number(value, document, at)))
                case "maximum": keywords.append(.maximum(try number(value, document, at)))
                case "exclusiveMinimum": keywords.append(.exclusiveMinimum(try number(value, document, at)))
                case "exclusiveMaximum": keywords.append(.exclusiveMaximum(try number(value, document, at)))
                case "allOf": keywords.append(.allOf(try subschemas(value, document, at)))
                case "anyOf": keywords.append(.anyOf(try subschemas(value, document, at)))
                case "oneOf": keywords.append(.oneOf(try subschemas(value, document, at)))
                case "not": keywords.append(.not(try compile(document: document, pointer: at)))
                case "if":
                    let condition = try compile(document: document, pointer: at)
                    let then: Int? = object["then"] == nil ? nil : try compile(document: document, pointer: pointer + "/then")
                    let otherwise: Int? = object["else"] == nil ? nil : try compile(document: document, pointer: pointer + "/else")
                    keywords.append(.conditional(if: condition, then: then, else: otherwise))
                case "$ref":
                    guard case .string(let reference) = value else { throw fail(document, at, "$ref must be a string") }
                    let parts = reference.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                    let target = parts[0].isEmpty ? document : String(parts[0])
                    let targetPointer = parts.count > 1 ? String(parts[1]) : ""
                    keywords.append(.reference(try compile(document: target, pointer: targetPointer)))
                default:
                    break  // annotations, $defs (compiled when referenced), then/else (with if), unknown keywords
                }
            }
            if hasObjectMembers {
                keywords.append(.properties(named: namedProperties, patterns: patternProperties, additional: additionalProperties))
            }
            return SchemaNode(location: location, rejection: rejection, alwaysFails: false, keywords: keywords)
        case .null, .number, .string, .array:
            throw fail(document, pointer, "a schema must be an object or a boolean")
        }
    }
}

/// One evaluation of an instance; collects failures when `collecting`, else stops at the first.
struct ValidationRun {
    let nodes: [SchemaNode]
    let collecting: Bool
    var failures: [SchemaFailure] = []
    var instancePath: [String] = []

    init(nodes: [SchemaNode], collecting: Bool) {
        self.nodes = nodes
        self.collecting = collecting
    }

    /// `message` is built only when failures are collected: the quiet runs inside
    /// anyOf/oneOf/not/if fail often and must stay cheap.
    mutating func record(_ node: SchemaNode, _ keyword: String, _ rejection: RejectionCode?, _ message: @autoclosure () -> String) {
        guard collecting else { return }
        let pointer = instancePath.map { "/" + SchemaCompiler.escape($0) }.joined()
        failures.append(SchemaFailure(instancePath: pointer, schemaPath: node.location + "/" + keyword,
                                      rejection: rejection ?? .schemaViolation, message: message()))
    }

    /// Evaluates a subschema for its verdict only (inside anyOf/oneOf/not/if).
    func passes(_ instance: JSONValue, node: Int) -> Bool {
        var quiet = ValidationRun(nodes: nodes, collecting: false)
        return quiet.evaluate(instance, node: node, inherited: nil)
    }

    mutating func evaluate(_ instance: JSONValue, node index: Int, inherited: RejectionCode?) -> Bool {
        let node = nodes[index]
        let rejection = node.rejection ?? inherited
        if node.alwaysFails {
            record(node, "false", rejection, "is not allowed")
            return false
        }
        var valid = true
        for keyword in node.keywords {
            let passed = check(keyword, instance, node, rejection)
            if !passed {
                valid = false
                if !collecting { return false }
            }
        }
        return valid
    }

    mutating func descend(_ token: String, _ instance: JSONValue, _ node: Int, _ rejection: RejectionCode?) -> Bool {
        instancePath.append(token)
        defer { instancePath.removeLast() }
        return evaluate(instance, node: node, inherited: rejection)
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    mutating func check(_ keyword: SchemaKeyword, _ instance: JSONValue, _ node: SchemaNode, _ rejection: RejectionCode?) -> Bool {
        switch keyword {
        case .type(let allowed):
            let actual = instance.typeName
            if allowed.contains(actual) || (actual == "integer" && allowed.contains("number")) { return true }
            record(node, "type", rejection, "must be \(allowed.sorted().joined(separator: " or ")), not \(actual == "integer" ? "number" : actual)")
            return false
        case .stringEnumeration(let options, let display):
            if case .string(let text) = instance, options.contains(text) { return true }
            record(node, "enum", rejection, "must be one of \(ValidationRun.list(display))")
            return false
        case .enumeration(let options):
            if options.contains(instance) { return true }
            record(node, "enum", rejection, "must be one of the allowed values")
            return false
        case .constant(let expected):
            if instance == expected { return true }
            record(node, "const", rejection, "must be \(JSONSerializer.serializeToString(expected))")
            return false
        case .required(let names):
            guard case .object(let object) = instance else { return true }
            var valid = true
            for name in names where object[name] == nil {
                valid = false
                instancePath.append(name)
                record(node, "required", rejection, "is required")
                instancePath.removeLast()
                if !collecting { return false }
            }
            return valid
        case .properties(let named, let patterns, let additional):
            guard case .object(let object) = instance else { return true }
            var valid = true
            for member in object {
                var matched = false
                if let propertyNode = named[member.key] {
                    matched = true
                    if !descend(member.key, member.value, propertyNode, rejection) {
                        valid = false
                        if !collecting { return false }
                    }
                }
                for (pattern, patternNode) in patterns where pattern.matches(member.key) {
                    matched = true
                    if !descend(member.key, member.value, patternNode, rejection) {
                        valid = false
                        if !collecting { return false }
                    }
                }
                if !matched, let additional {
                    let additionalNode = nodes[additional]
                    if additionalNode.alwaysFails {
                        instancePath.append(member.key)
                        record(node, "additionalProperties", additionalNode.rejection ?? rejection, "is not an allowed field")
                        instancePath.removeLast()
                        valid = false
                        if !collecting { return false }
                    } else if !descend(member.key, member.value, additional, rejection) {
                        valid = false
                        if !collecting { return false }
                    }
                }
            }
            return valid
        case .propertyNames(let namesNode):
            guard case .object(let object) = instance else { return true }
            for member in object where !passes(.string(member.key), node: namesNode) {
                instancePath.append(member.key)
                record(node, "propertyNames", rejection, "is not an allowed field name")
                instancePath.removeLast()
                return false
            }
            return true
        case .dependentRequired(let dependencies):
            guard case .object(let object) = instance else { return true }
            for (trigger, needed) in dependencies where object[trigger] != nil {
                for name in needed where object[name] == nil {
                    instancePath.append(name)
                    record(node, "dependentRequired", rejection, "is required when \(trigger) is present")
                    instancePath.removeLast()
                    return false
                }
            }
            return true
        case .minProperties(let minimum):
            guard case .object(let object) = instance, object.count < minimum else { return true }
            record(node, "minProperties", rejection, "must have at least \(minimum) fields")
            return false
        case .maxProperties(let maximum):
            guard case .object(let object) = instance, object.count > maximum else { return true }
            record(node, "maxProperties", rejection, "must have at most \(maximum) fields")
            return false
        case .items(let itemNode, let start):
            guard case .array(let elements) = instance, elements.count > start else { return true }
            var valid = true
            for position in start..<elements.count where !descend(String(position), elements[position], itemNode, rejection) {
                valid = false
                if !collecting { return false }
            }
            return valid
        case .prefixItems(let prefixNodes):
            guard case .array(let elements) = instance else { return true }
            var valid = true
            for (position, prefixNode) in prefixNodes.enumerated() where position < elements.count {
                if !descend(String(position), elements[position], prefixNode, rejection) {
                    valid = false
                    if !collecting { return false }
                }
            }
            return valid
        case .minItems(let minimum):
            guard case .array(let elements) = instance, elements.count < minimum else { return true }
            record(node, "minItems", rejection, "must have at least \(minimum) items")
            return false
        case .maxItems(let maximum):
            guard case .array(let elements) = instance, elements.count > maximum else { return true }
            record(node, "maxItems", rejection, "must have at most \(maximum) items")
            return false
        case .uniqueItems:
            guard case .array(let elements) = instance, elements.count > 1 else { return true }
            if Set(elements).count == elements.count { return true }
            record(node, "uniqueItems", rejection, "must not repeat an item")
            return false
        case .minLength(let minimum):
            guard case .string(let text) = instance else { return true }
            if text.utf8.count >= minimum * 4 || text.unicodeScalars.count >= minimum { return true }
            record(node, "minLength", rejection, minimum == 1 ? "must not be empty" : "must be at least \(minimum) characters")
            return false
        case .maxLength(let maximum):
            guard case .string(let text) = instance else { return true }
            if text.utf8.count <= maximum || text.unicodeScalars.count <= maximum { return true }
            record(node, "maxLength", rejection, "must be at most \(maximum) characters")
            return false
        case .pattern(let pattern):
            guard case .string(let text) = instance else { return true }
            if pattern.matches(text) { return true }
            record(node, "pattern", rejection, "\(ValidationRun.quote(text)) is not in the required form")
            return false
        case .format(let format):
            guard case .string(let text) = instance else { return true }
            switch format {
            case .date:
                if BusinessDate(text) != nil { return true }
                record(node, "format", rejection, "\(ValidationRun.quote(text)) is not a calendar date")
            case .dateTime:
                if Instant(rfc3339: text) != nil { return true }
                record(node, "format", rejection, "\(ValidationRun.quote(text)) is not an RFC 3339 date-time")
            }
            return false
        case .minimum(let bound):
            guard case .number(let lexeme) = instance, JSONNumber.compare(lexeme, bound) < 0 else { return true }
            record(node, "minimum", rejection, "must be at least \(bound)")
            return false
        case .maximum(let bound):
            guard case .number(let lexeme) = instance, JSONNumber.compare(lexeme, bound) > 0 else { return true }
            record(node, "maximum", rejection, "must be at most \(bound)")
            return false
        case .exclusiveMinimum(let bound):
            guard case .number(let lexeme) = instance, JSONNumber.compare(lexeme, bound) <= 0 else { return true }
            record(node, "exclusiveMinimum", rejection, "must be greater than \(bound)")
            return false
        case .exclusiveMaximum(let bound):
            guard case .number(let lexeme) = instance, JSONNumber.compare(lexeme, bound) >= 0 else { return true }
            record(node, "exclusiveMaximum", rejection, "must be less than \(bound)")
            return false
        case .allOf(let parts):
            var valid = true
            for part in parts where !evaluate(instance, node: part, inherited: rejection) {
                valid = false
                if !collecting { return false }
            }
            return valid
        case .anyOf(let options):
            if options.contains(where: { passes(instance, node: $0) }) { return true }
            record(node, "anyOf", rejection, "matches none of the allowed shapes")
            return false
        case .oneOf(let options):
            let matching = options.filter { passes(instance, node: $0) }.count
            if matching == 1 { return true }
            record(node, "oneOf", rejection, matching == 0 ? "matches none of the allowed shapes" : "matches more than one of the exclusive shapes")
            return false
        case .not(let forbidden):
            if !passes(instance, node: forbidden) { return true }
            record(node, "not", rejection, "has a form that is not allowed here")
            return false
        case .conditional(let condition, let then, let otherwise):
            if passes(instance, node: condition) {
                guard let then else { return true }
                return evaluate(instance, node: then, inherited: rejection)
            } else {
                guard let otherwise else { return true }
                return evaluate(instance, node: otherwise, inherited: rejection)
            }
        case .reference(let target):
            return evaluate(instance, node: target, inherited: rejection)
        }
    }

    static func quote(_ text: String) -> String {
        let shown = text.unicodeScalars.count > 40 ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(40))) + "…" : text
        return "\"" + shown.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined() + "\""
    }

    static func list(_ options: [String]) -> String {
        options.count <= 12 ? options.joined(separator: ", ") : options.prefix(12).joined(separator: ", ") + ", …"
    }
}
