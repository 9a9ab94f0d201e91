import ARContract
import ARDomain

/// A report for the AR team: titled sections of rows, rendered alike as a text table, CSV,
/// JSON or HTML. Each report kind (aging, DSO, unapplied, and later exceptions) only builds
/// sections; the renderers are shared.
public struct ReportDocument: Sendable {
    public struct Column: Sendable {
        public let name: String
        public let key: String
        public let isAmount: Bool
        public init(_ name: String, key: String, isAmount: Bool = false) { self.name = name; self.key = key; self.isAmount = isAmount }
    }

    /// A bar chart drawn as inline SVG: one bar per label (amounts in minor units).
    public struct Chart: Sendable {
        public let caption: String
        public let bars: [(label: String, value: Int64, text: String)]
        public init(caption: String, bars: [(label: String, value: Int64, text: String)]) { self.caption = caption; self.bars = bars }
    }

    public struct Section: Sendable {
        public let id: String
        public let heading: String
        public let note: String?
        public let columns: [Column]
        public let rows: [[String]]
        /// The last row is a total (bold in HTML).
        public let hasTotal: Bool
        public let chart: Chart?
        public init(id: String, heading: String, note: String? = nil, columns: [Column], rows: [[String]], hasTotal: Bool, chart: Chart? = nil) {
            self.id = id
            self.heading = heading
            self.note = note
            self.columns = columns
            self.rows = rows
            self.hasTotal = hasTotal
            self.chart = chart
        }
    }

    public let kind: String
    public let title: String
    public let asOf: BusinessDate
    public let generatedAt: Instant
    public let sections: [Section]

    public init(kind: String, title: String, asOf: BusinessDate, generatedAt: Instant, sections: [Section]) {
        self.kind = kind
        self.title = title
        self.asOf = asOf
        self.generatedAt = generatedAt
        self.sections = sections
    }

    public enum Format: String, Sendable, CaseIterable { case table, csv, json, html }

    public func render(_ format: Format) -> String {
        switch format {
        case .table: return table()
        case .csv: return csv()
        case .json: return JSONSerializer.serializeToString(json()) + "\n"
        case .html: return ReportDocument.html([self], title: title)
        }
    }

    func table() -> String {
        var out = "\(title), as of \(asOf)\n"
        for section in sections {
            out += "\n\(section.heading)\n"
            if let note = section.note { out += note + "\n" }
            let all = [section.columns.map(\.name)] + section.rows
            let widths = section.columns.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
            for (index, row) in all.enumerated() {
                if section.hasTotal && index == all.count - 1 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
                out += row.enumerated().map { column, cell in
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return section.columns[column].isAmount ? pad + cell : cell + pad
                }.joined(separator: "  ") + "\n"
            }
        }
        return out
    }

    func csv() -> String {
        var rows: [[String]] = []
        var header: [String]?
        for section in sections {
            // A header row wherever the shape changes (a report may have summary and detail sections).
            let keys = ["report", "section"] + section.columns.map(\.key)
            if keys != header { rows.append(keys); header = keys }
            for row in section.rows { rows.append([kind, section.id] + row) }
        }
        if rows.isEmpty { rows.append(["report", "section"]) }
        return CSV.render(rows)
    }

    public func json() -> JSONValue {
        .object(JSONObject([
            ("report", .string(kind)), ("as_of", .string(asOf.description)), ("generated_at", .string(generatedAt.description)),
            ("sections", .array(sections.map { section in
                .object(JSONObject([
                    ("id", .string(section.id)), ("heading", .string(section.heading)),
                    ("rows", .array(section.rows.enumerated().map { index, row in
                        var members = zip(section.columns, row).map { ($0.key, JSONValue.string($1)) }
                        if section.hasTotal && index == section.rows.count - 1 { members.append(("is_total", .bool(true))) }
                        return .object(JSONObject(members))
                    })),
                ]))
            })),
        ]))
    }

    /// One HTML page with the sections of several reports (the AR team's daily page).
    public static func html(_ reports: [ReportDocument], title: String) -> String {
        let sections: [[String: Any]] = reports.flatMap { report in
            report.sections.map { section -> [String: Any] in
                var context: [String: Any] = [
                    "id": "\(report.kind)-\(section.id)", "heading": section.heading,
                    "columns": section.columns.map { ["name": $0.name, "class": $0.isAmount ? "money" : ""] },
                    "rows": section.rows.enumerated().map { index, row -> [String: Any] in
                        ["class": section.hasTotal && index == section.rows.count - 1 ? "total" : "",
                         "cells": zip(section.columns, row).map { ["text": $1, "class": $0.isAmount ? "money" : ""] }]
                    },
                ]
                if let note = section.note { context["note"] = note }
                if let chart = section.chart { context["chart"] = chartContext(chart) }
                return context
            }
        }
        return DocumentTemplates.render("report.html", [
            "title": title, "as_of": reports.first?.asOf.description ?? "", "generated_at": reports.first?.generatedAt.description ?? "",
            "sections": sections,
        ])
    }

