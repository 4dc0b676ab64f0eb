//! Wire formats and domain values shared by every ferrolite crate.
//!
//! No I/O lives here: no tokio, no HTTP client. Every wire struct keeps the
//! fields it does not model in an `extra` map so that new provider fields pass
//! through the gateway without code changes.

pub mod openai;
pub mod secret;
pub mod sse;
pub mod usage;

pub use secret::Secret;
pub use usage::Usage;

/// A JSON object, the shape of every `extra` map.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;
