//! Spend: what each call cost ([`pricing`]) and getting that into the store
//! without slowing requests down ([`writer`]); what the spend logs keep
//! ([`log_settings`]), including the calls' content when asked ([`content`]).

pub mod content;
mod content_stream;
mod entry;
pub mod log_settings;
pub mod pricing;
pub(crate) mod usage_cost;
pub mod writer;

pub use entry::SpendEntry;
pub use log_settings::SpendLogSettings;
pub use pricing::{ModelPrice, Pricing};
pub use writer::{SpendBackend, SpendWriter, WriterConfig, WriterStats};
