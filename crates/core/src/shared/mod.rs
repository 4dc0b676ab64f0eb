//! State shared by every gateway instance through Redis: deployment
//! cooldowns, per-minute request/token counts, and requests in flight and
//! latency per deployment, so that limits hold across
//! instances and a deployment one instance found failing is skipped by all.
//!
//! Redis is never required: without `redis_host`/`redis_url` (or when Redis is
//! down) each instance routes on its own state. The hot path makes at most
//! one Redis round trip, and only for a deployment with an `rpm`/`tpm` limit
//! that is enforced; cooldowns are written in the background and read back
//! every second, and in-flight counts and latency are exchanged every second.

mod redis;
mod slots;
mod stats;

pub use self::redis::{RedisSettings, RedisShared};
pub use self::slots::SlotLease;
pub use self::stats::{RemoteStats, STATS_TTL};
