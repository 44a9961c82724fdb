//! Logs: stderr at the level -v/-q choose, and with --log-file a detailed file log (every chunk served or
//! downloaded, with timestamp, file, chunk and peer), as the original tool kept. Every field is escaped
//! ([`node::Escaped`]): log lines carry names and error messages that peers chose.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use node::Escaped;
use tracing::field::Field;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::field::{MakeExt, MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::cli::{Cli, Command};

/// Installs the global subscriber.
pub(crate) fn init(cli: &Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    // A server reports what it does; the one-shot commands keep stderr for problems.
    let base: i8 = if matches!(cli.command, Command::Serve { .. }) { 3 } else { 2 };
    let level = match base + g.verbose as i8 - g.quiet as i8 {
        i8::MIN..=0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let ansi = std::io::stderr().is_terminal();
    let stderr = fmt::layer()
        .fmt_fields(escaped_fields())
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(level);
    let file = match &g.log_file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let layer = fmt::layer()
                .fmt_fields(escaped_fields())
                .with_writer(Mutex::new(file))
                .with_ansi(false)
                .with_filter(LevelFilter::DEBUG);
            Some(layer)
        }
        None => None,
    };
    tracing_subscriber::registry().with(stderr).with(file).init();
    Ok(())
}

/// Formats each field as `name=value` (the message bare), its value escaped whatever way it was recorded.
fn escaped_fields() -> impl for<'w> MakeVisitor<Writer<'w>, Visitor: VisitFmt + VisitOutput<std::fmt::Result>> + Clone {
    fmt::format::debug_fn(|writer: &mut Writer<'_>, field: &Field, value: &dyn std::fmt::Debug| {
        let value = format!("{value:?}");
        match field.name() {
            "message" => write!(writer, "{}", Escaped(&value)),
            name => write!(writer, "{name}={}", Escaped(&value)),
        }
    })
    .delimited(" ")
}
