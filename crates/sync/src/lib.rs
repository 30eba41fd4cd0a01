//! Offline-first sync between devices and the hub (DESIGN.md §5).
//!
//! - [`wire`]: the versioned types that cross the network, and nothing else does.
//! - [`rules`]: the hub's judgement (authorization, compare-and-set on task heads and stage
//!   channels, push planning), pure so both hub stores share it.
//! - [`replica`]: the device's pure side: cursor advance, gap answers, and the reducer from the
//!   hub's log to what a device shows.
//! - [`client`]: one sync round over a [`client::Transport`] into a [`client::LocalReplica`].

pub mod client;
pub mod replica;
pub mod rules;
pub mod wire;

pub use client::{
    HttpTransport, LocalReplica, Options, Position, Report, Transport, TransportError, enrol,
    sync_once,
};
pub use replica::{Cursor, View};
pub use wire::*;

/// What can go wrong in a sync round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The hub or the device broke the protocol; sync stops rather than guess.
    #[error("{0}")]
    Protocol(String),
    /// The device's own store failed.
    #[error("the local store failed: {0}")]
    Local(String),
}

impl SyncError {
    /// Whether a later round may succeed without anyone doing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(TransportError::Unavailable(_)))
    }
}
