//! What a sender's paths hold: each file, and the path below the recipient's downloads folder it goes to
//! (a folder goes whole, under its own name).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use proto::MAX_OFFER_FILES;

use crate::SendError;

/// A file to send: where it is here, and where it goes (`holiday/beach.jpg`, valid by
/// [`proto::check_path`]).
pub(super) struct OutFile {
    pub(super) path: PathBuf,
    pub(super) to: String,
}

/// Every file below `paths`, in order; what folders hold hidden (a leading dot, as shared folders never
/// list either), links, and what is no file or folder are left out.
pub(super) fn gather(paths: &[PathBuf]) -> Result<Vec<OutFile>, SendError> {
    let (mut files, mut names) = (Vec::new(), HashSet::new());
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|_| SendError::Path { path: path.clone(), why: "not found" })?;
        let name = path.canonicalize().ok().and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string));
        let name = name.ok_or_else(|| SendError::Path { path: path.clone(), why: "has no name to send it by" })?;
        if !names.insert(name.clone()) {
            return Err(SendError::Path { path: path.clone(), why: "has the name of another path sent" });
        }
        match meta.is_dir() {
            true => walk(path, &name, &mut files)?,
            false => add(&mut files, OutFile { path: path.clone(), to: name })?,
        }
    }
    for file in &files {
        if proto::check_path(&file.to).is_err() {
            return Err(SendError::Path { path: file.path.clone(), why: "has a name peers cannot take" });
        }
    }
    Ok(files)
}

fn walk(dir: &Path, to: &str, files: &mut Vec<OutFile>) -> Result<(), SendError> {
    let unreadable = || SendError::Path { path: dir.to_path_buf(), why: "cannot be read" };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(|_| unreadable())?.collect::<Result<_, _>>().map_err(|_| unreadable())?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(kind) = entry.file_type() else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(SendError::Path { path: entry.path(), why: "has a name that is not UTF-8" });
        };
        if name.starts_with('.') {
            continue;
        }
        let below = format!("{to}/{name}");
        if kind.is_dir() {
            walk(&entry.path(), &below, files)?;
        } else if kind.is_file() {
            add(files, OutFile { path: entry.path(), to: below })?;
        }
    }
    Ok(())
}

/// `file` added to `files`, unless they hold all an offer may.
fn add(files: &mut Vec<OutFile>, file: OutFile) -> Result<(), SendError> {
    if files.len() >= MAX_OFFER_FILES as usize {
        return Err(SendError::Path { path: file.path, why: "is one file too many for one offer" });
    }
    files.push(file);
    Ok(())
}
