//! What the commands print on stdout: aligned tables for people, one JSON object per line with --json.
//! Names in tables are escaped ([`Escaped`]): peers choose them. JSON carries them exactly (JSON escaping
//! only).

use std::collections::{HashMap, HashSet};

use node::{
    DictEntry, Dictionary, Escaped, FileId, Hashing, Host, Node, NodeEvent, NodeId, OfferFrom, Peer, ServeConfig,
    Upload, escape,
};

use crate::events::{Event, FileHost};
use crate::terminal::HashingBar;
use crate::words::human_bytes;

/// The line `serve` prints as it starts (hashing new files may take a while), and a warning where the
/// shared folder holds a home folder.
pub(crate) fn starting(config: &ServeConfig, json: bool) {
    if crate::cli::home().is_some_and(|home| home.starts_with(&config.dir)) {
        tracing::warn!(
            "{} holds your home folder: everyone on the LAN can list and fetch all of it; share a folder of \
             its own with --dir",
            config.dir.display()
        );
    }
    if !json {
        let state = config.state_dir.display().to_string();
        say!(
            "sharing {} and {} as {} (state in {}); hashing what is new (shared as it is hashed)",
            Escaped(&config.dir.display().to_string()),
            Escaped(&config.downloads.display().to_string()),
            Escaped(&config.name),
            Escaped(&state),
        );
    }
}

/// What `id` prints: this node's name, id, fingerprint and state folder.
pub(crate) fn id(name: &str, id: NodeId, state: &std::path::Path, json: bool) {
    let (fingerprint, state_dir) = (id.fingerprint(), state.to_path_buf());
    if json {
        Event::Id { name: name.to_string(), id: id.to_string(), fingerprint, state_dir }.print();
    } else {
        say!("name         {}", Escaped(name));
        say!("id           {id}");
        say!("fingerprint  {fingerprint}");
        say!("state        {}", Escaped(&state_dir.display().to_string()));
    }
}

/// What `serve` prints once it listens: with --json, the `serving` event (the files whose hashes were
/// known); people are told once every file is hashed ([`teller`]).
pub(crate) fn serving(config: &ServeConfig, node: &Node, page: Option<&str>, json: bool) {
    if json {
        let (id, files, page) = (node.id().to_string(), node.file_count(), page.map(str::to_string));
        Event::Serving { name: config.name.clone(), id, ports: ports(node).collect(), files, page }.print();
    }
}

fn ports(node: &Node) -> impl Iterator<Item = (String, u16)> {
    node.local_addrs().into_iter().map(|(name, addr)| (name, addr.port()))
}

/// Lines told about a node's events waiting for stdout; beyond these, lines are dropped.
const LINES_WAITING: usize = 1024;

/// What tells what the serving `node` (of `config`) does: hashing progress (a bar on a terminal), the
/// line once every file is hashed, and the uploads to each peer. A thread of its own prints them, so that a stdout nobody reads (a
/// full pipe) never stalls the node; lines it cannot take in time are dropped.
pub(crate) fn teller(
    node: &Node,
    config: &ServeConfig,
    mut page: Option<String>,
    (json, verbose): (bool, bool),
) -> impl FnMut(&NodeEvent) + Send + 'static {
    // As the library reads them: the paths it serves start with these.
    let roots: Vec<std::path::PathBuf> =
        [&config.dir, &config.downloads].iter().map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf())).collect();
    let ports: Vec<String> = ports(node).map(|(kind, port)| format!("{kind} {port}")).collect();
    let shared_as = format!("shared as node {} on {}", node.id(), ports.join(", "));
    let (tx, rx) = std::sync::mpsc::sync_channel::<NodeEvent>(LINES_WAITING);
    std::thread::spawn(move || {
        let mut hashing = HashingBar::new(json);
        for event in rx {
            match event {
                NodeEvent::Hashing(progress) if json => hashing_event(progress).print(),
                NodeEvent::Hashing(progress) => hashing.show(progress),
                NodeEvent::Ready { files, bytes } => {
                    hashing.finish();
                    match json {
                        true => Event::Ready { files, bytes, page: page.clone() }.print(),
                        false => say!("ready: {files} file(s) {shared_as}; Ctrl-C stops"),
                    }
                    // Once: the address carries the page's key.
                    if let (Some(page), false) = (page.take(), json) {
                        say!("web page: {page} (open it in a browser on this machine)");
                    }
                }
                NodeEvent::Uploaded(uploads) => crate::terminal::above(|| uploaded(&uploads, json, verbose, &roots)),
                event => crate::terminal::above(|| offered(&event, json)),
            }
        }
    });
    move |event| {
        if tx.try_send(event.clone()).is_err() {
            tracing::debug!("event line dropped: stdout is not read");
        }
    }
}

