//! The pure domain of ProcessOps: the blueprint format and its validation, the run journal's
//! events, the reducer that derives a run's state from them and the planner that decides
//! what runs next. Nothing here does IO, so everything here is tested with tables.

pub mod audit;
pub mod blueprint;
pub mod diagnostic;
pub mod feedback;
pub mod gate;
pub mod schedule;
pub mod template;

pub use diagnostic::{Diagnostic, Severity};
pub mod identity;
pub mod journal;
pub mod knowledge;
pub mod lifecycle;
pub mod metrics;
pub mod run;
pub mod secrets;
pub mod sla;
pub mod timeline;
