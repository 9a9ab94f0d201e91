import ARContract
import Benchmark
import Foundation

/// Benchmark 2: a CloudEvents body through `InboundDecoder` (JSON parse, JSON Schema validation
/// against the embedded schemas, typed command), against parsing the same bytes alone, with the
/// project's `JSONParser` and with Foundation's `JSONSerialization`.
func registerEnvelopeBenchmarks() {
    let configuration = perItemConfiguration()
    for (type, body) in [("payment.succeeded", paymentSucceededBody), ("invoice.issued", invoiceIssuedBody)] {
        let bytes = Array(body.utf8)
        Benchmark("envelope: InboundDecoder.decode \(type) (\(bytes.count) bytes)", configuration: configuration) { benchmark, decoder in
            for _ in benchmark.scaledIterations {
                switch decoder.decode(body: bytes) {
                case .success(let message): blackHole(message)
                case .failure(let rejection): benchmark.error("\(type) is rejected: \(rejection)")
                }
            }
        } setup: {
            // Compiling the embedded schemas happens once per process in the daemon: not measured.
            try InboundDecoder()
        }
        Benchmark("envelope baseline: JSONParser.parse \(type)", configuration: configuration) { benchmark in
            let parser = JSONParser()
            for _ in benchmark.scaledIterations {
                do { blackHole(try parser.parse(bytes)) } catch { benchmark.error("\(type) does not parse: \(error)") }
            }
        }
        let data = Data(bytes)
        Benchmark("envelope baseline: JSONSerialization \(type)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                do { blackHole(try JSONSerialization.jsonObject(with: data)) } catch { benchmark.error("\(type) does not parse: \(error)") }
            }
        }
    }
}

/// A card payment from the gateway paying three invoices explicitly (the shape of
/// schemas/examples/valid/payment.succeeded/full.json with a card, as payment portals send them).
let paymentSucceededBody = """
    {
      "specversion": "1.0",
      "id": "evt-01JQ7ZK3W4V6R8N2B5C9D1F3G7",
      "source": "payment-gateway",
      "type": "payment.succeeded",
      "time": "2026-03-14T09:26:53.412Z",
      "datacontenttype": "application/json",
      "data": {
        "payment_id": "pay_3Oq8ZlK2eZvKYlo21Nx4Rt9p",
        "customer_id": "C-104711",
        "currency": "EUR",
        "amount": "4380.50",
        "method": "card",
        "received_at": "2026-03-14T09:26:50.123Z",
        "allocations": [
          { "invoice_id": "INV-2026-000412", "amount": "1250.00" },
          { "invoice_id": "INV-2026-000587", "amount": "2130.50" },
          { "invoice_id": "INV-2026-000611", "amount": "1000.00" }
        ],
        "card": { "token": "tok_1Oq8ZlK2eZvKYlo2x9f8e7d6", "brand": "visa", "last4": "4242" },
        "gateway_reference": "ch_3Oq8ZlK2eZvKYlo21Nx4Rt9p",
        "payout_id": "po_1Oq9AbK2eZvKYlo2Qw3Er5Ty"
      }
    }
    """

/// An invoice from the billing system with every optional field the schema allows.
let invoiceIssuedBody = """
    {
      "specversion": "1.0",
      "id": "evt-invoice-2026-000412",
      "source": "billing-erp",
      "type": "invoice.issued",
      "time": "2026-03-01T06:00:12Z",
      "datacontenttype": "application/json",
      "data": {
        "invoice_id": "INV-2026-000412",
        "customer_id": "C-104711",
        "number": "2026-000412",
        "currency": "EUR",
        "amount": "1250.00",
        "issue_date": "2026-03-01",
        "due_date": "2026-03-31",
        "payment_reference": "RF032026000412",
        "po_number": "PO-88231",
        "document_url": "https://erp.example/invoices/2026-000412.pdf"
      }
    }
    """
