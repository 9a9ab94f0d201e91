@testable import ARContract
import Foundation
import Testing
import TestSupport

/// The decoder must never crash or hang, whatever the bytes. Random mutations of the examples
/// (byte flips, insertions, deletions, splices, duplicated slices) run through `decode`; every
/// result must be a success or a rejection with a non-empty detail, and every success must
/// re-validate. A fixed seed keeps runs repeatable; `RECEIVABLESD_FUZZ_SECONDS` makes a longer
/// run (default: a short pass that fits in the ordinary test suite).
@Suite("Decoder fuzzing")
struct DecoderFuzzTests {
    typealias SeededGenerator = SplitMix

    static let interesting: [[UInt8]] = [
        "\"", "{", "}", "[", "]", ",", ":", "\\", "\\u", "\\ud800", "0", "-", "1e999", "null", "true", "\"amount\":1",
        "\"4111111111111111\"", "\u{00e9}", "\u{1F600}", "\n", " ", "\"data\":{}", "\"USD\"", "\"JPY\"", "1.5",
    ].map { Array($0.utf8) } + [[0xFF], [0xC0], [0xED, 0xA0, 0x80], [0x00]]

    static func mutate(_ input: [UInt8], corpus: [[UInt8]], using random: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0 where !bytes.isEmpty:
                bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 1 where !bytes.isEmpty:
                bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...8, using: &random)))
            case 2:
                bytes.insert(contentsOf: interesting.randomElement(using: &random) ?? [], at: position)
            case 3 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...64, using: &random))
                bytes.insert(contentsOf: bytes[position..<end], at: Int.random(in: 0...bytes.count, using: &random))
            case 4:
                let other = corpus.randomElement(using: &random) ?? []
                if !other.isEmpty {
                    let start = Int.random(in: 0..<other.count, using: &random)
                    bytes.replaceSubrange(position..<min(bytes.count, position + 16), with: other[start..<min(other.count, start + 48)])
                }
            default:
                if !bytes.isEmpty { bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random) }
            }
        }
        return bytes
    }

    @Test func randomMutationsNeverCrashAndAlwaysAnswer() {
        let corpus = Repository.examples().map(\.bytes)
        #expect(!corpus.isEmpty)
        let seconds = Double(ProcessInfo.processInfo.environment["RECEIVABLESD_FUZZ_SECONDS"] ?? "") ?? 0
        let deadline = Date().addingTimeInterval(seconds)
        var random = SeededGenerator(state: 0x5EED)
        var iterations = 0
        var accepted = 0
        var codes: [String: Int] = [:]
        repeat {
            for _ in 0..<2_000 {
                let input = Self.mutate(corpus.randomElement(using: &random) ?? [], corpus: corpus, using: &random)
                switch sharedDecoder.decode(body: input, limits: DecodingLimits()) {
                case .success(let message):
                    accepted += 1
                    #expect(sharedDecoder.knownInboundTypes.contains(message.envelope.type))
                case .failure(let rejection):
                    codes[rejection.code.rawValue, default: 0] += 1
                    #expect(!rejection.detail.isEmpty)
                    if rejection.detail.contains("decoder and schema disagree") {
                        Issue.record("schema accepted what typed decoding refused: \(rejection) for \(String(decoding: input, as: UTF8.self))")
                    }
                }
                iterations += 1
            }
        } while Date() < deadline
        print("fuzz: \(iterations) inputs, \(accepted) accepted, rejections \(codes.sorted { $0.key < $1.key })")
        #expect(iterations >= 2_000)
    }
}
