//! The serving side: a [`Node`] shares its folders through the [`server_loop::ServerLoop`] that every
//! serving process runs (a swarming fetch too): connections accepted within limits ([`accepting`]), each
//! served exchange by exchange ([`connection`]), each request answered ([`answer`]) from the shares and
//! budgets of the [`context`].

pub(crate) mod accepting;
mod answer;
mod connection;
pub(crate) mod context;
pub(crate) mod grants;
mod node;
pub(crate) mod server_loop;
mod shared;
pub(crate) mod spread;
mod throttle;
mod watch;

pub use context::Upload;
pub use grants::Grants;
pub use node::{HASHING_TOLD, Node, NodeBuilder, NodeEvent};
pub use shared::{SharedEntry, SharedError, SharedFiles, SharedReader};
