//! Paths of shared files: relative, `/`-separated, and safe to recreate below a folder on any system.
//! A node checks each path where it makes it (a file whose path fails is not shared, with a warning) and
//! again where it receives one (a catalogue with such a path is refused), so a path from the network never
//! names a place outside the folder it is placed in.

use crate::MAX_FILE_NAME;

/// The longest path of a shared file, in bytes.
pub const MAX_PATH: usize = 1024;
/// The most components (folders and the file) of a path.
pub const MAX_DEPTH: usize = 32;

/// Windows device names, which Windows refuses as file names even with an extension: a file shared by a
/// Linux peer under such a name must not become unopenable on a Windows peer.
pub const WINDOWS_DEVICES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Why a path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path: {0}")]
pub struct PathError(pub &'static str);

/// Whether `name` is a Windows device name, alone or with an extension (`nul.txt`).
pub fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default();
    WINDOWS_DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem))
}

/// Checks a shared file's path: relative, components separated by `/`, each non-empty, neither `.` nor
/// `..`, at most 255 bytes, without `\`, NUL, control or Unicode format characters, and no Windows device
/// name; at most [`MAX_DEPTH`] components and [`MAX_PATH`] bytes.
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError("longer than 1,024 bytes"));
    }
    if path.starts_with('/') {
        return Err(PathError("absolute"));
    }
    let mut depth = 0;
    for component in path.split('/') {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(PathError("deeper than 32 components"));
        }
        match component {
            "" => return Err(PathError("an empty component")),
            "." | ".." => return Err(PathError("a . or .. component")),
            c if c.len() > MAX_FILE_NAME => return Err(PathError("a component over 255 bytes")),
            c if c.contains('\\') => return Err(PathError("a backslash")),
            c if c.chars().any(char::is_control) => return Err(PathError("a control character")),
            c if c.chars().any(crate::text::is_format_char) => return Err(PathError("a Unicode format character")),
            c if is_windows_device(c) => return Err(PathError("a Windows device name")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_pass_and_every_unsafe_kind_is_refused() {
        let deepest = "d/".repeat(MAX_DEPTH - 1) + "f";
        for good in ["a.txt", "photos/2024/beach.jpg", "é/😀 notes: draft.md", deepest.as_str()] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        let (deep, long) = ("d/".repeat(MAX_DEPTH) + "f", "x/".repeat(400) + &"y".repeat(300));
        let wide = "n".repeat(MAX_FILE_NAME + 1);
        for bad in [
            "",
            "/etc/passwd",
            "a//b",
            "a/",
            "./a",
            "a/../../b",
            "..",
            "a\\..\\b",
            "a\0b",
            "a\x1b[2J",
            "a\u{202e}b",
            "CON",
            "docs/nul.txt",
            "Lpt9.log",
            &deep,
            &long,
            &wide,
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} passed");
        }
    }
}
