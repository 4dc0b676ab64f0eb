//! Spend: what each call cost ([`pricing`]) and getting that into the store
//! without slowing requests down ([`writer`]).

mod entry;
pub mod pricing;
pub(crate) mod usage_cost;
pub mod writer;

pub use entry::SpendEntry;
pub use pricing::{ModelPrice, Pricing};
pub use writer::{SpendBackend, SpendWriter, WriterConfig, WriterStats};
