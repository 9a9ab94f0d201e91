import AMQPClient
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// receivablesd-portal: a reference customer portal page on loopback. It knows nothing of the
/// daemon but its AMQP request/reply API (account.summary, statement, payment_history).
///
///   receivablesd-portal [--host 127.0.0.1] [--port 0] [--source receivablesd] [--timeout-ms 15000]
///
/// Broker settings from the environment: RECEIVABLESD_AMQP_HOST, RECEIVABLESD_AMQP_PORT,
/// RECEIVABLESD_PORTAL_AMQP_USER / RECEIVABLESD_PORTAL_AMQP_PASSWORD (falling back to the
/// private services' RECEIVABLESD_TEST_AMQP_PORTAL_USER / _PASSWORD), RECEIVABLESD_INBOUND_EXCHANGE.
/// Prints `portal listening on http://HOST:PORT/` once it accepts connections.

func fail(_ message: String) -> Never {
    FileHandleOutput.error("receivablesd-portal: \(message)\n")
    exit(2)
}

enum FileHandleOutput {
    static func error(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
    static func line(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
    }
}

func loadSettings() -> PortalSettings {
    let environment = ProcessEnvironment.current
    func value(_ names: String...) -> String? { names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty } }
    guard let user = value("RECEIVABLESD_PORTAL_AMQP_USER", "RECEIVABLESD_TEST_AMQP_PORTAL_USER"),
          let password = value("RECEIVABLESD_PORTAL_AMQP_PASSWORD", "RECEIVABLESD_TEST_AMQP_PORTAL_PASSWORD") else {
        fail("set RECEIVABLESD_PORTAL_AMQP_USER and RECEIVABLESD_PORTAL_AMQP_PASSWORD (the portal's broker user)")
    }
    let amqp = AMQPConfiguration(host: value("RECEIVABLESD_AMQP_HOST") ?? "127.0.0.1", port: Int(value("RECEIVABLESD_AMQP_PORT") ?? "") ?? 5672,
                                 user: user, password: password, heartbeatSeconds: 0)
    var settings = PortalSettings(amqp: amqp)
    settings.inboundExchange = value("RECEIVABLESD_INBOUND_EXCHANGE") ?? settings.inboundExchange
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let argument = arguments.next() {
        guard let next = arguments.next() else { fail("\(argument) needs a value") }
        switch argument {
        case "--host": settings.host = next
        case "--port": settings.port = Int(next) ?? -1
        case "--source": settings.expectedSource = next
        case "--timeout-ms": settings.timeoutMilliseconds = Int(next) ?? 0
        default: fail("unknown argument \(argument)")
        }
    }
    guard (0...65535).contains(settings.port), settings.timeoutMilliseconds > 0 else { fail("bad --port or --timeout-ms") }
    guard settings.host == "127.0.0.1" || settings.host == "::1" || settings.host == "localhost" else {
        fail("the reference portal serves on loopback only (--host 127.0.0.1)")
    }
    return settings
}

enum ProcessEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") { result[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            pointer += 1
        }
        return result
    }
}

/// Reads one request, answers it from the thread pool (AMQP calls block), closes the connection.
final class PortalHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let pages: PortalPages
    let pool: NIOThreadPool
    private var head: HTTPRequestHead?

    init(pages: PortalPages, pool: NIOThreadPool) {
        self.pages = pages
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            let pages = self.pages
            let bound = NIOLoopBound((context, self), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) {
                pages.respond(method: request.method.rawValue, uri: request.uri)
            }.whenComplete { result in
                let (context, handler) = bound.value
                let response: PortalResponse
                switch result {
                case .success(let value): response = value
                case .failure(let error): response = .text(500, "\(error)\n")
                }
                handler.write(response, version: request.version, context: context)
            }
        }
    }

    func write(_ response: PortalResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Security-Policy", value: "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
        if response.status == 303 { headers.add(name: "Location", value: response.body) }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

let settings = loadSettings()
let pages = PortalPages(client: PortalClient(settings: settings))
let pool = NIOThreadPool(numberOfThreads: 2)
pool.start()
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 64)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(PortalHTTPHandler(pages: pages, pool: pool))
        }
    }
do {
    let channel = try bootstrap.bind(host: settings.host, port: settings.port).wait()
    guard let address = channel.localAddress, let port = address.port else { fail("no local address") }
    FileHandleOutput.line("portal listening on http://\(settings.host):\(port)/")
    try channel.closeFuture.wait()
} catch {
    fail("\(error)")
}
