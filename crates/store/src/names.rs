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
/// (whether separated by `/` or `\\`), characters that are special in paths on any system, control
/// characters and Unicode format characters (bidi overrides, zero-width; [`proto::text::is_format_char`])
/// become `_`, leading dots and trailing dots or spaces go, Windows device names get a `_` prefix, a name
/// that would pass for a download artifact (`.part`, `.part.state`) gets a `_` suffix, and the result is
/// short enough for ` (N)` and `.part.state` to be appended (the extension kept), and never empty.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() || proto::text::is_format_char(c) || "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let mut safe = cleaned.trim_start_matches('.').trim_end_matches(['.', ' ']).to_string();
    let stem = safe.split('.').next().unwrap_or_default();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        safe.insert(0, '_');
    }
    if is_download_artifact(&safe) {
        safe.push('_');
    }
    let safe = shorten(&safe, proto::MAX_FILE_NAME - APPENDED);
    if safe.is_empty() { "download".to_string() } else { safe }
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
        assert_eq!(safe_file_name(&"é".repeat(200)).len(), 236);
    }

    #[test]
    fn format_characters_never_reach_the_disk() {
        assert_eq!(safe_file_name("invoice\u{202e}txt.exe"), "invoice_txt.exe");
        assert_eq!(safe_file_name("a\u{200b}b\u{2066}c\u{feff}"), "a_b_c_");
        assert_eq!(safe_file_name("esc\x1b[2Jape\u{9b}"), "esc_[2Jape_");
    }

    #[test]
    fn names_never_pass_for_download_artifacts() {
        assert_eq!(safe_file_name("evil.part"), "evil.part_");
        assert_eq!(safe_file_name("evil.part.state"), "evil.part.state_");
        assert!(!is_download_artifact(&safe_file_name("x.part. ")));
    }

    #[test]
    fn long_names_leave_room_for_suffixes_and_keep_their_extension() {
        for len in 240..=255 {
            let name = format!("{}.tar.gz", "n".repeat(len - 7));
            let safe = safe_file_name(&name);
            let longest = format!("{}{STATE_SUFFIX}", numbered(&safe).nth(9999).expect("numbered"));
            assert!(longest.len() <= 255, "{len}: {} bytes", longest.len());
            assert!(safe.ends_with(".gz"), "{safe}");
        }
        let wide = format!("{}.mkv", "日".repeat(84));
        assert!(safe_file_name(&wide).ends_with("日.mkv"));
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
