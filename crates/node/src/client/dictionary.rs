//! The content dictionary: every file on the LAN by id, with its name, size and the peers hosting it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use discovery::Peer;
use proto::{Bitmap, Catalogue, FileId, NodeId};

/// Close names offered when a name is not found.
const MAX_SUGGESTIONS: usize = 5;
/// The shortest id prefix accepted in place of a full id.
const MIN_ID_PREFIX: usize = 8;

/// One way a query may name a file, tried in order from the most to the least exact.
type Matcher<'a> = dyn Fn(FileId, &DictEntry) -> bool + 'a;

/// One host's claim to a node id, as a file's host: two hosts claiming one id (one an impostor) host
/// what their own catalogues list, each apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host {
    /// The node id it claims.
    pub node: NodeId,
    /// Its address.
    pub ip: IpAddr,
}

impl Host {
    /// The host of a discovered peer.
    pub fn of(peer: &Peer) -> Self {
        Self { node: peer.id(), ip: peer.ip }
    }
}

/// A file of the dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictEntry {
    /// The path its hosts give it (the first of `paths`).
    pub name: String,
    /// Every path its hosts give it (`folder/file`): one content may sit in several folders.
    pub paths: BTreeSet<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The peers hosting it.
    pub hosts: Vec<Host>,
    /// The hosts that have only part of it (they are downloading it), with the bitmap of their chunks.
    pub partial: HashMap<Host, Bitmap>,
}

/// Files by id, merged from the catalogues of every peer.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    files: BTreeMap<FileId, DictEntry>,
}

/// Why a name or id does not resolve to one file.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No file has that name or id; `close` lists similar names.
    NotFound {
        /// Similar names.
        close: Vec<String>,
    },
    /// Several files match.
    Ambiguous {
        /// Their ids.
        ids: Vec<FileId>,
    },
}

impl Dictionary {
    /// Adds the files of `peer`'s catalogue.
    pub fn add_catalogue(&mut self, peer: Host, catalogue: &Catalogue) {
        for e in &catalogue.entries {
            let entry = self.files.entry(e.id).or_insert_with(|| DictEntry {
                name: e.name.clone(),
                paths: BTreeSet::new(),
                size: e.size,
                hosts: Vec::new(),
                partial: HashMap::new(),
            });
            if entry.paths.insert(e.name.clone()) && e.name < entry.name {
                entry.name = e.name.clone();
            }
            if !entry.hosts.contains(&peer) {
                entry.hosts.push(peer);
            }
            if let Some(bits) = &e.have {
                entry.partial.insert(peer, bits.clone());
            }
        }
    }

