import AMQPClient
import ArgumentParser
import Daemon
import Store

struct DeadLetterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dead-letter", abstract: "Inspect and replay rejected messages.",
                                                    subcommands: [List.self, Replay.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Rejected messages, newest first: reason, detail, type, id, age.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only this rejection reason (e.g. schema_violation).") var reason: String?
        @Option(help: "Only this message id (CloudEvents id or dead-letter number).") var id: String?
        @Option(help: "At most this many rows.") var limit = 200

        func run() async throws {
            let store = Store(try await connection.database())
            let records: [DeadLetterRecord]
            do { records = try store.deadLetters(reason: reason, id: id, limit: limit) } catch { throw CommandFailure("\(error)") }
            print(Table.render(["#", "AGE", "REASON", "TYPE", "ID", "PUBLISHER", "REPLAYED", "DETAIL"], records.map {
                [String($0.number), Table.age($0.ageSeconds), $0.reason, $0.type ?? "?", $0.eventID ?? "?", $0.userID ?? "?",
                 $0.replayedAt ?? "", Redaction.mask($0.detail)]
            }))
            print("\(records.count) dead letter(s)")
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Republish dead letters to the inbound exchange after a fix; they still de-duplicate.",
            discussion: """
                The message is published as the daemon's broker user with header x-original-user-id; the daemon
                authorises a replay against that original publisher (only holders of the daemon's credentials can
                publish as the daemon, which the broker verifies).
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Replay only this rejection reason.") var reason: String?
        @Option(help: "Replay only this message id (CloudEvents id or dead-letter number).") var id: String?
        @Flag(help: "Replay messages already replayed once.") var again = false

        func validate() throws {
            if reason == nil && id == nil { throw ValidationError("name what to replay with --reason and/or --id") }
        }

        func run() async throws {
            let configuration = try await connection.load()
            let store = Store(try await connection.database())
            do {
                let records = try store.deadLetters(reason: reason, id: id, includeReplayed: again, limit: 100_000).reversed()
                let broker = try AMQPConnection(configuration.broker)
                try broker.enableConfirms()
                var replayed = 0
                for record in records {
                    var headers: [String: AMQPFieldValue] = ["x-replayed-dead-letter": .string(String(record.number))]
                    if let user = record.userID { headers["x-original-user-id"] = .string(user) }
                    let tag = try broker.publish(exchange: configuration.topology.inboundExchange, routingKey: record.type ?? record.routingKey,
                                                 body: record.body,
                                                 properties: AMQPProperties(contentType: record.properties["content-type"] ?? "application/cloudevents+json",
                                                                            deliveryMode: 2, correlationID: record.properties["x-original-correlation-id"],
                                                                            replyTo: record.properties["x-original-reply-to"],
                                                                            userID: configuration.broker.user, headers: headers))
                    let outcome = try broker.awaitConfirms(through: tag, timeoutMilliseconds: 10_000)
                    guard outcome[tag] == .ack else { throw CommandFailure("broker did not confirm replay of dead letter \(record.number)") }
                    try store.markReplayed(record.number)
                    replayed += 1
                }
                broker.close()
                print("replayed \(replayed) message(s) to \(configuration.topology.inboundExchange)")
            } catch let error as CommandFailure {
                throw error
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }
}
