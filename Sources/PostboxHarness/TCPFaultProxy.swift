import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP proxy on loopback that sits between a service and PostgreSQL (or any two peers) and misbehaves on
/// command: latency, refusing new connections, resetting open ones, a blackhole, or cutting one direction.
///
/// Point the service at ``port`` instead of the real server. Faults apply from the next packet on; ``heal()``
/// restores normal forwarding.
public final class TCPFaultProxy: Sendable {
    /// What the proxy does with traffic.
    public enum Mode: Sendable, Equatable, CustomStringConvertible {
        /// Forwards everything at once.
        case pass
        /// Delays every packet in both directions by this much.
        case latency(Duration)
        /// Accepts new connections and closes them at once; open ones keep working.
        case refuseNew
        /// Accepts and keeps connections but forwards nothing either way (a pulled cable, a dead route).
        case blackhole
        /// Drops what the service sends; the server's answers still arrive.
        case cutUpstream
        /// Drops what the server sends; the service's requests still arrive.
        case cutDownstream

        public var description: String {
            switch self {
            case .pass: "pass"
            case .latency(let delay): "latency \(delay)"
            case .refuseNew: "refuse new connections"
            case .blackhole: "blackhole"
            case .cutUpstream: "cut service→server"
            case .cutDownstream: "cut server→service"
            }
        }
    }

    enum Direction { case upstream, downstream }

    /// The loopback port services connect to.
    public let port: Int
    /// The real server's host.
    public let targetHost: String
    /// The real server's port.
    public let targetPort: Int
    private let server: any Channel
    private let state: NIOLockedValueBox<(mode: Mode, channels: [ObjectIdentifier: any Channel])>
    private let dropped: NIOLockedValueBox<Int>

    private init(
        port: Int,
        targetHost: String,
        targetPort: Int,
        server: any Channel,
        state: NIOLockedValueBox<(mode: Mode, channels: [ObjectIdentifier: any Channel])>,
        dropped: NIOLockedValueBox<Int>
    ) {
        self.dropped = dropped
        self.port = port
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.server = server
        self.state = state
    }

    /// Starts a proxy on a free loopback port in front of `host:port`.
    public static func start(targetHost: String = "127.0.0.1", targetPort: Int) async throws -> TCPFaultProxy {
        let state = NIOLockedValueBox<(mode: Mode, channels: [ObjectIdentifier: any Channel])>((.pass, [:]))
        let dropped = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                if state.withLockedValue({ $0.mode }) == .refuseNew { return inbound.close() }
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandler(
                                ProxyHandler(direction: .downstream, partner: inbound, state: state, dropped: dropped)
                            )
                        }
                    }
                    .connect(host: targetHost, port: targetPort)
                    .flatMapThrowing { outbound in
                        state.withLockedValue {
                            $0.channels[ObjectIdentifier(inbound)] = inbound
                            $0.channels[ObjectIdentifier(outbound)] = outbound
                        }
                        try inbound.pipeline.syncOperations.addHandler(
                            ProxyHandler(direction: .upstream, partner: outbound, state: state, dropped: dropped)
                        )
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = server.localAddress?.port else { throw ProxyError(description: "the proxy has no local port") }
        return TCPFaultProxy(port: port, targetHost: targetHost, targetPort: targetPort, server: server, state: state, dropped: dropped)
    }

    /// The mode in force.
    public var mode: Mode { state.withLockedValue { $0.mode } }

    /// Changes what the proxy does from now on.
    public func set(_ mode: Mode) {
        state.withLockedValue { $0.mode = mode }
    }

    /// Back to forwarding everything.
    public func heal() { set(.pass) }

    /// Resets every open connection (RST, as a crashed peer or a firewall would); new ones work as the mode says.
    public func resetConnections() {
        let channels = state.withLockedValue { state -> [any Channel] in
            defer { state.channels = [:] }
            return Array(state.channels.values)
        }
        for channel in channels {
            // SO_LINGER 0 makes close() send RST instead of FIN.
            if let provider = channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        }
    }

    /// How many packets the proxy has thrown away (blackhole or a cut direction) since it started: a scenario waits
    /// on this to know the fault has bitten.
    public var droppedPackets: Int { dropped.withLockedValue { $0 } }

    /// How many connections are open through the proxy.
    public var openConnections: Int { state.withLockedValue { $0.channels.count } / 2 }

    /// Closes the listening socket and every connection.
    public func stop() async {
        resetConnections()
        try? await server.close()
    }

    fileprivate static func forget(_ channel: any Channel, in state: NIOLockedValueBox<(mode: Mode, channels: [ObjectIdentifier: any Channel])>) {
        _ = state.withLockedValue { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// The proxy could not start.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
}

/// Forwards what one side reads to the other, as the proxy's mode says.
private final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let direction: TCPFaultProxy.Direction
    let partner: any Channel
    let state: NIOLockedValueBox<(mode: TCPFaultProxy.Mode, channels: [ObjectIdentifier: any Channel])>
    let dropped: NIOLockedValueBox<Int>

    init(
        direction: TCPFaultProxy.Direction,
        partner: any Channel,
        state: NIOLockedValueBox<(mode: TCPFaultProxy.Mode, channels: [ObjectIdentifier: any Channel])>,
        dropped: NIOLockedValueBox<Int>
    ) {
        self.dropped = dropped
        self.direction = direction
        self.partner = partner
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let partner = self.partner
        switch state.withLockedValue({ $0.mode }) {
        case .pass, .refuseNew:
            partner.writeAndFlush(buffer, promise: nil)
        case .latency(let delay):
            let (seconds, attoseconds) = delay.components
            partner.eventLoop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
                partner.writeAndFlush(buffer, promise: nil)
            }
        case .blackhole:
            dropped.withLockedValue { $0 += 1 }
        case .cutUpstream:
            if direction == .downstream { partner.writeAndFlush(buffer, promise: nil) } else { dropped.withLockedValue { $0 += 1 } }
        case .cutDownstream:
            if direction == .upstream { partner.writeAndFlush(buffer, promise: nil) } else { dropped.withLockedValue { $0 += 1 } }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        TCPFaultProxy.forget(context.channel, in: state)
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
