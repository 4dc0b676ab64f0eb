//! The ferrolite request pipeline and all gateway state. No HTTP server
//! framework lives here: `ferrolite-server` decodes requests, calls
//! [`pipeline`], and encodes what comes back.

pub mod auth;
pub mod cache;
pub mod config;
pub mod context;
pub mod dialect;
pub mod error;
pub mod gateway;
pub mod health;
pub mod keys;
pub mod meter;
pub mod mock;
pub mod observe;
pub mod pipeline;
pub mod router;
pub mod shared;
pub mod spend;
pub mod upstream;

pub use context::RequestContext;
pub use error::GatewayError;
pub use gateway::Gateway;

/// The version reported in `x-litellm-version` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
