//! The settings of a QUIC connection: flow-control windows, stream limits, keep-alive and congestion
//! control, by which end of the connection they are for (see the module's doc of [`super`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, VarInt};

use super::path::{GSO_PAYLOAD, LARGE_ROUTE_PAYLOAD, route_payload};
use crate::congestion::BdpConfig;

const STREAM_WINDOW: u32 = 16 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// A server's send window: what one connection may have written and not yet acknowledged.
const SERVER_SEND_WINDOW: u64 = 8 * 1024 * 1024;
/// A server receives request frames only (at most 4 KiB each).
const SERVER_STREAM_WINDOW: u32 = 64 * 1024;
pub(super) const SERVER_CONNECTION_WINDOW: u32 = 256 * 1024;
/// Exchanges a client may run at once on one connection to a server (a download keeps at most 16 chunk
/// requests in flight to one peer).
pub const SERVER_STREAMS: u32 = 16;
/// The round trip assumed until the handshake measures one: the first retransmission of a lost handshake
/// packet waits three of these. RFC 9002's 333 ms suits the Internet; on a LAN or VPN a lost packet of the
/// handshake then cost a whole second.
const INITIAL_RTT: Duration = Duration::from_millis(100);

/// Which end of a connection a configuration is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Server,
}

/// The settings of a connection to `peer` (see the module's doc); idle connections close after `idle`.
pub(super) fn transport_config(side: Side, idle: Duration, peer: SocketAddr) -> Arc<quinn::TransportConfig> {
    let route = route_payload(peer);
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    let mut t = quinn::TransportConfig::default();
    if route >= LARGE_ROUTE_PAYLOAD {
        // The route is the machine's own (loopback) or one that says it carries huge datagrams: no
        // probing up from 1,200 bytes (large probes would take most of the initial window).
        mtu.upper_bound(route);
        t.enable_segmentation_offload(false).initial_mtu(route);
    } else {
        mtu.upper_bound(route.min(GSO_PAYLOAD));
    }
    match side {
        // A client reads chunks: large receive windows; it accepts no stream from the server.
        Side::Client => t
            .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
            .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
            .send_window(u64::from(SERVER_CONNECTION_WINDOW))
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .keep_alive_interval(Some(idle / 3)),
        // A server reads small requests and sends chunks; it never keeps a silent client alive.
        Side::Server => t
            .stream_receive_window(VarInt::from_u32(SERVER_STREAM_WINDOW))
            .receive_window(VarInt::from_u32(SERVER_CONNECTION_WINDOW))
            .send_window(SERVER_SEND_WINDOW)
            .max_concurrent_bidi_streams(VarInt::from_u32(SERVER_STREAMS))
            .keep_alive_interval(None),
    };
    t.max_concurrent_uni_streams(VarInt::from_u32(0))
        .initial_rtt(INITIAL_RTT)
        .max_idle_timeout(IdleTimeout::try_from(idle).ok())
        .congestion_controller_factory(Arc::new(BdpConfig::default()))
        .mtu_discovery_config(Some(mtu));
    Arc::new(t)
}
