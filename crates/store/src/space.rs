//! The file system a download lands on: its free space, asked before a byte is fetched (a full disk is
//! found by asking, not by filling it), and what it takes in a name, judged by its type.

use std::path::Path;

use crate::NameRules;

impl NameRules {
    /// The rules of the file system that holds `dir` (or the nearest folder above it that exists), by
    /// its type: FAT, exFAT, NTFS and SMB shares reject the characters Windows does, and so does a block
    /// device through FUSE (in practice exFAT or NTFS); on Windows every file system does.
    pub fn of(dir: &Path) -> Self {
        if cfg!(windows) {
            return Self::windows("Windows");
        }
        dir.ancestors().find(|a| a.exists()).and_then(windows_like).map_or(Self::POSIX, Self::windows)
    }
}

/// The type of the file system at `path`, where it rejects the characters Windows does.
#[cfg(target_os = "linux")]
#[allow(clippy::useless_conversion, reason = "the type is 32 bits wide on some targets")]
fn windows_like(path: &Path) -> Option<&'static str> {
    const TYPES: [(i64, &str); 7] = [
        (0x4d44, "vfat"),
        (0x2011_bab0, "exfat"),
        (0x5346_544e, "ntfs"),
        (0xff53_4d42, "cifs"),
        (0xfe53_4d42, "smb2"),
        (0x517b, "smb"),
        (0x6573_5546, "fuse"),
    ];
    let kind = i64::from(nix::sys::statfs::statfs(path).ok()?.filesystem_type().0);
    let (_, name) = TYPES.iter().find(|(magic, _)| *magic == kind)?;
    match *name {
        // FUSE carries every kind of file system; one on a block device is the exFAT or NTFS of a disk.
        "fuse" => fuse_type(path)
            .filter(|t| t == "fuseblk" || ["exfat", "ntfs", "fat"].iter().any(|k| t.contains(k)))
            .map(|_| "this FUSE file system"),
        name => Some(name),
    }
}

#[cfg(not(target_os = "linux"))]
fn windows_like(_path: &Path) -> Option<&'static str> {
    None
}

/// The type `/proc/self/mountinfo` gives the mount that holds `path` (`fuseblk`, `fuse.sshfs`, ...).
#[cfg(target_os = "linux")]
fn fuse_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: id, parent, device, root, mount point, options, optional fields, `-`, type, source, ...
    let entries = mounts.lines().filter_map(|line| {
        let (fields, after) = line.split_once(" - ")?;
        let point = unescape_mount_path(fields.split(' ').nth(4)?);
        Some((point, after.split(' ').next()?.to_string()))
    });
    entries.filter(|(point, _)| path.starts_with(point)).max_by_key(|(point, _)| point.len()).map(|(_, kind)| kind)
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash as octal escapes.
#[cfg(target_os = "linux")]
fn unescape_mount_path(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        match rest.get(at + 1..at + 4).and_then(|o| u8::from_str_radix(o, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out + rest
}

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

#[cfg(windows)]
fn available(path: &Path) -> Option<u64> {
    fs4::available_space(path).ok()
}

#[cfg(not(any(target_os = "linux", windows)))]
fn available(_path: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_to_be_made_is_asked_of_the_file_system_above_it() {
        let dir = tempfile::tempdir().expect("dir");
        let free = free_space(&dir.path().join("not/yet")).expect("Linux and Windows say");
        assert!(free > 0 && free_space(dir.path()).is_some());
    }
}
