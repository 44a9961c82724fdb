//! The folder a download lands in: proven writable before anything is fetched.

use std::path::Path;

use crate::NodeError;

/// Proves that `dir` is, or can be created as, a writable folder, so a download fails before it starts
/// rather than after its first chunk; creates nothing (a failed `get` leaves no folder behind).
pub fn check_writable(dir: &Path) -> Result<(), NodeError> {
    let err = |source| NodeError::NotWritable { dir: dir.to_path_buf(), source };
    // The folder itself, or the nearest folder it would be created in.
    let existing = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.exists()).unwrap_or(dir);
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    if !existing.is_dir() {
        let what = format!("{} is a file, not a folder", existing.display());
        return Err(err(std::io::Error::new(std::io::ErrorKind::NotADirectory, what)));
    }
    let probe = existing.join(format!(".p2pnode-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}
