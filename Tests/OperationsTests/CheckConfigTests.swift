import Foundation
import Testing
import TestSupport

/// `receivablesd check-config`: the effective configuration with secrets redacted; one line per
/// mistake and a non-zero exit for a broken file. Needs only the binary (no services).
@Suite struct CheckConfigTests {
    static func binary() throws -> String {
        guard let binary = ProcessInfo.processInfo.environment["RECEIVABLESD_BIN"], FileManager.default.isExecutableFile(atPath: binary) else {
            throw OpsError("RECEIVABLESD_BIN is not set to the built daemon: run the tests through `make test`")
        }
        return binary
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func temporaryFile(_ name: String, _ text: String) throws -> String {
        let directory = NSTemporaryDirectory() + "ops-check-config-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The documented file, with the policies file pointing into the checkout.
    static func documentedConfig() throws -> String {
        let text = try String(contentsOfFile: OpsEnvironment.repositoryRoot + "/config/receivablesd.yaml", encoding: .utf8)
            .replacingOccurrences(of: "policies_file: /etc/receivablesd/dunning-policies.yaml",
                                  with: "policies_file: \(OpsEnvironment.repositoryRoot)/config/dunning-policies.yaml")
        return try temporaryFile("receivablesd.yaml", text)
    }

    @Test func printsEffectiveConfigurationWithSecretsRedacted() throws {
        let dbPassword = "db-\(UUID().uuidString)"
        let amqpPassword = "amqp-\(UUID().uuidString)"
        // the secrets from a credentials directory, as systemd's LoadCredential= provides them
        let credentials = NSTemporaryDirectory() + "ops-credentials-\(getpid())"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        try dbPassword.write(toFile: credentials + "/db-password", atomically: true, encoding: .utf8)
        try amqpPassword.write(toFile: credentials + "/amqp-password", atomically: true, encoding: .utf8)
        let config = try Self.documentedConfig()
        let result = try Self.run(["check-config", "--config", config],
                                  environment: ["PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": credentials, "RECEIVABLESD_DB_HOST": "db.example.test"])
        #expect(result.status == 0, "check-config of the documented file failed:\n\(result.output)")
        #expect(!result.output.contains(dbPassword) && !result.output.contains(amqpPassword), "check-config printed a password:\n\(result.output)")
        #expect(result.output.contains("password=(redacted)"), "no redacted password shown:\n\(result.output)")
        #expect(result.output.contains("db.example.test"), "the environment override is not in the effective configuration:\n\(result.output)")
        #expect(result.output.contains("configuration is valid"), "no verdict:\n\(result.output)")
        // the password also stays hidden when it comes from the environment
        let fromEnvironment = try Self.run(["check-config", "--config", config],
                                           environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_DB_PASSWORD": dbPassword, "RECEIVABLESD_AMQP_PASSWORD": amqpPassword])
        #expect(fromEnvironment.status == 0, "check-config with passwords from the environment failed:\n\(fromEnvironment.output)")
        #expect(!fromEnvironment.output.contains(dbPassword) && !fromEnvironment.output.contains(amqpPassword),
                "check-config printed a password from the environment:\n\(fromEnvironment.output)")
    }

    @Test func namesEveryMistakeOnItsOwnLine() throws {
        let broken = try Self.temporaryFile("broken.yaml", """
            db:
              hots: 127.0.0.1
              port: 5432
              sslmode: sometimes
            amqp:
              port: 70000
            work_queue_type: lazy
            consumerz: 2
            """)
        let amqpPassword = "amqp-\(UUID().uuidString)"
        let result = try Self.run(["check-config", "--config", broken], environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": amqpPassword])
        #expect(result.status != 0, "check-config accepted a broken file:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        let mistakes = ["db.hots", "db.sslmode", "amqp.port", "work_queue_type", "consumerz"]
        for mistake in mistakes {
            let naming = lines.filter { $0.contains(mistake) }
            #expect(naming.count == 1, "expected one line naming \(mistake), got \(naming.count):\n\(result.output)")
        }
        let problemLines = lines.filter { $0.hasPrefix("- ") }
        #expect(problemLines.count == mistakes.count, "expected \(mistakes.count) problem lines, got \(problemLines.count):\n\(result.output)")
        #expect(!result.output.contains(amqpPassword), "check-config printed the password:\n\(result.output)")
        #expect(lines.contains { $0.contains("70000") } && lines.contains { $0.contains("sometimes") } && lines.contains { $0.contains("lazy") },
                "the bad values are not shown:\n\(result.output)")
    }

    @Test func missingExplicitFileIsAnError() throws {
        let result = try Self.run(["check-config", "--config", "/nonexistent/receivablesd.yaml"],
                                  environment: ["PATH": "/usr/bin:/bin", "RECEIVABLESD_AMQP_PASSWORD": "x"])
        #expect(result.status != 0 && result.output.contains("/nonexistent/receivablesd.yaml"), "missing file not reported:\n\(result.output)")
    }
}