    /// Bar geometry in whole pixels, scaled to the largest bar with integer arithmetic.
    static func chartContext(_ chart: Chart) -> [String: Any] {
        let barWidth = 80, gap = 30, plotHeight = 180, top = 20, labelSpace = 40
        let largest = max(chart.bars.map(\.value).max() ?? 0, 1)
        let colors = ["#4c9f70", "#e0b040", "#e08040", "#d05030", "#902020", "#606060"]
        let bars: [[String: Any]] = chart.bars.enumerated().map { index, bar in
            // value ≤ 10^15 and plotHeight < 2^8: the product stays within 64 bits.
            let height = Int(max(bar.value, 0) * Int64(plotHeight) / largest)
            let x = gap + index * (barWidth + gap)
            return ["x": x, "y": top + plotHeight - height, "bar_width": barWidth, "bar_height": height,
                    "color": colors[index % colors.count], "label": bar.label, "label_x": x + barWidth / 2,
                    "label_y": top + plotHeight + 16, "value_y": top + plotHeight + 32, "value": bar.text]
        }
        return ["caption": chart.caption, "bars": bars, "width": gap + chart.bars.count * (barWidth + gap),
                "height": top + plotHeight + labelSpace]
    }
}

/// The three reports of issue 11, from what the Store reads. Adding a report (issue 9's
/// exceptions) is one more function returning a ReportDocument and one line in ReportCommand.
public enum ARReportDocuments {
    static let agingColumns: [ReportDocument.Column] = [
        .init("Customer", key: "customer_id"), .init("Name", key: "name"), .init("Current", key: "current", isAmount: true),
        .init("1-30", key: "days_1_30", isAmount: true), .init("31-60", key: "days_31_60", isAmount: true),
        .init("61-90", key: "days_61_90", isAmount: true), .init("90+", key: "days_over_90", isAmount: true),
        .init("Total", key: "total", isAmount: true),
    ]

    public static func aging(_ rows: [CustomerAging], asOf: BusinessDate, generatedAt: Instant) -> ReportDocument {
        let sections = AgingReport.totals(rows).map { currency, totals -> ReportDocument.Section in
            let body = rows.filter { $0.currency == currency }.map { row in
                [row.customerID, row.customerName] + (row.buckets.all + [row.buckets.total]).map { Money.text($0, currency) }
            }
            let total = ["TOTAL", ""] + (totals.all + [totals.total]).map { Money.text($0, currency) }
            let chart = ReportDocument.Chart(caption: "Receivable by days past due, \(currency.code)", bars: zip(AgingBuckets.labels, totals.all).map {
                ($0, $1, Money.text($1, currency))
            })
            return .init(id: currency.code, heading: "Aging \(currency.code)", columns: agingColumns, rows: body + [total], hasTotal: true, chart: chart)
        }
        return ReportDocument(kind: "aging", title: "Receivable aging by customer", asOf: asOf, generatedAt: generatedAt, sections: sections)
    }

    public static func unapplied(_ rows: [CustomerAging], asOf: BusinessDate, generatedAt: Instant) -> ReportDocument {
        let columns: [ReportDocument.Column] = [
            .init("Customer", key: "customer_id"), .init("Name", key: "name"), .init("0-30 days", key: "days_0_30", isAmount: true),
            .init("31-60", key: "days_31_60", isAmount: true), .init("61-90", key: "days_61_90", isAmount: true),
            .init("90+", key: "days_over_90", isAmount: true), .init("Total", key: "total", isAmount: true),
        ]
        let sections = AgingReport.totals(rows).map { currency, totals -> ReportDocument.Section in
            func cells(_ b: AgingBuckets) -> [String] { [b.days1to30, b.days31to60, b.days61to90, b.over90, b.total].map { Money.text($0, currency) } }
            let body = rows.filter { $0.currency == currency }.map { [$0.customerID, $0.customerName] + cells($0.buckets) }
            return .init(id: currency.code, heading: "Unapplied cash \(currency.code)",
                         note: "Aged first in, first out over the unapplied-credit movements of the journal.",
                         columns: columns, rows: body + [["TOTAL", ""] + cells(totals)], hasTotal: true)
        }
        return ReportDocument(kind: "unapplied", title: "Unapplied cash by customer and age", asOf: asOf, generatedAt: generatedAt, sections: sections)
    }

    public static func dso(_ results: [(currency: Currency, result: DaysSalesOutstanding.Result)], asOf: BusinessDate, generatedAt: Instant) -> ReportDocument {
        let columns: [ReportDocument.Column] = [
            .init("Period", key: "period"), .init("Days", key: "days", isAmount: true), .init("Sales", key: "sales", isAmount: true),
        ]
        let sections = results.map { currency, result -> ReportDocument.Section in
            let rows = result.periods.map { [$0.period.first.description + " to " + $0.period.last.description, String($0.period.days), Money.text($0.sales, currency)] }
            return .init(id: currency.code, heading: "DSO \(currency.code): \(result.text) days (receivable \(Money.text(result.receivable, currency)))",
                         note: "Countback: months back from the as-of date, whole months while the receivable left covers their invoiced sales, then the fraction of the month that covers the rest.",
                         columns: columns, rows: rows + [["DSO (receivable \(Money.text(result.receivable, currency)))", result.text, ""]], hasTotal: true)
        }
        return ReportDocument(kind: "dso", title: "Days sales outstanding (countback)", asOf: asOf, generatedAt: generatedAt, sections: sections)
    }
}
