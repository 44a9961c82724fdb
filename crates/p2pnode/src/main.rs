//! The `p2pnode` command: a thin layer over the `node` crate that parses the command line, installs
//! logging, draws progress and prints results. Every error ends here as one line on stderr and a non-zero
//! exit status.
//!
//! ```text
//! p2pnode --dir ~/Shared serve      # share a folder with the LAN until Ctrl-C
//! p2pnode ls                        # every file on the LAN, and who has it
//! p2pnode get holiday.mp4           # fetch it from every peer that has it at once, verified
//! ```

/// `println!` that a closed stdout does not stop: `p2pnode ls | head` ends quietly, and a `serve` whose
/// reader went away goes on serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod events;
mod logging;
mod manual;
mod output;
mod pages;
mod pairing;
mod plugins;
mod progress;
mod sending;
mod terminal;
mod usage;
mod words;

use std::process::ExitCode;

use clap::error::ErrorKind;

fn main() -> ExitCode {
    let mut cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let line = format!("error: {}", usage::one_line(&e, &usage::usage(cli::command(), &args)));
            if std::env::args_os().any(|a| a == "--json") {
                events::Event::Error { message: line.trim_start_matches("error: ").to_string() }.print();
            }
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
    if let Err(e) = cli.global.settle_folders(matches!(cli.command, cli::Command::Serve { .. })) {
        return fail(&e, json);
    }
    if let Err(e) = logging::init(&cli) {
        return fail(&e, json);
    }
    if let Err(e) = cli.global.settle_group().and_then(|()| cli.global.settle_trust()) {
        return fail(&e, json);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e.into(), json),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, json),
    }
}

/// Says why the command failed: one line on stderr, and with `--json` an `error` event on stdout too.
fn fail(e: &anyhow::Error, json: bool) -> ExitCode {
    // The reader of our output went away (`p2pnode man | head`): nothing to tell anyone.
    if e.chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
    {
        return ExitCode::FAILURE;
    }
    if e.is::<commands::Interrupted>() {
        if json {
            events::Event::Error { message: e.to_string() }.print();
        }
        eprintln!("{e}");
        return ExitCode::from(130);
    }
    tracing::debug!(error = ?e, "failed");
    let message = one_line(e);
    if json {
        events::Event::Error { message: message.clone() }.print();
    }
    // Errors quote names and messages that peers chose.
    eprintln!("error: {}", node::Escaped(&message));
    ExitCode::FAILURE
}

/// The error and its causes on one line, each said once: most of our errors already name their cause.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for text in e.chain().map(ToString::to_string) {
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}
