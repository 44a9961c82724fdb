//! Free space on the file system a download lands on, asked before a byte is fetched: a full disk is
//! found by asking, not by filling it.

use std::path::Path;

/// The bytes an unprivileged writer may still write on the file system of `dir`, or of the nearest
/// folder above it that exists; `None` where this platform does not say.
pub fn free_space(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|a| a.exists())?;
    available(existing)
}

#[cfg(target_os = "linux")]
#[allow(clippy::useless_conversion, reason = "the block counts are 32 bits wide on some targets")]
fn available(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

#[cfg(not(target_os = "linux"))]
fn available(_path: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_to_be_made_is_asked_of_the_file_system_above_it() {
        let dir = tempfile::tempdir().expect("dir");
        let free = free_space(&dir.path().join("not/yet")).expect("linux says");
        assert!(free > 0 && free_space(dir.path()).is_some());
    }
}