/// What became of an offer: taken or refused, its text, its end.
fn offered(event: &NodeEvent, json: bool) {
    let who = |from: &OfferFrom| match (&from.paired, &from.announced) {
        (Some(paired), _) if !paired.is_empty() => Escaped(paired).to_string(),
        (_, Some(announced)) => format!("{} ({})", Escaped(announced), from.id.short()),
        _ => format!("a peer with id {}", from.id.short()),
    };
    let ids = |from: &OfferFrom| (from.id.to_string(), from.announced.clone(), from.paired.clone());
    match event {
        NodeEvent::Offered { from, title, files, bytes, accepted } if json => {
            let (from, from_name, paired) = ids(from);
            let (title, files, bytes, why) = (title.clone(), *files, *bytes, accepted.clone().err());
            Event::Offer { from, from_name, paired, title, files, bytes, accepted: accepted.is_ok(), why }.print()
        }
        NodeEvent::Offered { from, title, files, bytes, accepted } => match accepted {
            Ok(()) if *files > 0 => {
                say!("receiving {} ({files} file(s), {}) from {}", Escaped(title), human_bytes(*bytes), who(from))
            }
            Ok(()) => {}
            Err(why) if why.is_empty() => say!("declined an offer of {} from {}", Escaped(title), who(from)),
            Err(why) => say!("refused an offer of {} from {}: {why}", Escaped(title), who(from)),
        },
        NodeEvent::Text { from, text } if json => {
            let (from, from_name, paired) = ids(from);
            Event::Text { from, from_name, paired, text: text.clone() }.print()
        }
        NodeEvent::Text { from, text } => {
            // Line by line: its line breaks kept, every other control character escaped.
            let lines: Vec<String> = text.lines().map(|line| format!("  {}", Escaped(line))).collect();
            say!("message from {}:\n{}", who(from), lines.join("\n"))
        }
        NodeEvent::Received { from, files, error } if json => {
            let (from, from_name, paired) = ids(from);
            Event::Received { from, from_name, paired, files: files.clone(), error: error.clone() }.print()
        }
        NodeEvent::Received { from, files, error } => {
            if !files.is_empty() {
                let first = files[0].display().to_string();
                let more = if files.len() > 1 { format!(" and {} more", files.len() - 1) } else { String::new() };
                say!("received {}{more} from {}", Escaped(&first), who(from));
            }
            if let Some(error) = error {
                say!("an offer from {} did not complete: {}", who(from), Escaped(error));
            }
        }
        _ => {}
    }
}

fn hashing_event(h: Hashing) -> Event {
    Event::Hashing { files: h.files, files_total: h.files_total, bytes: h.bytes, bytes_total: h.bytes_total }
}

/// Uploads to one peer told file by file up to this many; past it, in one line (-v lists each).
const UPLOADS_LISTED: usize = 5;