    /// The files, sorted by name.
    pub fn entries(&self) -> Vec<(FileId, &DictEntry)> {
        let mut all: Vec<_> = self.files.iter().map(|(id, e)| (*id, e)).collect();
        all.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(&b.0)));
        all
    }

    /// The file with this id.
    pub fn entry(&self, id: &FileId) -> Option<&DictEntry> {
        self.files.get(id)
    }

    /// The one file that `query` names. Ids come first: a full id, or an id prefix of at least 8 hex
    /// digits, names the files whose id it is or starts with; only when no id matches is `query` taken as
    /// a path (`docs/report.pdf`), then as a file name in any folder (`report.pdf`), each exact before equal
    /// but for case. So a peer cannot hijack `get 00803b11` by naming its own file after another file's
    /// short id.
    pub fn resolve(&self, query: &str) -> Result<FileId, ResolveError> {
        let lower = query.to_lowercase();
        let file_name = |p: &String| p.rsplit('/').next().unwrap_or_default().to_string();
        let tests: [&Matcher; 5] = [
            &|id, _| looks_like_id(query) && id.to_string().starts_with(&lower),
            &|_, e| e.paths.contains(query),
            &|_, e| e.paths.iter().any(|p| p.to_lowercase() == lower),
            &|_, e| e.paths.iter().any(|p| file_name(p) == query),
            &|_, e| e.paths.iter().any(|p| file_name(p).to_lowercase() == lower),
        ];
        for test in tests {
            let ids: Vec<FileId> = self.files.iter().filter(|(id, e)| test(**id, e)).map(|(id, _)| *id).collect();
            match ids.as_slice() {
                [] => continue,
                [one] => return Ok(*one),
                _ => return Err(ResolveError::Ambiguous { ids }),
            }
        }
        Err(ResolveError::NotFound { close: self.close_names(&lower) })
    }

    /// The files `query` names, each with where it goes below the destination (`cp -r` style): one file
    /// ([`Self::resolve`]) goes by its name; a folder (`docs/2024`, no file of that path or name) goes
    /// whole, its files below a folder of its name (`2024/q1.pdf`); a glob matches paths from the top of
    /// the shares as a shell does (`*`, `?` and `[...]` within one folder, `**` any depth: `*.pdf` the
    /// files at the top, `**/*.pdf` every one), a folder it matches goes whole, and each file goes by its
    /// path below the glob's folders without wildcards (`photos/*` puts `photos/2024/a.jpg` at
    /// `2024/a.jpg`), so no two files of different paths land on one place. Sorted by where they go.
    pub fn select(&self, query: &str) -> Result<Vec<(FileId, String)>, ResolveError> {
        let file_name = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
        if let Some(wildcard) = query.find(['*', '?', '[']) {
            let pattern = query.trim_end_matches('/');
            let pattern = glob::Pattern::new(pattern).map_err(|_| ResolveError::NotFound { close: vec![] })?;
            let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
            let fixed = &query[..query[..wildcard].rfind('/').map_or(0, |at| at + 1)];
            let matched = self.paths().filter(|(_, path)| {
                // The file, or a folder it is in.
                let folders = path.match_indices('/').map(|(at, _)| &path[..at]);
                folders.chain([*path]).any(|p| pattern.matches_with(p, options))
            });
            let found: Vec<_> =
                matched.map(|(id, path)| (id, path.strip_prefix(fixed).unwrap_or(path).to_string())).collect();
            return if found.is_empty() { Err(ResolveError::NotFound { close: vec![] }) } else { Ok(dedup(found)) };
        }
        match self.resolve(query) {
            Ok(id) => {
                let path = self.files.get(&id).map_or(query, |e| e.name.as_str());
                Ok(vec![(id, file_name(path))])
            }
            Err(ResolveError::NotFound { close }) => {
                let folder = query.trim_end_matches('/');
                let inside = format!("{folder}/");
                // The folder's own name and what is below it: `docs/2024` -> `2024/...`.
                let parent = folder.rfind('/').map_or(0, |at| at + 1);
                let found: Vec<_> = self
                    .paths()
                    .filter(|(_, path)| !folder.is_empty() && path.starts_with(&inside))
                    .map(|(id, path)| (id, path[parent..].to_string()))
                    .collect();
                if found.is_empty() { Err(ResolveError::NotFound { close }) } else { Ok(dedup(found)) }
            }
            Err(e) => Err(e),
        }
    }

    /// Every path of every file.
    fn paths(&self) -> impl Iterator<Item = (FileId, &str)> {
        self.files.iter().flat_map(|(id, e)| e.paths.iter().map(|p| (*id, p.as_str())))
    }

    /// Names containing the query, or within a few edits of it.
    fn close_names(&self, lower: &str) -> Vec<String> {
        let max_edits = (lower.chars().count() / 3).max(2);
        let mut scored: Vec<(usize, &str)> = self
            .files
            .values()
            .filter_map(|e| {
                let name = e.name.to_lowercase();
                let d = if name.contains(lower) { 0 } else { strsim::levenshtein(&name, lower) };
                (d <= max_edits).then_some((d, e.name.as_str()))
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, n)| n.to_string()).collect()
    }
}

