//! How sizes, names and lists are written for people: in few columns, names whole or visibly cut, and
//! namesakes told apart.

use std::collections::HashMap;

use node::NodeId;
pub(crate) use node::human_bytes;

/// The names people know `peers` by: the one the trust list files a peer under (`list`, from pairing),
/// with the name it announces beside it where that differs; else the announced one. A peer announcing a
/// name the trust list gives another id is warned of: it is not the one paired.
pub(crate) fn known_names(peers: &[node::Peer], list: &node::TrustList) -> HashMap<NodeId, String> {
    let name = |p: &node::Peer| {
        let announced = &p.announcement.name;
        if let Some(paired) = list.id_of(announced).filter(|id| *id != p.id()) {
            tracing::warn!(
                "{announced} announces a new id {}, not the one paired ({}); pair again if {announced} reinstalled",
                p.id().short(),
                paired.short()
            );
        }
        match list.name_of(p.id()) {
            Some(known) if known != announced => format!("{known} ({announced})"),
            Some(known) => known.to_string(),
            None => announced.clone(),
        }
    };
    distinct(peers.iter().map(|p| (p.id(), name(p))).collect())
}

/// The names of `peers`, those that two or more peers announce told apart by their short ids
/// (`vm (1a2b3c4d)`).
pub(crate) fn distinct(peers: HashMap<NodeId, String>) -> HashMap<NodeId, String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    peers.values().for_each(|name| *count.entry(name.clone()).or_default() += 1);
    let told_apart = |(id, name): (NodeId, String)| match count[&name] {
        1 => (id, name),
        _ => (id, format!("{name} ({})", id.short())),
    };
    peers.into_iter().map(told_apart).collect()
}

/// `items` joined by `, ` as far as they fit `room` display columns, whole; the rest counted (`+2 more`).
pub(crate) fn fit_list(items: &[String], room: usize) -> String {
    let mut shown = String::new();
    for (i, item) in items.iter().enumerate() {
        let more = match items.len() - i - 1 {
            0 => String::new(),
            n => format!(", +{n} more"),
        };
        let with = if shown.is_empty() { item.clone() } else { format!("{shown}, {item}") };
        if console::measure_text_width(&with) + console::measure_text_width(&more) > room {
            return match shown.is_empty() {
                true => format!("{} peers", items.len()),
                false => format!("{shown}, +{} more", items.len() - i),
            };
        }
        shown = with;
    }
    shown
}

/// `text` cut to `room` characters, the cut marked.
pub(crate) fn cut(text: &str, room: usize) -> String {
    match text.char_indices().nth(room) {
        Some(_) => format!("{}…", text.chars().take(room - 1).collect::<String>()),
        None => text.to_string(),
    }
}

/// `; 65 % was already here` where part of `size` was.
pub(crate) fn already_there(there: u64, size: u64) -> String {
    match there {
        0 => String::new(),
        _ => format!("; {:.0} % was already here", there as f64 * 100.0 / size.max(1) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_on_the_bar_are_whole_names_and_namesakes_are_told_apart() {
        let items: Vec<String> = ["alice 2.0 MiB/s", "bob 1.0 MiB/s", "carol 10 KiB/s"].map(String::from).into();
        assert_eq!(fit_list(&items, 80), "alice 2.0 MiB/s, bob 1.0 MiB/s, carol 10 KiB/s");
        assert_eq!(fit_list(&items, 30), "alice 2.0 MiB/s, +2 more", "never cut mid-name");
        assert_eq!(fit_list(&items, 5), "3 peers");
        let (a, b, c) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        let names = distinct([(a, "vm".to_string()), (b, "vm".to_string()), (c, "laptop".to_string())].into());
        assert_eq!((names[&a].as_str(), names[&c].as_str()), ("vm (01010101)", "laptop"));
        assert_ne!(names[&a], names[&b]);
    }

    #[test]
    fn names_are_cut_to_fit() {
        assert_eq!(cut("short", 16), "short");
        assert_eq!(cut("a-very-long-file-name.iso", 8), "a-very-…");
    }
}
