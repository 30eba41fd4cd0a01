//! Where a project lives and how the CLI reaches its engine: in this process when no
//! `processops serve` owns the store, over HTTP when one does. The logic is shared with the
//! desktop app in `processops_api::local`.

pub use processops_api::local::{Lock, Project};
