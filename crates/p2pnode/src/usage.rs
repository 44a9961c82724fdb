//! A mistake on the command line said on one line, from what clap knows of it (its kind and context),
//! never from the text it renders: what is wrong, what it suggests, and the command's usage.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `error` as one line: `what is wrong; suggestion (usage: USAGE)`, `usage` being that of the command
/// (not clap's, which repeats the arguments typed).
pub(crate) fn one_line(error: &clap::Error, usage: &str) -> String {
    let mut parts = vec![what_is_wrong(error)];
    let suggested = [
        (ContextKind::SuggestedSubcommand, "a similar subcommand exists"),
        (ContextKind::SuggestedArg, "a similar argument exists"),
        (ContextKind::SuggestedValue, "a similar value exists"),
    ];
    for (kind, says) in suggested {
        if let Some(value) = error.get(kind) {
            parts.push(format!("{says}: {}", quoted(value)));
        }
    }
    if let Some(ContextValue::StyledStrs(tips)) = error.get(ContextKind::Suggested) {
        parts.extend(tips.iter().map(|tip| format!("tip: {tip}")));
    }
    format!("{} (usage: {usage})", parts.join("; "))
}

/// The usage of the subcommand `args` name (the first word that is one), or of the whole command.
pub(crate) fn usage(mut cmd: clap::Command, args: &[std::ffi::OsString]) -> String {
    cmd.build();
    let named = args.iter().skip(1).find_map(|a| cmd.get_subcommands().find(|s| s.get_name() == a.to_string_lossy()));
    let rendered = match named {
        Some(sub) => sub.clone().render_usage().to_string(),
        None => cmd.render_usage().to_string(),
    };
    // Rendered for clap's own messages, headed `Usage: `.
    rendered.trim().trim_start_matches("Usage:").trim().to_string()
}

/// The mistake itself, in clap's words for its kind, naming the argument and value it concerns.
fn what_is_wrong(error: &clap::Error) -> String {
    let text = |kind| error.get(kind).map(ToString::to_string).unwrap_or_default();
    let (arg, value) = (text(ContextKind::InvalidArg), text(ContextKind::InvalidValue));
    let cause = std::error::Error::source(error).map(|e| format!(": {e}")).unwrap_or_default();
    match error.kind() {
        ErrorKind::InvalidSubcommand => format!("unrecognized subcommand '{}'", text(ContextKind::InvalidSubcommand)),
        ErrorKind::UnknownArgument => format!("unexpected argument '{arg}' found"),
        ErrorKind::MissingRequiredArgument => format!("the following required arguments were not provided: {arg}"),
        ErrorKind::InvalidValue if value.is_empty() => format!("a value is required for '{arg}' but none was supplied"),
        ErrorKind::InvalidValue => {
            let valid = error.get(ContextKind::ValidValue).map(|v| format!(" [possible values: {v}]"));
            format!("invalid value '{value}' for '{arg}'{}", valid.unwrap_or_default())
        }
        ErrorKind::ValueValidation => format!("invalid value '{value}' for '{arg}'{cause}"),
        ErrorKind::ArgumentConflict => {
            let prior = error.get(ContextKind::PriorArg).map(|p| format!(" cannot be used with {p}"));
            format!("the argument '{arg}'{}", prior.unwrap_or_else(|| " cannot be used more than once".into()))
        }
        ErrorKind::TooManyValues => format!("unexpected value '{value}' for '{arg}'; no more were expected"),
        kind => match (kind.as_str(), cause.is_empty()) {
            (_, false) => cause.trim_start_matches(": ").to_string(),
            (Some(says), true) => says.to_string(),
            (None, true) => "the command line is not understood".to_string(),
        },
    }
}

/// A suggested name or names, each in quotes.
fn quoted(value: &ContextValue) -> String {
    match value {
        ContextValue::Strings(names) => names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "),
        other => format!("'{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    #[command(name = "p2pnode")]
    enum Cli {
        /// Fetch.
        Get {
            /// Files.
            #[arg(required = true)]
            file: Vec<String>,
            /// Seconds.
            #[arg(long)]
            timeout: Option<u32>,
        },
        /// Serve.
        Serve,
    }

    fn line(args: &[&str]) -> String {
        let words: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        one_line(&Cli::try_parse_from(args).expect_err("a mistake"), &usage(Cli::command(), &words))
    }

    #[test]
    fn says_what_is_wrong_what_is_suggested_and_the_usage() {
        assert_eq!(
            line(&["p2pnode", "get"]),
            "the following required arguments were not provided: <FILE>... (usage: p2pnode get [OPTIONS] <FILE>...)"
        );
        let typed = line(&["p2pnode", "get", "--timeout", "3"]);
        assert!(typed.ends_with("(usage: p2pnode get [OPTIONS] <FILE>...)"), "not the words typed: {typed}");
        assert!(
            line(&["p2pnode", "serv"]).contains("a similar subcommand exists: 'serve'"),
            "{}",
            line(&["p2pnode", "serv"])
        );
        let typo = line(&["p2pnode", "get", "--tiemout", "1", "x"]);
        assert!(
            typo.starts_with("unexpected argument '--tiemout' found; a similar argument exists: '--timeout'"),
            "{typo}"
        );
        let bad = line(&["p2pnode", "get", "--timeout", "soon", "x"]);
        assert!(bad.starts_with("invalid value 'soon' for '--timeout <TIMEOUT>': invalid digit"), "{bad}");
        assert!(!bad.contains('\n') && bad.ends_with(')'), "{bad}");
    }
}
