import ARContract
import ARDomain
import Documents

/// One HTTP response.
struct PortalResponse: Sendable {
    var status: Int
    var contentType: String
    var body: String

    static func text(_ status: Int, _ body: String) -> PortalResponse { PortalResponse(status: status, contentType: "text/plain; charset=utf-8", body: body) }
}

/// The read-only pages: each is built from the replies of the request/reply API only.
struct PortalPages: Sendable {
    let client: PortalClient

    /// Routes `GET /`, `/customers/{id}`, `/customers/{id}/statement.html|csv`.
    func respond(method: String, uri: String) -> PortalResponse {
        guard method == "GET" else { return .text(405, "read-only: GET only\n") }
        let (path, query) = URLText.split(uri)
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.isEmpty {
            return PortalResponse(status: 200, contentType: "text/html; charset=utf-8", body: """
                <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>receivablesd portal</title></head><body>
                <h1>receivablesd reference portal</h1><form method="get" action="/go"><label>Customer id <input name="customer"></label>
                <button type="submit">Open</button></form></body></html>
                """)
        }
        if parts == ["go"], let customer = query["customer"] {
            return PortalResponse(status: 303, contentType: "text/plain", body: "/customers/" + URLText.encode(customer))
        }
        guard parts.count >= 2, parts[0] == "customers", let customerID = URLText.decode(parts[1]), PortalPages.isIdentifier(customerID) else {
            return .text(404, "not found: try / or /customers/<id>\n")
        }
        let today = PortalClock.now().date()
        let from = query["from"].flatMap(BusinessDate.init) ?? BusinessDate(year: today.components.year, month: today.components.month, day: 1)!
        let to = query["to"].flatMap(BusinessDate.init) ?? today
        switch parts.count == 3 ? parts[2] : "" {
        case "": return page(customerID, from: from, to: to, cursor: query["cursor"], invoiceID: query["invoice"])
        case "statement.html": return document(customerID, from: from, to: to, format: "html")
        case "statement.csv": return document(customerID, from: from, to: to, format: "csv")
        default: return .text(404, "not found\n")
        }
    }

    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.count <= 128 && !text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }
    }

    func document(_ customerID: String, from: BusinessDate, to: BusinessDate, format: String) -> PortalResponse {
        do {
            let reply = try client.request("statement.requested", [
                ("customer_id", .string(customerID)), ("from", .string(from.description)), ("to", .string(to.description)), ("format", .string(format)),
            ], subject: customerID)
            if let error = reply["data"]?["error"] { return .text(400, "\(error["code"]?.stringValue ?? "error"): \(error["detail"]?.stringValue ?? "")\n") }
            guard let document = reply["data"]?["document"], let content = document["content"]?.stringValue,
                  let mediaType = document["media_type"]?.stringValue else { return .text(502, "the reply carries no document\n") }
            return PortalResponse(status: 200, contentType: mediaType, body: content)
        } catch {
            return .text(504, "\(error)\n")
        }
    }

    func page(_ customerID: String, from: BusinessDate, to: BusinessDate, cursor: String?, invoiceID: String?) -> PortalResponse {
        let base = "/customers/" + URLText.encode(customerID)
        let period = "from=\(from)&to=\(to)"
        var context: [String: Any] = [
            "customer_id": customerID, "name": customerID, "from": from.description, "to": to.description, "page_link": base,
            "statement_html_link": base + "/statement.html?" + period, "statement_csv_link": base + "/statement.csv?" + period,
        ]
        func failure(_ reply: JSONValue) -> String? {
            reply["data"]?["error"].map { "\($0["code"]?.stringValue ?? "error"): \($0["detail"]?.stringValue ?? "")" }
        }
        do {
            let summary = try client.request("account.summary.requested", [("customer_id", .string(customerID))], subject: customerID)
            if let error = failure(summary) {
                context["summary_error"] = error
            } else if let data = summary["data"] {
                context["name"] = data["name"]?.stringValue ?? customerID
                context["as_of"] = data["as_of"]?.stringValue ?? ""
                context["balances"] = PortalPages.objects(data["balances"])
                context["open_invoices"] = (data["open_invoices"]?.arrayValue ?? []).map { invoice -> [String: Any] in
                    var row = PortalPages.flat(invoice)
                    row["payments_link"] = base + "?" + period + "&invoice=" + URLText.encode(invoice["invoice_id"]?.stringValue ?? "")
                    return row
                }
                if let next = data["next_due"], next != .null { context["next_due"] = PortalPages.flat(next) }
            }
            let statement = try client.request("statement.requested", [
                ("customer_id", .string(customerID)), ("from", .string(from.description)), ("to", .string(to.description)),
            ], subject: customerID)
            if let error = failure(statement) {
                context["statement_error"] = error
            } else {
                context["statements"] = (statement["data"]?["statements"]?.arrayValue ?? []).map { entry -> [String: Any] in
                    var row = PortalPages.flat(entry)
                    row["movements"] = PortalPages.objects(entry["movements"])
                    for key in AgingBuckets.keys { row["aging_" + key.replacingPrefix("days_", "")] = entry["aging"]?[key]?.stringValue ?? "" }
                    return row
                }
            }
            var history: [(String, JSONValue)] = [("customer_id", .string(customerID)), ("limit", .number("10"))]
            if let cursor, !cursor.isEmpty { history.append(("cursor", .string(cursor))) }
            if let invoiceID, !invoiceID.isEmpty {
                history.append(("invoice_id", .string(invoiceID)))
                context["invoice_filter"] = invoiceID
            }
            let payments = try client.request("payment_history.requested", history, subject: customerID)
            if let error = failure(payments) {
                context["history_error"] = error
            } else if let data = payments["data"] {
                context["payments"] = (data["payments"]?.arrayValue ?? []).map { payment -> [String: Any] in
                    var row = PortalPages.flat(payment)
                    row["allocations"] = PortalPages.objects(payment["allocations"])
                    row["refunds"] = PortalPages.objects(payment["refunds"])
                    return row
                }
                if let next = data["next_cursor"]?.stringValue {
                    var link = base + "?" + period + "&cursor=" + URLText.encode(next)
                    if let invoiceID { link += "&invoice=" + URLText.encode(invoiceID) }
                    context["older_link"] = link
                }
            }
        } catch {
            return .text(504, "\(error)\n")
        }
        return PortalResponse(status: 200, contentType: "text/html; charset=utf-8", body: DocumentTemplates.render("portal.html", context))
    }

    /// A JSON object's scalar members as template values (everything else left out).
    static func flat(_ value: JSONValue) -> [String: Any] {
        var row: [String: Any] = [:]
        for member in value.objectValue ?? JSONObject() {
            switch member.value {
            case .string(let text): row[member.key] = text
            case .number(let text): row[member.key] = text
            case .bool(let flag): if flag { row[member.key] = true }
            default: break
            }
        }
        return row
    }

    static func objects(_ value: JSONValue?) -> [[String: Any]] { (value?.arrayValue ?? []).map(flat) }
}

extension String {
    func replacingPrefix(_ prefix: String, _ replacement: String) -> String { hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self }
}

/// Percent-encoding for paths and query strings (RFC 3986 unreserved characters pass).
enum URLText {
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || "-._~".utf8.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 15)])
            }
        }
        return out
    }

    /// Nil for a malformed escape or bytes that are not UTF-8.
    static func decode(_ text: String, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Path and query parameters (the last of a repeated name wins).
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let pieces = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if pieces.count == 2 {
            for pair in pieces[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = URLText.decode(String(kv[0]), plusIsSpace: true) else { continue }
                query[key] = kv.count == 2 ? URLText.decode(String(kv[1]), plusIsSpace: true) : ""
            }
        }
        return (String(pieces[0]), query)
    }
}