/// What a peer took, file by file: each by its path below the shared folders (`roots`), or past
/// [`UPLOADS_LISTED`] files (unless `verbose`) as one line.
fn uploaded(uploads: &[Upload], json: bool, verbose: bool, roots: &[std::path::PathBuf]) {
    let Some(first) = uploads.first() else { return };
    let peer = first.peer.to_string();
    if json {
        for upload in uploads {
            let Upload { peer_name, file, name, size, bytes, .. } = upload.clone();
            Event::Uploaded { peer: peer.clone(), peer_name, id: file.to_string(), name, size, bytes }.print();
        }
        return;
    }
    let to = match &first.peer_name {
        Some(name) => format!("{} ({peer})", Escaped(name)),
        None => peer,
    };
    if uploads.len() > UPLOADS_LISTED && !verbose {
        let (bytes, size): (u64, u64) =
            uploads.iter().map(|u| (u.bytes, u.size)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let whole = if bytes >= size { String::new() } else { format!(" of {}", human_bytes(size)) };
        say!("sent {} files ({}{whole}) to {to}", uploads.len(), human_bytes(bytes));
        return;
    }
    for upload in uploads {
        // By its path below the shared folder it is in: a bare name could be any of several.
        let within = roots.iter().find_map(|root| upload.path.strip_prefix(root).ok());
        let shown = within.unwrap_or(&upload.path).display().to_string();
        let (path, size) = (Escaped(&shown), human_bytes(upload.size));
        match upload.bytes >= upload.size {
            true => say!("sent {path} ({size}) to {to}"),
            false => say!("sent {} of {path} ({size}) to {to}", human_bytes(upload.bytes)),
        }
    }
}

/// The peers of `p2pnode peers`. Two hosts claiming one node id are both shown, each marked: one is an
/// impostor (or a stale address), and only an authenticating transport tells which. With a trust list,
/// each says whether it is on it.
pub(crate) fn peers(peers: &[Peer], names: &HashMap<NodeId, String>, json: bool, trusted: Option<&HashSet<NodeId>>) {
    let mut claims: HashMap<NodeId, usize> = HashMap::new();
    peers.iter().for_each(|p| *claims.entry(p.id()).or_default() += 1);
    let rows = peers.iter().map(|p| {
        let a = &p.announcement;
        let contested = claims[&p.id()] > 1;
        let ports: Vec<String> = a.ports.iter().map(|(k, port)| format!("{k}:{port}")).collect();
        if json {
            let ports = a.ports.iter().cloned().collect();
            let (name, id, ip) = (a.name.clone(), p.id().to_string(), p.ip.to_string());
            let (files, trusted) = (a.file_count, trusted.map(|t| t.contains(&p.id())));
            return Row::Json(Event::Peer { name, id, ip, ports, files, conflicting_claim: contested, trusted });
        }
        let id = if contested {
            format!("{} (claimed by {} hosts)", p.id().short(), claims[&p.id()])
        } else {
            p.id().short()
        };
        let name = names.get(&p.id()).unwrap_or(&a.name);
        let mut cells = vec![escape(name), id, p.ip.to_string(), ports.join(" "), a.file_count.to_string()];
        cells.extend(trusted.map(|t| if t.contains(&p.id()) { "yes" } else { "no" }.to_string()));
        Row::Text(cells)
    });
    let mut header = vec!["NAME", "ID", "ADDRESS", "PORTS", "FILES"];
    header.extend(trusted.map(|_| "TRUSTED"));
    print_rows(json, &header, rows.collect());
}

/// The content dictionary of `p2pnode ls`: the files `selected` keeps (all when `None`), in a table by
/// file, or with `tree` by path under their folders; hosts by the `names` people know them by.
pub(crate) fn files(
    dictionary: &Dictionary,
    names: &HashMap<NodeId, String>,
    json: bool,
    selected: Option<&HashSet<FileId>>,
    tree: bool,
) {
    let host_name = |h: &Host| names.get(&h.node).cloned().unwrap_or_else(|| h.node.short());
    let shown_host = |h: &Host| escape(&host_name(h));
    let row = |id: FileId, e: &DictEntry, shown_name: String| {
        // A host still downloading the file shows how much of it it has.
        let share = |h: &Host| e.partial.get(h).map(|bits| f64::from(bits.count()) / f64::from(bits.chunks().max(1)));
        if json {
            let host = |h: &Host| FileHost {
                id: h.node.to_string(),
                ip: h.ip.to_string(),
                name: host_name(h),
                partial: share(h),
            };
            let hosts = e.hosts.iter().map(host).collect();
            return Row::Json(Event::File { name: e.name.clone(), size: e.size, id: id.to_string(), hosts });
        }
        let hosts: Vec<String> = e
            .hosts
            .iter()
            .map(|h| match share(h) {
                Some(f) => format!("{} ({:.0}%)", shown_host(h), f * 100.0),
                None => shown_host(h),
            })
            .collect();
        Row::Text(vec![shown_name, human_bytes(e.size), id.short(), hosts.join(", ")])
    };
    let entries = dictionary.entries().into_iter().filter(|(id, _)| selected.is_none_or(|s| s.contains(id)));
    let rows = if tree && !json {
        let mut paths: Vec<(&str, FileId, &DictEntry)> =
            entries.flat_map(|(id, e)| e.paths.iter().map(move |p| (p.as_str(), id, e))).collect();
        paths.sort_by_key(|(path, ..)| *path);
        let mut rows = Vec::new();
        let mut open: Vec<&str> = Vec::new();
        for (path, id, e) in paths {
            let mut parts: Vec<&str> = path.split('/').collect();
            let name = parts.pop().unwrap_or_default();
            let same = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            open.truncate(same);
            for folder in &parts[same..] {
                rows.push(Row::Text(vec![
                    format!("{}{}/", "  ".repeat(open.len()), escape(folder)),
                    "".into(),
                    "".into(),
                    "".into(),
                ]));
                open.push(folder);
            }
            rows.push(row(id, e, format!("{}{}", "  ".repeat(open.len()), file_name(name))));
        }
        rows
    } else {
        entries.map(|(id, e)| row(id, e, file_name(&e.name))).collect()
    };
    print_rows(json, &["NAME", "SIZE", "ID", "PEERS"], rows);
}

/// A file name as a table shows it: escaped, and quoted where it could pass for an id (`get` takes an
/// id first, so a file named like another's id is fetched only by its own id or full name).
fn file_name(name: &str) -> String {
    if node::looks_like_id(name) { format!("\"{}\"", Escaped(name)) } else { escape(name) }
}

/// A row of a listing: an event with --json, else the cells of a table row.
enum Row {
    Json(Event),
    Text(Vec<String>),
}

/// JSON rows are printed as they are; text rows as a table under `header`, columns padded to align by
/// the cells' display width (CJK and emoji take two columns), and on a terminal fitted to its width: the
/// widest columns are cut, each cut cell ending in `…`, rather than every row wrapping.
fn print_rows(json: bool, header: &[&str], rows: Vec<Row>) {
    let mut table = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for row in rows {
        match row {
            Row::Json(event) => event.print(),
            Row::Text(cells) => table.push(cells),
        }
    }
    if json {
        return;
    }
    let room = console::Term::stdout().size_checked().map(|(_, cols)| usize::from(cols));
    let widths = fit(&table, room);
    for row in table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| console::pad_str(cell, w, console::Alignment::Left, Some("…")).into_owned())
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
}

