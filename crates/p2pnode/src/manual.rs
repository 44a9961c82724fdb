//! The manual page: one page for the command and every subcommand, each with its own options, and
//! examples (clap_mangen renders the sections it knows; the subcommands and examples are written here,
//! since it would point to one page per subcommand that nothing installs).

use std::io::Write;

/// What a new user types first, each with what it does.
const EXAMPLES: [(&str, &str); 7] = [
    ("p2pnode --dir ~/Shared serve", "share a folder with the LAN until Ctrl-C"),
    ("p2pnode peers", "the peers on the LAN"),
    ("p2pnode ls --tree", "every file on the LAN, under its folders"),
    ("p2pnode get holiday.mp4", "fetch a file from every peer that has it, verified, into --downloads"),
    ("p2pnode get photos \"*.txt\" -o ~/Desktop", "a folder and a glob, into another folder"),
    ("p2pnode pair", "show a code to read to someone, whose `p2pnode pair CODE` pairs the two nodes"),
    ("p2pnode send holiday --to bob --text \"the photos\"", "hand a folder and a message to a paired peer"),
];

/// Writes the page of `cmd` (the whole command line) as roff.
pub(crate) fn render(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SS \"{} {}\"", roff(cmd.get_name()), roff(sub.get_name()))?;
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            writeln!(out, "{}", roff(&about.to_string()))?;
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()) {
            writeln!(out, ".TP\n{}", flag(arg))?;
            if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                writeln!(out, "{}", roff(&help.to_string()))?;
            }
        }
    }
    writeln!(out, ".SH EXAMPLES")?;
    for (line, what) in EXAMPLES {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(line), roff(what))?;
    }
    man.render_version_section(out)
}

/// How an option or positional argument is written: `-o, --output DIR`, `<FILE>...`.
fn flag(arg: &clap::Arg) -> String {
    let values = arg.get_value_names().map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    let mut written: Vec<String> = Vec::new();
    if let Some(short) = arg.get_short() {
        written.push(format!("\\fB\\-{}\\fR", roff(&short.to_string())));
    }
    if let Some(long) = arg.get_long() {
        written.push(format!("\\fB\\-\\-{}\\fR", roff(long)));
    }
    let value = values.unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]).join(" ");
    match (written.is_empty(), takes_value) {
        (true, _) => format!("\\fI<{}>...\\fR", roff(&value)),
        (false, true) => format!("{} \\fI{}\\fR", written.join(", "), roff(&value)),
        (false, false) => written.join(", "),
    }
}

/// `text` safe in roff: backslashes and dashes escaped, no line taken for a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|line| if line.starts_with(['.', '\'']) { format!("\\&{line}") } else { line.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_pass_for_a_request() {
        assert_eq!(roff(".TH x\n'y \\z -q"), "\\&.TH x\n\\&'y \\ez \\-q");
    }
}
