//! Chunk throughput of real node-to-node downloads: loopback, then the link profiles `lan`, `wifi`, `poor`
//! and `bad` (crates/linkem), each for TCP with cubic, TCP with bbr, and QUIC; then three sources each
//! behind its own `poor` link. Criterion reports bytes per second; a Markdown table of goodput against
//! the link rate follows.
//!
//! `P2PNODE_BENCH_QUICK=1` runs every case with small files (a smoke run of a couple of minutes whose
//! goodputs are dominated by slow start); a filter runs some cases only: `cargo bench -- poor/`.

use std::time::Duration;

use bench::{Bed, Case, Stats};
use criterion::{Criterion, SamplingMode, Throughput};

const MIB: u64 = 1024 * 1024;

/// Each transport setting of a profile: TCP with each congestion control, TLS (over TCP with cubic), and
/// QUIC (its own).
const TRANSPORTS: [(&str, Option<&str>); 4] =
    [("tcp", Some("cubic")), ("tcp", Some("bbr")), ("tls", Some("cubic")), ("quic", None)];

/// Every case with its file size: over the lossy links about six seconds at the link's rate, so that
/// the fixed cost of a download (connection, manifest, slow start: about half a second on `bad`) does not
/// hide the chunk throughput (quick mode: a tenth, 512 KiB at least).
fn cases(quick: bool) -> Vec<Case> {
    let profiles: [(Option<&'static str>, u64, usize); 6] = [
        (None, 256 * MIB, 1),
        (Some("lan"), 64 * MIB, 1),
        (Some("wifi"), 32 * MIB, 1),
        (Some("poor"), 16 * MIB, 1),
        (Some("bad"), 8 * MIB, 1),
        (Some("poor"), 48 * MIB, 3),
    ];
    let mut cases = Vec::new();
    for (profile, size, sources) in profiles {
        for (transport, congestion) in TRANSPORTS {
            let size = if quick { (size / 10).max(MIB / 2) } else { size };
            cases.push(Case { profile, transport, congestion, sources, size });
        }
    }
    cases
}

fn main() {
    // Without root, the bench moves into a user namespace of its own, before criterion starts threads.
    if let Err(e) = linkem::ensure_privileges() {
        eprintln!("cannot emulate links: {e}");
        std::process::exit(1);
    }
    let quick = std::env::var_os("P2PNODE_BENCH_QUICK").is_some();
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    if quick {
        criterion = criterion.warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_millis(1));
    }
    let mut results = Vec::new();
    let mut group = criterion.benchmark_group("download");
    // Downloads take seconds: the same iteration count in every sample, not a growing one.
    group.sampling_mode(SamplingMode::Flat);
    for case in cases(quick) {
        group.throughput(Throughput::Bytes(case.size));
        let mut bed: Option<Bed> = None;
        let mut times = Vec::new();
        group.bench_function(case.name(), |b| {
            let bed =
                bed.get_or_insert_with(|| Bed::new(&case).unwrap_or_else(|e| panic!("{}: setup: {e}", case.name())));
            b.iter_custom(|iters| {
                let took: Vec<Duration> = (0..iters)
                    .map(|_| bed.download().unwrap_or_else(|e| panic!("{}: download: {e}", case.name())))
                    .collect();
                times.extend(&took);
                took.iter().sum()
            });
        });
        if let Some(bed) = bed.filter(|_| !times.is_empty()) {
            results.push(Outcome { link: bed.link_stats(), case, times });
        }
    }
    group.finish();
    criterion.final_summary();
    print_table(&results);
}

/// What one case measured: every download's time, and what the links did over all of them.
struct Outcome {
    case: Case,
    times: Vec<Duration>,
    link: Option<[Stats; 2]>,
}

/// The Markdown summary: the median goodput of each case and its share of the link rate; then, per
/// download, the bytes the links carried towards the downloader per byte of the file (headers,
/// retransmissions, duplicates) and the packets the full queues dropped.
fn print_table(results: &[Outcome]) {
    println!(
        "\n| profile | transport | sources | file | goodput (Mbit/s) | goodput / link rate | wire / file | queue drops |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for Outcome { case, times, link } in results {
        let mut sorted = times.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2].as_secs_f64();
        let goodput = case.size as f64 * 8.0 / median / 1e6;
        let share = case.link_rate().map_or("-".to_string(), |rate| format!("{:.0} %", goodput * 1e8 / rate as f64));
        let downloads = times.len() as f64;
        let (wire, drops) = link.map_or(("-".to_string(), "-".to_string()), |[towards, _]| {
            let wire = towards.delivered_bytes as f64 / downloads / case.size as f64;
            (format!("{wire:.3}"), format!("{:.0}", towards.queue_drops as f64 / downloads))
        });
        let transport = case.transport_label();
        let profile = case.profile.unwrap_or("loopback");
        let mib = case.size as f64 / MIB as f64;
        println!(
            "| {profile} | {transport} | {} | {mib:.1} MiB | {goodput:.1} | {share} | {wire} | {drops} |",
            case.sources
        );
    }
}
