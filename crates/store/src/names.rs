//! File names: received names made safe, and the names of download artifacts.

/// Suffix of a download in progress.
pub(crate) const PART_SUFFIX: &str = ".part";
/// Suffix of the state file beside a download in progress.
pub(crate) const STATE_SUFFIX: &str = ".part.state";

/// Windows device names, refused as file names there even with an extension: a file shared by a Linux
/// peer under such a name must not become unopenable on a Windows peer.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Whether `name` is a download in progress or its state (never shared, never listed).
pub fn is_download_artifact(name: &str) -> bool {
    name.ends_with(PART_SUFFIX) || name.ends_with(STATE_SUFFIX)
}

/// A plain file name for `name`, which came from the network: only its last path component is kept
/// (whether separated by `/` or `\`), characters that are special in paths on any system and control
/// characters become `_`, leading dots and trailing dots or spaces go, Windows device names get a `_`
/// prefix, and the result is at most 255 bytes and never empty.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String =
        last.chars().map(|c| if c.is_control() || "<>:\"|?*".contains(c) { '_' } else { c }).collect();
    let mut safe = cleaned.trim_start_matches('.').trim_end_matches(['.', ' ']).to_string();
    let stem = safe.split('.').next().unwrap_or_default();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        safe.insert(0, '_');
    }
    let mut end = safe.len().min(proto::MAX_FILE_NAME);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe.truncate(end);
    if safe.is_empty() { "download".to_string() } else { safe }
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

    #[test]
    fn hostile_names_become_plain_names() {
        assert_eq!(safe_file_name("../../x"), "x");
        assert_eq!(safe_file_name("/etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x"), "x");
        assert_eq!(safe_file_name("a/../../b"), "b");
        assert_eq!(safe_file_name(".."), "download");
        assert_eq!(safe_file_name("a\0b\nc"), "a_b_c");
        assert_eq!(safe_file_name("con.txt"), "_con.txt");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("ok name (2).tar.gz"), "ok name (2).tar.gz");
        assert_eq!(safe_file_name(&"é".repeat(200)).len(), 254);
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
