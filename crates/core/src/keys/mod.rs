//! Virtual keys: authentication and enforcement on every LLM route.
//!
//! A presented key that is not the master key is hashed (SHA-256 hex) and
//! looked up through a short-lived cache in front of a [`KeyDirectory`] (the
//! store, through the server's glue). The checks run in LiteLLM's order —
//! exists, not blocked, not expired, model allowed, budgets, rate limits —
//! and a passing key yields a [`Principal`](crate::auth::Principal) holding
//! a [`Grant`]: its rate-limit slots and budget reservation, settled when
//! the call's record arrives and released when the call is over.
//!
//! With Redis configured, budgets, rate limits and key changes are shared
//! by every instance ([`KeyShare`]); without it (or while it is down) each
//! instance enforces on its own ledger and counters.

mod enforcer;
mod ledger;
mod limits;
mod shared;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

pub use enforcer::{
    BudgetFigures, CallInfo, EnforcerSettings, Grant, KeyBudgets, KeyEnforcer, DEFAULT_CACHE_TTL,
    DEFAULT_OUTPUT_ESTIMATE,
};
pub use ledger::{to_nano, Ledger};
pub use limits::Limits;
pub use shared::{KeyShare, KEY_REDIS_TIMEOUT, LEASE};

/// What enforcement needs to know about a key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRecord {
    /// SHA-256 hex of the key.
    pub token: String,
    pub key_alias: Option<String>,
    /// USD spent, as stored.
    pub spend: f64,
    pub max_budget: Option<f64>,
    /// Milliseconds since the Unix epoch; `None`: never expires.
    pub expires: Option<i64>,
    /// Model names, access groups, wildcards; empty = every model.
    pub models: Vec<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub blocked: bool,
    /// Model names this key routes elsewhere (`aliases` on `/key/generate`):
    /// a request for a name here is served by the model group it maps to.
    pub aliases: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRecord {
    pub user_id: String,
    /// `proxy_admin` makes the user's keys admins.
    pub user_role: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub models: Vec<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamRecord {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub models: Vec<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub blocked: bool,
}

/// Where keys, users and teams are read from (the store).
pub trait KeyDirectory: Send + Sync + 'static {
    fn key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, String>>;
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>>;
    fn team<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TeamRecord>, String>>;
    /// Total spend of every call since `since_ms` (all time when `None`),
    /// for `litellm_settings.max_budget`.
    fn total_spend(&self, since_ms: Option<i64>) -> BoxFuture<'_, Result<f64, String>>;
    /// Reset the spend of every key, user and team whose budget period is
    /// over; returns how many were reset.
    fn reset_budgets(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, String>>;
}

/// SHA-256 hex of a key, as stored (LiteLLM's `hash_token`).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a user role makes its keys admins of the management API.
pub fn is_admin_role(role: Option<&str>) -> bool {
    role == Some("proxy_admin")
}

#[cfg(test)]
mod tests;
