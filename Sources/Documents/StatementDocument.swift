import ARContract
import ARDomain
import Mustache

/// The document formats a statement or report can be rendered in.
public enum DocumentFormat: String, Sendable, CaseIterable {
    case json, csv, html

    public var mediaType: String {
        switch self {
        case .json: return "application/json"
        case .csv: return "text/csv; charset=utf-8"
        case .html: return "text/html; charset=utf-8"
        }
    }
}

/// The project's templates (templates/*.mustache, embedded by scripts/embed-templates.sh).
/// Every `{{value}}` is HTML-escaped by swift-mustache (& < > " '); no template uses the
/// unescaped `{{{ }}}` form, because names and numbers come from publishers (a test checks).
public enum DocumentTemplates {
    public static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for file in EmbeddedTemplates.files {
            do { try library.register(file.text, named: file.name) } catch {
                preconditionFailure("template \(file.name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// The embedded template texts, by name (for the up-to-date test).
    public static var texts: [String: String] { Dictionary(uniqueKeysWithValues: EmbeddedTemplates.files.map { ($0.name, $0.text) }) }

    public static func render(_ name: String, _ context: [String: Any]) -> String {
        guard let text = library.render(context, withTemplate: name) else { preconditionFailure("no template \(name)") }
        return text
    }
}

extension Money {
    /// A signed amount with the currency's digits ("-12.50").
    static func text(_ minorUnits: Int64, _ currency: Currency) -> String { Money.format(minorUnits: minorUnits, digits: currency.minorUnitDigits) }
}

/// A statement of account as JSON (the `statement.reply` data), CSV and printable HTML.
public enum StatementDocument {
    /// The per-currency statements of `statement.reply` (schemas/statement.reply.json).
    public static func json(_ statement: StatementOfAccount) -> JSONValue {
        .array(statement.currencies.map { currency in
            let c = currency.currency
            let movements: [JSONValue] = currency.movements.map { movement in
                let posting = movement.posting
                var members: [(String, JSONValue)] = [
                    ("date", .string(posting.bookedOn.description)), ("booked_at", .string(posting.bookedAt.description)),
                    ("kind", .string(posting.kind.rawValue)), ("reference", .string(posting.reference)),
                    ("entry_id", .string(posting.entryID)),
                ]
                if let number = posting.documentNumber { members.append(("document_number", .string(number))) }
                if let date = posting.documentDate { members.append(("document_date", .string(date.description))) }
                members += [("amount", .string(Money.text(movement.amount, c))), ("running_balance", .string(Money.text(movement.runningBalance, c)))]
                return .object(JSONObject(members))
            }
            let aging = currency.aging
            return .object(JSONObject([
                ("currency", .string(c.code)), ("opening_balance", .string(Money.text(currency.openingBalance, c))),
                ("charges", .string(Money.text(currency.charges, c))), ("credits", .string(Money.text(currency.credits, c))),
                ("closing_balance", .string(Money.text(currency.closingBalance, c))),
                ("closing_receivable", .string(Money.text(currency.closingReceivable, c))),
                ("unapplied_credit", .string(Money.text(currency.closingCredit, c))),
                ("movements", .array(movements)),
                ("aging", .object(JSONObject(zip(AgingBuckets.keys, aging.all).map { ($0, .string(Money.text($1, c))) }))),
            ]))
        })
    }

    /// The whole statement as one JSON object (CLI `--format json`, same fields as the reply).
    public static func jsonDocument(_ statement: StatementOfAccount) -> JSONValue {
        .object(JSONObject([
            ("customer_id", .string(statement.customerID)), ("name", .string(statement.customerName)),
            ("from", .string(statement.from.description)), ("to", .string(statement.to.description)),
            ("as_known_at", .string(statement.asKnownAt.description)), ("statements", json(statement)),
        ]))
    }

    public static let csvColumns = ["customer_id", "currency", "line", "date", "kind", "reference", "document_number", "document_date",
                                    "amount", "running_balance"]

    /// RFC 4180 CSV: one opening row, one row per movement, one closing row per currency.
    public static func csv(_ statement: StatementOfAccount) -> String {
        var rows: [[String]] = [csvColumns]
        for currency in statement.currencies {
            let c = currency.currency
            rows.append([statement.customerID, c.code, "opening", statement.from.description, "", "", "", "", "",
                         Money.text(currency.openingBalance, c)])
            for movement in currency.movements {
                let p = movement.posting
                rows.append([statement.customerID, c.code, "movement", p.bookedOn.description, p.kind.rawValue, p.reference,
                             p.documentNumber ?? "", p.documentDate?.description ?? "", Money.text(movement.amount, c),
                             Money.text(movement.runningBalance, c)])
            }
            rows.append([statement.customerID, c.code, "closing", statement.to.description, "", "", "", "", "",
                         Money.text(currency.closingBalance, c)])
        }
        return CSV.render(rows)
    }

    static let kindLabels: [MovementKind: String] = [
        .invoice: "Invoice", .adjustment: "Invoice adjustment", .void: "Invoice voided", .writeOff: "Written off",
        .creditNote: "Credit note", .payment: "Payment", .refund: "Refund", .reversal: "Payment reversed",
        .bankCredit: "Bank transfer", .shortfallWriteOff: "Bank charges written off", .creditApplied: "Credit applied", .other: "Other",
    ]

    /// Printable HTML from templates/statement.html.mustache.
    public static func html(_ statement: StatementOfAccount) -> String {
        let currencies: [[String: Any]] = statement.currencies.map { currency in
            let c = currency.currency
            return [
                "currency": c.code, "opening": Money.text(currency.openingBalance, c), "charges": Money.text(currency.charges, c),
                "credits": Money.text(currency.credits, c), "closing": Money.text(currency.closingBalance, c),
                "receivable": Money.text(currency.closingReceivable, c), "credit": Money.text(currency.closingCredit, c),
                "movements": currency.movements.map { movement -> [String: Any] in
                    let p = movement.posting
                    var row: [String: Any] = [
                        "date": p.bookedOn.description, "kind": kindLabels[p.kind] ?? p.kind.rawValue, "reference": p.reference,
                        "document_date": p.documentDate?.description ?? "", "amount": Money.text(movement.amount, c),
                        "running_balance": Money.text(movement.runningBalance, c),
                    ]
                    if let number = p.documentNumber { row["number"] = number }
                    return row
                },
                "aging": zip(zip(AgingBuckets.labels, AgingBuckets.keys), currency.aging.all).map { pair, amount -> [String: Any] in
                    ["label": pair.0, "key": pair.1, "amount": Money.text(amount, c)]
                },
            ]
        }
        return DocumentTemplates.render("statement.html", [
            "customer_id": statement.customerID, "customer_name": statement.customerName, "from": statement.from.description,
            "to": statement.to.description, "as_known_at": statement.asKnownAt.description, "currencies": currencies,
        ])
    }

    public static func render(_ statement: StatementOfAccount, as format: DocumentFormat) -> String {
        switch format {
        case .json: return JSONSerializer.serializeToString(jsonDocument(statement))
        case .csv: return csv(statement)
        case .html: return html(statement)
        }
    }
}

/// RFC 4180 CSV with a guard against spreadsheet formula injection: a text cell that starts
/// with = + - @ or a control character gets a leading apostrophe. Amounts are written by us
/// and stay numbers ("-12.50"); only text a publisher chose can start a formula.
public enum CSV {
    public static func field(_ text: String, isAmount: Bool = false) -> String {
        var value = text
        if !isAmount, let first = value.unicodeScalars.first, "=+-@".unicodeScalars.contains(first) || first.value < 0x20 {
            value = "'" + value
        }
        let needsQuotes = value.contains(",") || value.contains("\"") || value.contains("\n") || value.contains("\r")
        return needsQuotes ? "\"" + value.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : value
    }

    /// Rows joined with CRLF; a cell is treated as an amount when it parses as a signed decimal.
    public static func render(_ rows: [[String]]) -> String {
        rows.map { row in row.map { field($0, isAmount: isDecimal($0)) }.joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    static func isDecimal(_ text: String) -> Bool {
        var scalars = Substring(text)
        if scalars.first == "-" { scalars = scalars.dropFirst() }
        guard let first = scalars.first, first.isASCII, first.isNumber else { return false }
        return scalars.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "." }
    }
}
