import ARContract
import ARDomain
import ArgumentParser
import Daemon
import Documents
import Store
#if canImport(Glibc)
import Glibc
#endif

/// `receivablesd statement --customer ID --from DATE --to DATE [--format json|csv|html] [--as-known-at INSTANT]`:
/// the statement of account the portal gets, from the journal as known now (or at an instant).
struct StatementCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "statement",
                                                    abstract: "Print a customer's statement of account (json, csv or printable html).")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Customer id.") var customer: String
    @Option(help: "First booking day (YYYY-MM-DD).") var from: String
    @Option(help: "Last booking day (YYYY-MM-DD).") var to: String
    @Option(help: "json, csv or html.") var format = "json"
    @Option(name: .customLong("as-known-at"), help: "RFC 3339 instant: the statement exactly as it could have been shown then.") var asKnownAt: String?
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func validate() throws {
        guard BusinessDate(from) != nil, BusinessDate(to) != nil else { throw ValidationError("--from and --to are dates YYYY-MM-DD") }
        guard DocumentFormat(rawValue: format) != nil else { throw ValidationError("--format is json, csv or html") }
        if let asKnownAt, Instant(rfc3339: asKnownAt) == nil { throw ValidationError("--as-known-at is an RFC 3339 instant") }
    }

    func run() async throws {
        let store = Store(try await connection.database())
        let statement: StatementOfAccount
        do {
            statement = try StatementReader.read(store: store, customerID: customer, from: BusinessDate(from)!, to: BusinessDate(to)!,
                                                 asKnownAt: asKnownAt.flatMap { Instant(rfc3339: $0) })
        } catch let error as RequestError {
            throw CommandFailure("\(error.code): \(error.detail)")
        } catch {
            throw CommandFailure("\(error)")
        }
        try emit(StatementDocument.render(statement, as: DocumentFormat(rawValue: format)!) + (format == "json" ? "\n" : ""), to: output)
    }
}

/// Prints `text`, or writes it to `path`.
func emit(_ text: String, to path: String?) throws {
    guard let path else {
        print(text, terminator: "")
        return
    }
    guard let file = fopen(path, "w") else { throw CommandFailure("cannot write \(path)") }
    defer { fclose(file) }
    let bytes = Array(text.utf8)
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw CommandFailure("cannot write \(path)") }
}
