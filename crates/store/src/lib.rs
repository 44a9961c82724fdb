//! The content store of p2pnode: everything that touches files on disk.
//!
//! - [`hash_file`] streams a file through BLAKE3, chunk by chunk, into a [`proto::Manifest`] in constant
//!   memory; [`verify_chunk`] checks received bytes against a manifest.
//! - [`HashCache`] remembers manifests by path and [`FileStamp`] (size, mtime, inode) in the node's state
//!   folder, so a restart does not rehash unchanged files.
//! - [`Library`] scans the shared folders into the set of [`SharedFile`]s a node serves.
//! - [`PartFile`] is a download in progress: verified chunks only are written to `NAME.part`, a small state
//!   file records which, and the file is renamed to a name that overwrites nothing once every chunk is
//!   verified. A later download of the same content resumes from it. State files are authenticated with
//!   the node-local [`StateKey`]: one this node did not write is never resumed or shared.
//! - [`safe_file_name`] turns a name received from the network into a plain file name, by the rules of
//!   the destination's file system ([`NameRules::of`]); [`Copies`] finds the files a download would only
//!   duplicate.
//!
//! # Example
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("notes.txt");
//! std::fs::write(&path, b"chunked, hashed, verified")?;
//! let manifest = store::hash_file(&path, "notes.txt".into())?;
//! store::verify_chunk(&manifest, 0, b"chunked, hashed, verified")?;
//! assert!(store::verify_chunk(&manifest, 0, b"chunked, hashed, altered!").is_err());
//! // A name from the network becomes a plain file name, never a path.
//! assert_eq!(store::safe_file_name("../../etc/passwd", store::NameRules::of(dir.path())), "passwd");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod copies;
mod error;
mod hash;
mod library;
mod names;
mod part;
mod place;
mod positioned;
mod space;
mod state_key;

pub use cache::{FileStamp, HashCache};
pub use copies::Copies;
pub use error::StoreError;
pub use hash::{hash_file, hash_file_counting, verify_chunk};
pub use library::{Change, Hashing, Library, Partial, SharedFile};
pub use names::{NameRules, is_download_artifact, safe_file_name, saved_as};
pub use part::{PartFile, PartProgress, VerifiedChunks, bits_now, discard_part, read_state};
pub use place::put_in_place;
pub use positioned::PositionedIo;
pub use space::free_space;
pub use state_key::{
    HASH_CACHE_FILE, IDENTITY_CERT_FILE, IDENTITY_KEY_FILE, LOCK_FILE, StateKey, random_bytes, write_private,
};
