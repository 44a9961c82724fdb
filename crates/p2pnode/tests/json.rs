//! Every JSON line the binary prints, checked against docs/json.md: each has an `event` the document
//! has a section for, and exactly the fields that section lists (objects in arrays too).

mod common;

use std::collections::BTreeSet;

use common::{Server, free_udp_port, json_lines, p2pnode, run};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/json.md");

/// The fields the section of `event` documents: `name`, or `array[].name` for the objects of an array.
fn documented(event: &str) -> BTreeSet<String> {
    let section = DOC.split(&format!("## `{event}`\n")).nth(1).unwrap_or_else(|| panic!("no section for {event}"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let fields = section.lines().filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(f, _)| f.to_string()));
    fields.collect()
}

/// The fields `line` carries, named as the document names them.
fn carried(line: &Value) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for (key, value) in line.as_object().expect("an object per line") {
        fields.insert(key.clone());
        for item in value.as_array().into_iter().flatten() {
            fields.extend(item.as_object().into_iter().flat_map(|o| o.keys().map(|k| format!("{key}[].{k}"))));
        }
    }
    fields
}

#[test]
fn every_json_line_is_a_documented_event() {
    let port = free_udp_port();
    let (shared, into) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    std::fs::write(shared.path().join("notes.txt"), testdata::bytes(700_000, 3)).expect("write");
    let server = Server::start(port, shared.path(), "alpha", &[], &[]);
    let into = into.path().to_str().expect("utf-8");

    let mut lines = vec![server.serving.clone()];
    for args in [
        &["peers"][..],
        &["ls"],
        &["get", "notes.txt", "-o", into],
        &["get", "notes.txt", "-o", into],
        &["get", "missing.txt"],
        &["get"],
    ] {
        lines.extend(json_lines(&run(p2pnode(port).arg("--json").args(args))));
    }
    // The server hashed its file, and tells what the first get took as its connection ends.
    lines.push(server.wait_for_event(|e| e["event"] == "hashing"));
    lines.push(server.wait_for_event(|e| e["event"] == "ready"));
    lines.push(server.wait_for_event(|e| e["event"] == "uploaded"));
    let mut seen = BTreeSet::new();
    for line in &lines {
        let event = line["event"].as_str().unwrap_or_else(|| panic!("no event: {line}"));
        assert_eq!(carried(line), documented(event), "{line}");
        seen.insert(event.to_string());
    }
    let expected = [
        "already_have",
        "chunk",
        "done",
        "error",
        "file",
        "hashing",
        "peer",
        "ready",
        "serving",
        "started",
        "uploaded",
    ];
    assert_eq!(seen, expected.iter().map(|e| e.to_string()).collect(), "the events this test makes");
}
