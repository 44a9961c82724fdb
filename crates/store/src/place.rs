//! Putting a finished download in place under a name that overwrites nothing, on any file system.

use std::io;
use std::path::{Path, PathBuf};

use crate::names::numbered;

/// Name candidates tried before giving up (each is a file that already exists).
pub(crate) const MAX_NAME_TRIES: usize = 10_000;

/// Moves the finished file `from` into `dir` under the first of `name`, `name (1)`, ... that is free (an
/// existing file is never replaced), and returns where it went. `name` is a plain file name already
/// ([`crate::safe_file_name`]).
pub fn put_in_place(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    for candidate in numbered(name).take(MAX_NAME_TRIES) {
        let target = dir.join(candidate);
        match rename_no_replace(from, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free file name"))
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and `from` stays where it is).
/// Atomic where the file system can (Linux `renameat2` with `RENAME_NOREPLACE`). Elsewhere, and on file
/// systems that refuse it (exFAT, FAT32, SMB and many FUSE file systems, which have no hard links either),
/// `to` is first created empty and exclusively, so no other file can take the name, and then replaced by
/// the rename.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    rename_exclusive(from, to).unwrap_or_else(|| rename_over_placeholder(from, to))
}

/// Takes the name `to` with an empty file created exclusively, then renames `from` over it.
fn rename_over_placeholder(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    std::fs::rename(from, to).inspect_err(|_| {
        let _ = std::fs::remove_file(to);
    })
}

/// The atomic rename, or `None` where this system or file system has none.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_exclusive(from: &Path, to: &Path) -> Option<io::Result<()>> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => None,
        done => Some(done.map_err(io::Error::from)),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_exclusive(_from: &Path, _to: &Path) -> Option<io::Result<()>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_replaces_a_file_and_keeps_the_source_when_it_cannot_move() {
        for rename in [rename_no_replace, rename_over_placeholder] {
            never_replaces(rename);
        }
    }

    fn never_replaces(rename_no_replace: fn(&Path, &Path) -> io::Result<()>) {
        let dir = tempfile::tempdir().expect("dir");
        let (part, mine, free) = (dir.path().join("a.part"), dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&part, b"download").expect("write");
        std::fs::write(&mine, b"the user's own file").expect("write");
        let taken = rename_no_replace(&part, &mine).expect_err("the name is taken");
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&mine).expect("read"), b"the user's own file");
        assert_eq!(std::fs::read(&part).expect("read"), b"download");
        rename_no_replace(&part, &free).expect("a free name");
        assert_eq!(std::fs::read(&free).expect("read"), b"download");
        assert!(!part.exists());
    }
}
