//! Transport numbers on loopback, without disk or hashing, per transport:
//! - connect plus a first 256 KiB exchange (median and worst of 50 fresh connections);
//! - throughput of 1 GiB as 1 MiB exchanges, 8 in flight on one connection.
//!
//! `cargo run --release -p transport --example loopback [-- TRANSPORT...]` (all three when none is named)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::{FileId, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::frame_io::{read_request, read_response, write_request, write_response};
use transport::quic::QuicTransport;
use transport::tcp::TcpTransport;
use transport::tls::TlsTransport;
use transport::{Connection, Identity, Transport, TransportConfig};

const FIRST: u32 = 256 * 1024;
const ROUNDS: usize = 50;
const BULK: u32 = 1024 * 1024;
const IN_FLIGHT: u32 = 8;
const BULK_COUNT: u32 = 1024;

#[tokio::main]
async fn main() {
    let config = TransportConfig::default();
    let (identity, client) = (Identity::generate().expect("identity"), Identity::generate().expect("identity"));
    let id = identity.node_id();
    let pairs: [(Arc<dyn Transport>, Arc<dyn Transport>); 3] = [
        (Arc::new(TcpTransport::new(config.clone())), Arc::new(TcpTransport::new(config.clone()))),
        (
            Arc::new(TlsTransport::new(config.clone(), identity.clone())),
            Arc::new(TlsTransport::new(config.clone(), client.clone())),
        ),
        (Arc::new(QuicTransport::new(config.clone(), identity)), Arc::new(QuicTransport::new(config, client))),
    ];
    let named: Vec<String> = std::env::args().skip(1).collect();
    for (server, client) in pairs {
        if !named.is_empty() && !named.iter().any(|n| n == client.name()) {
            continue;
        }
        let addr = serve_zeros(&*server).await;
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let conn = client.connect(addr, id).await.expect("connect");
            exchange(&*conn, FIRST).await;
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{}: connect + first 256 KiB: median {:.2} ms, worst {:.2} ms",
            client.name(),
            ms(times[ROUNDS / 2]),
            ms(times[ROUNDS - 1])
        );

        let conn = client.connect(addr, id).await.expect("connect");
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            let conn = conn.clone();
            workers.spawn(async move {
                for _ in 0..BULK_COUNT / IN_FLIGHT {
                    exchange(&*conn, BULK).await;
                }
            });
        }
        while workers.join_next().await.is_some() {}
        let mib = f64::from(BULK_COUNT) * f64::from(BULK) / f64::from(1 << 20);
        println!(
            "{}: {mib:.0} MiB in 1 MiB exchanges: {:.0} MiB/s",
            client.name(),
            mib / started.elapsed().as_secs_f64()
        );
    }
}

/// A server answering every chunk request with that many zero bytes.
async fn serve_zeros(server: &dyn Transport) -> SocketAddr {
    let mut listener = server.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind");
    let addr = listener.local_addr();
    let zeros = Arc::new(vec![0u8; BULK as usize]);
    tokio::spawn(async move {
        while let Ok(mut incoming) = listener.accept().await {
            let zeros = zeros.clone();
            tokio::spawn(async move {
                while let Ok(Some(mut s)) = incoming.accept_stream().await {
                    let zeros = zeros.clone();
                    tokio::spawn(async move {
                        let Ok(Some(Request::Chunk { len, .. })) = read_request(&mut s).await else { return };
                        let len = len.min(BULK);
                        let _ = write_response(&mut s, &Response::Ok { len: u64::from(len) }).await;
                        let _ = s.write_all(&zeros[..len as usize]).await;
                        s.finish();
                    });
                }
            });
        }
    });
    addr
}

async fn exchange(conn: &dyn Connection, len: u32) {
    let mut s = conn.open().await.expect("open");
    let request = Request::Chunk { file: FileId([0; 32]), index: 0, offset: 0, len };
    write_request(&mut s, &request).await.expect("request");
    let Ok(Response::Ok { len }) = read_response(&mut s).await else { panic!("refused") };
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.expect("body");
    s.finish();
}
