//! Logs: stderr at the level -v/-q choose (or as `RUST_LOG` says, by target: `p2pnode::download=debug,warn`),
//! with a span per connection, exchange and download, and with --log-file a detailed file log (every chunk served or
//! downloaded, with timestamp, file, chunk and peer), as the original tool kept. Every field is escaped
//! ([`node::Escaped`]): log lines carry names and error messages that peers chose.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anyhow::Context;
use node::Escaped;
use tracing::field::Field;
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level};
use tracing_subscriber::field::{MakeExt, MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::cli::Cli;

/// Installs the global subscriber.
pub(crate) fn init(cli: &Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    // Warnings and errors; what serve does is told on stdout (-v adds the developers' log).
    let level = match 2 + g.verbose as i8 - g.quiet as i8 {
        i8::MIN..=0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let ansi = std::io::stderr().is_terminal();
    let by_target = rust_log()?;
    // Timestamps are for developers (-v, RUST_LOG); people see the level and the message.
    let stderr = fmt::layer().fmt_fields(escaped_fields()).with_writer(|| AboveBars).with_ansi(ansi);
    let stderr = match (g.verbose, &by_target) {
        (0, None) => stderr.with_target(false).event_format(ForPeople).boxed(),
        (_, None) => stderr.with_target(false).boxed(),
        (_, Some(_)) => stderr.boxed(),
    };
    let stderr = match by_target {
        // Targets RUST_LOG does not name log at the level -v/-q choose, unless it sets its own default.
        Some(targets) if targets.default_level().is_none() => stderr.with_filter(targets.with_default(level)).boxed(),
        Some(targets) => stderr.with_filter(targets).boxed(),
        None => stderr.with_filter(level).boxed(),
    };
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

/// The filter `RUST_LOG` sets, where it is set: comma-separated `target=level` directives and a bare
/// default level (the subset of `env_logger`'s syntax without regular expressions); without a bare level,
/// the targets it does not name keep the level of -v/-q.
fn rust_log() -> anyhow::Result<Option<Targets>> {
    match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => text.parse().map(Some).with_context(|| {
            format!(
                "RUST_LOG={}: not a filter; write target=level pairs, as in p2pnode::download=debug,warn",
                Escaped(&text)
            )
        }),
        _ => Ok(None),
    }
}

/// A log line for people: `warning: what happened field=value`, no timestamp, level or target.
struct ForPeople;

impl<S, N> FormatEvent<S, N> for ForPeople
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            // What is no fault, but worth knowing (a peer that shares only with those it trusts).
            _ if event.metadata().target() == "p2pnode::note" => "note",
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let mut sentence = Sentence::default();
        event.record(&mut sentence);
        // What the fields hold follows the message in brackets, their names left to -v.
        match sentence.details.is_empty() {
            true => writeln!(writer, "{level}: {}", sentence.message),
            false => writeln!(writer, "{level}: {} ({})", sentence.message, sentence.details.join("; ")),
        }
    }
}

/// An event as people read it: its message, then the values of its other fields, each escaped.
#[derive(Default)]
struct Sentence {
    message: String,
    details: Vec<String>,
}

impl tracing::field::Visit for Sentence {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, &format!("{value:?}"));
    }
}

impl Sentence {
    fn add(&mut self, field: &Field, value: &str) {
        let value = Escaped(value).to_string();
        match field.name() {
            "message" => self.message = value,
            _ => self.details.push(value),
        }
    }
}

/// Stderr, written past any progress bar: a log line lands above the bar, never glued onto it.
struct AboveBars;

impl Write for AboveBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::terminal::above(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
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
