import ArgumentParser

/// `receivablesd`: the daemon and its operator tools. Commands parse arguments and delegate.
@main
struct Receivablesd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receivablesd",
        abstract: "Accounts-receivable engine: AMQP in, PostgreSQL books, events out.",
        subcommands: [
            ServeCommand.self, MigrateCommand.self, CheckConfigCommand.self, VerifyCommand.self,
            HeldCommand.self, DeadLetterCommand.self, BankCommand.self, ReconcileCommand.self, BenchCommand.self, DunningCommand.self,
            StatementCommand.self, ReportCommand.self, PartitionsCommand.self,
        ]
    )
}

/// `receivablesd bench …`: throughput and memory figures against a baseline from the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput and memory against a baseline measured in the same run.",
        subcommands: [BenchEndToEndCommand.self, BenchPipelineCommand.self, BenchBankCommand.self, BenchReadsCommand.self, BenchReconcileCommand.self, BenchPartitionsCommand.self]
    )
}