/// The width of each column of `table` (its widest cell's, in display columns); where the row does not
/// fit `room`, the widest column is narrowed, one column at a time, down to its header's width or 8.
fn fit(table: &[Vec<String>], room: Option<usize>) -> Vec<usize> {
    let columns = table.first().map_or(0, Vec::len);
    let mut widths: Vec<usize> =
        (0..columns).map(|c| table.iter().map(|r| console::measure_text_width(&r[c])).max().unwrap_or(0)).collect();
    let Some(room) = room else { return widths };
    let least: Vec<usize> = table[0].iter().map(|h| console::measure_text_width(h).max(8)).collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(&widths) > room {
        let widest = (0..columns).filter(|&c| widths[c] > least[c]).max_by_key(|&c| widths[c] - least[c]);
        let Some(c) = widest else { break };
        widths[c] -= 1;
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_fits_the_terminal_by_its_widest_columns() {
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let long = "a-very-long-file-name-that-would-wrap-every-row-of-the-table.txt";
        let table = vec![
            row(&["NAME", "SIZE", "PEERS"]),
            row(&[long, "1.0 KiB", "alpha"]),
            row(&["日本語.txt", "2 B", "beta"]),
        ];
        assert_eq!(fit(&table, None), [long.len(), 7, 5], "not a terminal: as wide as they come");
        let widths = fit(&table, Some(40));
        assert_eq!(widths.iter().sum::<usize>() + 4, 40, "{widths:?}");
        assert_eq!(widths[1..], [7, 5], "the widest column gives way");
        assert_eq!(console::measure_text_width("日本語.txt"), 10, "two columns per CJK character");
        let cut = console::pad_str(long, widths[0], console::Alignment::Left, Some("…"));
        assert!(cut.ends_with('…') && console::measure_text_width(&cut) == widths[0], "{cut}");
    }
}