/// `found` sorted by where each goes, each place once.
fn dedup(mut found: Vec<(FileId, String)>) -> Vec<(FileId, String)> {
    found.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    found.dedup_by(|a, b| a.1 == b.1);
    found
}

/// Whether `text` can name a file by id: 8 to 64 hex digits (a full id or a prefix of one).
pub fn looks_like_id(text: &str) -> bool {
    (MIN_ID_PREFIX..=2 * 32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::CatalogueEntry;

    fn host(n: u8) -> Host {
        Host { node: NodeId([n; 32]), ip: IpAddr::from([10, 0, 0, n]) }
    }

    /// A whole file `id` at `path`.
    fn entry(id: u8, path: &str) -> CatalogueEntry {
        CatalogueEntry { id: FileId([id; 32]), name: path.into(), size: 1, have: None }
    }

    fn dictionary() -> Dictionary {
        let mut d = Dictionary::default();
        d.add_catalogue(host(1), &Catalogue { entries: vec![entry(1, "report.pdf"), entry(2, "dup.txt")] });
        d.add_catalogue(host(2), &Catalogue { entries: vec![entry(1, "report.pdf"), entry(3, "dup.txt")] });
        d
    }

    #[test]
    fn merges_hosts_of_the_same_content() {
        let d = dictionary();
        assert_eq!(d.entry(&FileId([1; 32])).map(|e| e.hosts.len()), Some(2));
        assert_eq!(d.entries().len(), 3);
    }

    #[test]
    fn resolves_names_ids_and_prefixes() {
        let d = dictionary();
        assert_eq!(d.resolve("report.pdf"), Ok(FileId([1; 32])));
        assert_eq!(d.resolve("REPORT.PDF"), Ok(FileId([1; 32])));
        assert_eq!(d.resolve(&FileId([3; 32]).to_string()), Ok(FileId([3; 32])));
        assert_eq!(d.resolve("03030303"), Ok(FileId([3; 32])));
        assert_eq!(d.resolve("dup.txt"), Err(ResolveError::Ambiguous { ids: vec![FileId([2; 32]), FileId([3; 32])] }));
    }

    #[test]
    fn files_in_folders_resolve_by_path_or_by_their_name() {
        let mut d = Dictionary::default();
        let listed = [entry(4, "docs/report.pdf"), entry(5, "docs/2024/report.pdf"), entry(6, "notes/todo.txt")];
        d.add_catalogue(host(1), &Catalogue { entries: listed.to_vec() });
        d.add_catalogue(host(2), &Catalogue { entries: vec![entry(6, "todo.txt")] });
        assert_eq!(d.resolve("docs/report.pdf"), Ok(FileId([4; 32])));
        assert_eq!(d.resolve("Docs/2024/Report.PDF"), Ok(FileId([5; 32])));
        assert_eq!(d.resolve("todo.txt"), Ok(FileId([6; 32])), "a path of its own on host 2");
        assert_eq!(
            d.resolve("report.pdf"),
            Err(ResolveError::Ambiguous { ids: vec![FileId([4; 32]), FileId([5; 32])] })
        );
        let todo = d.entry(&FileId([6; 32])).expect("entry");
        assert_eq!((todo.name.as_str(), todo.paths.len()), ("notes/todo.txt", 2), "shown by its first path");
    }

    #[test]
    fn folders_and_globs_select_files_with_where_they_go() {
        let mut d = Dictionary::default();
        let listed = [entry(4, "docs/report.pdf"), entry(5, "docs/2024/q1.pdf"), entry(6, "music/a.ogg")];
        d.add_catalogue(host(1), &Catalogue { entries: listed.to_vec() });
        let picked = |q: &str| d.select(q).map(|v| v.into_iter().map(|(id, to)| (id.0[0], to)).collect::<Vec<_>>());
        let to = |v: &[(u8, &str)]| Ok(v.iter().map(|(id, p)| (*id, p.to_string())).collect());
        assert_eq!(picked("docs"), to(&[(5, "docs/2024/q1.pdf"), (4, "docs/report.pdf")]), "a folder goes whole");
        assert_eq!(picked("docs/2024/"), to(&[(5, "2024/q1.pdf")]));
        assert_eq!(picked("docs/report.pdf"), to(&[(4, "report.pdf")]), "a file goes by its name");
        assert!(matches!(d.select("doc"), Err(ResolveError::NotFound { .. })), "a folder is named whole");
        assert!(matches!(d.select("*.txt"), Err(ResolveError::NotFound { .. })));
    }

    #[test]
    fn globs_match_as_in_a_shell_and_keep_paths_below_their_fixed_part() {
        let mut d = Dictionary::default();
        let listed = [
            entry(1, "top.txt"),
            entry(2, "docs/a.txt"),
            entry(3, "docs/2024/a.txt"),
            entry(4, "photos/2023/x.jpg"),
            entry(5, "photos/2024/x.jpg"),
            entry(6, "docs/report.pdf"),
        ];
        d.add_catalogue(host(1), &Catalogue { entries: listed.to_vec() });
        let picked = |q: &str| d.select(q).map(|v| v.into_iter().map(|(id, to)| (id.0[0], to)).collect::<Vec<_>>());
        let to = |v: &[(u8, &str)]| Ok(v.iter().map(|(id, p)| (*id, p.to_string())).collect());
        assert_eq!(picked("*.txt"), to(&[(1, "top.txt")]), "* stays at the top, as in a shell");
        assert_eq!(
            picked("**/*.txt"),
            to(&[(3, "docs/2024/a.txt"), (2, "docs/a.txt"), (1, "top.txt")]),
            "** goes any depth, and files of one name keep their folders apart"
        );
        assert_eq!(
            picked("docs/*"),
            to(&[(3, "2024/a.txt"), (2, "a.txt"), (6, "report.pdf")]),
            "a folder matched goes whole, below the glob's fixed part"
        );
        assert_eq!(
            picked("photos/*"),
            to(&[(4, "2023/x.jpg"), (5, "2024/x.jpg")]),
            "a folder of folders matches its folders"
        );
        assert_eq!(picked("photos/*/x.jpg"), to(&[(4, "2023/x.jpg"), (5, "2024/x.jpg")]), "no two land on one place");
        assert_eq!(picked("*").map(|v| v.len()), Ok(6), "everything at the top, folders whole");
    }

    #[test]
    fn an_id_wins_over_a_name_that_looks_like_it() {
        let mut d = dictionary();
        let impostor = CatalogueEntry { id: FileId([9; 32]), name: "03030303".into(), size: 1, have: None };
        d.add_catalogue(host(3), &Catalogue { entries: vec![impostor] });
        assert_eq!(d.resolve("03030303"), Ok(FileId([3; 32])), "the short id of dup.txt, not the file named so");
        assert_eq!(d.resolve(&FileId([3; 32]).to_string()), Ok(FileId([3; 32])));
        assert_eq!(d.resolve("0303030"), Err(ResolveError::NotFound { close: vec!["03030303".into()] }));
        // A name that looks like an id still resolves when no id matches it.
        let named = CatalogueEntry { id: FileId([7; 32]), name: "deadbeef".into(), size: 1, have: None };
        d.add_catalogue(host(3), &Catalogue { entries: vec![named] });
        assert_eq!(d.resolve("deadbeef"), Ok(FileId([7; 32])));
    }

    #[test]
    fn suggests_close_names() {
        let d = dictionary();
        assert_eq!(d.resolve("reprot.pdf"), Err(ResolveError::NotFound { close: vec!["report.pdf".into()] }));
        assert_eq!(d.resolve("report"), Err(ResolveError::NotFound { close: vec!["report.pdf".into()] }));
        assert_eq!(d.resolve("zzzzzzzzzzzz"), Err(ResolveError::NotFound { close: vec![] }));
    }
}
