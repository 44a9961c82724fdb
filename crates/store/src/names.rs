//! File names: received names made safe, and the names of download artifacts.

/// Suffix of a download in progress.
pub(crate) const PART_SUFFIX: &str = ".part";
/// Suffix of the state file beside a download in progress.
pub(crate) const STATE_SUFFIX: &str = ".part.state";

/// Room an on-disk name leaves for what may be appended to it: ` (9999)` (a free name, see [`numbered`])
/// and `.part.state` (a download in progress), so that every name within the wire's 255 bytes can be
/// downloaded on a file system with 255-byte names.
const APPENDED: usize = " (9999)".len() + STATE_SUFFIX.len();
/// The longest extension kept whole when a name is shortened.
const MAX_EXTENSION: usize = 16;

/// Whether `name` is a download in progress or its state (never shared, never listed).
pub fn is_download_artifact(name: &str) -> bool {
    name.ends_with(PART_SUFFIX) || name.ends_with(STATE_SUFFIX)
}

/// Characters the file systems of Windows (FAT, exFAT, NTFS, SMB shares) reject in a name.
const WINDOWS_REJECTS: &str = "\"*:<>?|";

/// What a destination's file system takes in a name, beyond the rules every destination keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRules {
    /// The file system's type where it rejects [`WINDOWS_REJECTS`]; `None` where it takes them.
    rejects_windows: Option<&'static str>,
}

impl NameRules {
    /// A file system that takes every character but `/` and NUL (ext4, btrfs, xfs, APFS, ...).
    pub const POSIX: Self = Self { rejects_windows: None };

    /// A file system of type `fs` that rejects the characters Windows does (`"*:<>?|`).
    pub const fn windows(fs: &'static str) -> Self {
        Self { rejects_windows: Some(fs) }
    }
}

/// A plain file name for `name`, which came from the network, for a file system of `rules`
/// ([`saved_as`]).
pub fn safe_file_name(name: &str, rules: NameRules) -> String {
    saved_as(name, rules).0
}

/// A plain file name for `name`, which came from the network, and why it differs from the name's last
/// component, if it does. Only the last path component is kept (whether separated by `/` or `\\`);
/// control characters and Unicode format characters (bidi overrides, zero-width;
/// [`proto::text::is_format_char`]) become `_`, and so do `"*:<>?|` where the file system rejects them
/// (`rules`); leading dots and trailing dots or spaces go, Windows device names get a `_` prefix (a file
/// that cannot be opened on Windows), a name that would pass for a download artifact (`.part`,
/// `.part.state`) gets a `_` suffix, and the result is short enough for ` (N)` and `.part.state` to be
/// appended (the extension kept), and never empty.
pub fn saved_as(name: &str, rules: NameRules) -> (String, Option<String>) {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut why: Vec<String> = Vec::new();
    let mut because = |reason: String| {
        if !why.contains(&reason) {
            why.push(reason);
        }
    };
    let rejected = |c: char| rules.rejects_windows.is_some() && WINDOWS_REJECTS.contains(c);
    let mut cleaned = String::with_capacity(last.len());
    for c in last.chars() {
        if c.is_control() || proto::text::is_format_char(c) {
            because("control or format characters replaced".into());
            cleaned.push('_');
        } else if rejected(c) {
            let fs = rules.rejects_windows.unwrap_or_default();
            because(format!("{fs} does not take \" * : < > ? | in names"));
            cleaned.push('_');
        } else {
            cleaned.push(c);
        }
    }
    let mut safe = cleaned.trim_start_matches('.').to_string();
    if safe.len() != cleaned.len() {
        because("leading dots removed (they hide a file)".into());
    }
    let trimmed = safe.trim_end_matches(['.', ' ']).len();
    if trimmed != safe.len() {
        safe.truncate(trimmed);
        because("trailing dots and spaces removed (Windows drops them)".into());
    }
    // A file shared by a Linux peer under such a name must not become unopenable on a Windows peer.
    if proto::is_windows_device(&safe) {
        safe.insert(0, '_');
        because("a Windows device name".into());
    }
    if is_download_artifact(&safe) {
        safe.push('_');
        because("it would pass for a download in progress".into());
    }
    let shortened = shorten(&safe, proto::MAX_FILE_NAME - APPENDED);
    if shortened != safe {
        because("shortened to leave room for a number and .part.state".into());
    }
    let safe = if shortened.is_empty() { "download".to_string() } else { shortened };
    (safe, (!why.is_empty()).then(|| why.join("; ")))
}

