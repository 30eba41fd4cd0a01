//! The one service API of ProcessOps. The HTTP server (`http`), the CLI and the desktop app
//! call [`Service`]; transports stay thin: parse, call one service function, map the result.

mod dto;
mod error;
pub mod http;
mod service;

pub use dto::*;
pub use error::ApiError;
pub use service::Service;
