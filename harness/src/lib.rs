//! Multi-peer scenarios of p2pnode in Docker containers, run by `cargo test -p harness`.
//!
//! The scenarios themselves (discovery, chunk fallback, corruption, timeouts, re-share and static peers
//! across two bridge networks) arrive with the Docker harness; until then this crate only reserves its
//! place in the workspace.