/// `name` cut to at most `max` bytes at a character boundary, its extension (if short) kept.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION => &name[dot..],
        _ => "",
    };
    let mut end = max - ext.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", name[..end].trim_end_matches(['.', ' ']))
}

/// `name`, then `stem (1).ext`, `stem (2).ext`, ...: the names tried so that no existing file is replaced.
pub(crate) fn numbered(name: &str) -> impl Iterator<Item = String> + use<> {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    let (stem, ext) = (stem.to_string(), ext.to_string());
    std::iter::once(name.to_string()).chain((1..).map(move |n| format!("{stem} ({n}){ext}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(name: &str) -> String {
        safe_file_name(name, NameRules::POSIX)
    }

    #[test]
    fn characters_are_replaced_only_where_the_file_system_rejects_them() {
        let quoted = "it's \"quoted\": what? <yes>|*.txt";
        assert_eq!(saved_as(quoted, NameRules::POSIX), (quoted.to_string(), None), "ext4 takes them all");
        let (saved, why) = saved_as(quoted, NameRules::windows("exfat"));
        assert_eq!(saved, "it's _quoted__ what_ _yes___.txt");
        assert_eq!(why.as_deref(), Some("exfat does not take \" * : < > ? | in names"));
        let (_, why) = saved_as(".x\u{202e}.part", NameRules::POSIX);
        let why = why.expect("renamed");
        assert!(
            why.contains("control or format") && why.contains("leading dots") && why.contains("download in progress"),
            "{why}"
        );
        assert_eq!(saved_as("docs/report.pdf", NameRules::windows("vfat")).1, None, "folders are no renaming");
    }

    #[test]
    fn hostile_names_become_plain_names() {
        assert_eq!(safe("../../x"), "x");
        assert_eq!(safe("/etc/passwd"), "passwd");
        assert_eq!(safe("C:\\x"), "x");
        assert_eq!(safe("a/../../b"), "b");
        assert_eq!(safe(".."), "download");
        assert_eq!(safe("a\0b\nc"), "a_b_c");
        assert_eq!(safe("con.txt"), "_con.txt");
        assert_eq!(safe(".bashrc"), "bashrc");
        assert_eq!(safe("ok name (2).tar.gz"), "ok name (2).tar.gz");
        assert_eq!(safe(&"é".repeat(200)).len(), 236);
    }

    #[test]
    fn format_characters_never_reach_the_disk() {
        assert_eq!(safe("invoice\u{202e}txt.exe"), "invoice_txt.exe");
        assert_eq!(safe("a\u{200b}b\u{2066}c\u{feff}"), "a_b_c_");
        assert_eq!(safe("esc\x1b[2Jape\u{9b}"), "esc_[2Jape_");
    }

    #[test]
    fn names_never_pass_for_download_artifacts() {
        assert_eq!(safe("evil.part"), "evil.part_");
        assert_eq!(safe("evil.part.state"), "evil.part.state_");
        assert!(!is_download_artifact(&safe("x.part. ")));
    }

    #[test]
    fn long_names_leave_room_for_suffixes_and_keep_their_extension() {
        for len in 240..=255 {
            let name = format!("{}.tar.gz", "n".repeat(len - 7));
            let safe = safe(&name);
            let longest = format!("{}{STATE_SUFFIX}", numbered(&safe).nth(9999).expect("numbered"));
            assert!(longest.len() <= 255, "{len}: {} bytes", longest.len());
            assert!(safe.ends_with(".gz"), "{safe}");
        }
        let wide = format!("{}.mkv", "日".repeat(84));
        assert!(safe(&wide).ends_with("日.mkv"));
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        let names: Vec<_> = numbered("movie.mkv").take(3).collect();
        assert_eq!(names, ["movie.mkv", "movie (1).mkv", "movie (2).mkv"]);
        assert_eq!(numbered(".hidden").nth(1).as_deref(), Some(".hidden (1)"));
        assert_eq!(numbered("README").nth(1).as_deref(), Some("README (1)"));
    }

    #[test]
    fn artifacts_are_recognised() {
        assert!(is_download_artifact("a.iso.part"));
        assert!(is_download_artifact("a.iso.part.state"));
        assert!(!is_download_artifact("a.iso"));
    }
}
