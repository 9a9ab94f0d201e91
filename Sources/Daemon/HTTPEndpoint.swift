import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// What /healthz and /readyz report; written by the daemon's threads, read by the HTTP loop.
public final class ServiceState: Sendable {
    private let ready = Atomic<Bool>(false)
    private let probe: Mutex<@Sendable () -> (live: Bool, ready: Bool, detail: String)>

    public init() { probe = Mutex({ (true, false, "starting") }) }

    func setReady(_ value: Bool) { ready.store(value, ordering: .releasing) }
    var isReady: Bool { ready.load(ordering: .acquiring) }
    func setProbe(_ body: @escaping @Sendable () -> (live: Bool, ready: Bool, detail: String)) { probe.withLock { $0 = body } }
    func check() -> (live: Bool, ready: Bool, detail: String) {
        let current = probe.withLock { $0 }
        let result = current()
        return (result.live, result.ready && isReady, result.detail)
    }
}

/// The small local HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the worker
/// loops are turning), `/readyz` (ready and both PostgreSQL and RabbitMQ reachable).
/// SwiftNIO on one event-loop thread of its own, so it answers even while workers block.
final class HTTPEndpoint {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: (any Channel)?

    func start(host: String, port: Int, registry: PrometheusCollectorRegistry, state: ServiceState) throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(HTTPHandler(registry: registry, state: state))
                }
            }
        channel = try bootstrap.bind(host: host, port: port).wait()
    }

    /// Shutdown errors are ignored: the process is exiting and the socket goes with it.
    func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class HTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let state: ServiceState

    init(registry: PrometheusCollectorRegistry, state: ServiceState) {
        self.registry = registry
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let (status, contentType, body): (HTTPResponseStatus, String, String)
        switch (request.method, request.uri) {
        case (.GET, "/metrics"):
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4", registry.emitToString())
        case (.GET, "/healthz"):
            let check = state.check()
            (status, contentType, body) = (check.live ? .ok : .serviceUnavailable, "text/plain", (check.live ? "ok" : "unhealthy") + ": " + check.detail + "\n")
        case (.GET, "/readyz"):
            let check = state.check()
            (status, contentType, body) = (check.ready ? .ok : .serviceUnavailable, "text/plain", (check.ready ? "ready" : "not ready") + ": " + check.detail + "\n")
        default:
            (status, contentType, body) = (.notFound, "text/plain", "not found: try /metrics, /healthz or /readyz\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
