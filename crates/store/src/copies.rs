//! Finding the file a download would only duplicate.

use std::path::{Path, PathBuf};

use proto::FileId;

use crate::{HashCache, is_download_artifact, safe_file_name};

/// A regular file in `dir` whose bytes, under the name `name`, make the manifest `id` of a `size`-byte
/// file: the file a download of `id` into `dir` would duplicate, whatever it is called there. Only files
/// of that size are hashed, the one named as the download would be first; `cache` answers for the files
/// it hashed before (a node's hash cache holds its downloads folder).
pub fn find_copy(dir: &Path, id: FileId, name: &str, size: u64, cache: &mut HashCache) -> Option<PathBuf> {
    // Canonical, as the paths a node's hash cache holds.
    let dir = dir.canonicalize().ok()?;
    let visible = |p: &PathBuf| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && !is_download_artifact(n))
    };
    let mut candidates: Vec<PathBuf> =
        std::fs::read_dir(&dir).ok()?.filter_map(|e| Some(e.ok()?.path())).filter(visible).collect();
    let expected = dir.join(safe_file_name(name));
    candidates.sort_by_key(|p| *p != expected);
    candidates.into_iter().find(|path| {
        let Ok(meta) = std::fs::metadata(path) else { return false };
        meta.is_file() && meta.len() == size && cache.manifest(path, &meta, name).is_ok_and(|m| m.id() == id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_found_by_content_whatever_its_name() {
        let dir = tempfile::tempdir().expect("dir");
        let original = dir.path().join("original.bin");
        std::fs::write(&original, b"the bytes").expect("write");
        let id = crate::hash_file(&original, "song.ogg".into()).expect("hash").id();
        let mut cache = HashCache::default();
        std::fs::write(dir.path().join("song.ogg"), b"other one").expect("write");
        std::fs::write(dir.path().join(".hidden.ogg"), b"the bytes").expect("write");
        let found = find_copy(dir.path(), id, "song.ogg", 9, &mut cache);
        assert_eq!(found, Some(original.canonicalize().expect("canonical")), "a same-size file of another name");
        std::fs::remove_file(&original).expect("remove");
        assert_eq!(find_copy(dir.path(), id, "song.ogg", 9, &mut cache), None, "a different file of that name");
        assert_eq!(find_copy(&dir.path().join("missing"), id, "song.ogg", 9, &mut cache), None);
    }
}
