//! The stored entities, as plain values. Timestamps are milliseconds since
//! the Unix epoch (UTC); money is US dollars as `f64`, like LiteLLM's `spend`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A virtual key (LiteLLM's `LiteLLM_VerificationToken`). The key itself is
/// never stored: `token` is the SHA-256 hex of it ([`crate::hash_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// SHA-256 hex of the key (primary key).
    pub token: String,
    /// The display form of the key, e.g. `sk-...abcd`.
    pub key_name: String,
    pub key_alias: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    /// LiteLLM duration (`30d`, `1h`, …), see [`crate::parse_duration`].
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    /// When the key stops working (ms), `None` = never.
    pub expires: Option<i64>,
    /// Model names or access groups; empty = every model.
    pub models: Vec<String>,
    /// Model aliases for this key: `{"alias": "model group"}`.
    pub aliases: Map<String, Value>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    /// Routes the key may call; empty = every LLM route.
    pub allowed_routes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
}

impl Key {
    /// A key with every optional field empty, created `now`.
    pub fn new(token: String, key_name: String, now: i64) -> Self {
        Self {
            token,
            key_name,
            key_alias: None,
            spend: 0.0,
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            expires: None,
            models: Vec::new(),
            aliases: Map::new(),
            user_id: None,
            team_id: None,
            max_parallel_requests: None,
            tpm_limit: None,
            rpm_limit: None,
            metadata: Map::new(),
            blocked: false,
            allowed_routes: Vec::new(),
            created_at: now,
            updated_at: now,
            created_by: None,
        }
    }
}

/// A user (LiteLLM's `LiteLLM_UserTable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub user_email: Option<String>,
    /// `proxy_admin`, `proxy_admin_viewer`, `internal_user`, `internal_user_viewer`, …
    pub user_role: Option<String>,
    pub max_budget: Option<f64>,
    pub spend: f64,
    pub models: Vec<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    pub fn new(user_id: String, now: i64) -> Self {
        Self {
            user_id,
            user_email: None,
            user_role: None,
            max_budget: None,
            spend: 0.0,
            models: Vec::new(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            budget_duration: None,
            budget_reset_at: None,
            metadata: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// One member of a team and their role (`admin` or `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub user_id: String,
    pub role: String,
}

/// A team (LiteLLM's `LiteLLM_TeamTable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub members_with_roles: Vec<TeamMember>,
    pub max_budget: Option<f64>,
    pub spend: f64,
    pub models: Vec<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub blocked: bool,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Team {
    pub fn new(team_id: String, now: i64) -> Self {
        Self {
            team_id,
            team_alias: None,
            members_with_roles: Vec::new(),
            max_budget: None,
            spend: 0.0,
            models: Vec::new(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            budget_duration: None,
            budget_reset_at: None,
            blocked: false,
            metadata: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// One call (LiteLLM's `LiteLLM_SpendLogs`). `request_id` is unique: writing
/// the same row twice records it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    pub request_id: String,
    /// `acompletion`, `aembedding`, `anthropic_messages`, …
    pub call_type: String,
    /// The key's hash (`Key::token`), or empty for the master key.
    pub api_key: String,
    pub spend: f64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub start_time: i64,
    pub end_time: i64,
    /// The model the upstream was asked for.
    pub model: String,
    /// The deployment's id.
    pub model_id: String,
    /// The model group the client named.
    pub model_group: String,
    pub api_base: String,
    pub custom_llm_provider: String,
    /// The key's user (`user_id`), incremented along with the key.
    pub user: Option<String>,
    pub team_id: Option<String>,
    /// The `user` field of the request body (the caller's customer).
    pub end_user: Option<String>,
    pub request_tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub cache_hit: bool,
    /// `success` or `failure`.
    pub status: String,
    pub latency_ms: i64,
    /// What the call sent (`messages`, `prompt`, `input`, …) as JSON text,
    /// kept only with `store_prompts_in_spend_logs`; `None` otherwise.
    #[serde(default)]
    pub messages: Option<String>,
    /// The answer as JSON text, likewise.
    #[serde(default)]
    pub response: Option<String>,
}

impl SpendRow {
    /// A successful row with zero cost and no tokens; fill in what is known.
    pub fn new(request_id: String, api_key: String, now: i64) -> Self {
        Self {
            request_id,
            call_type: "acompletion".to_owned(),
            api_key,
            spend: 0.0,
            total_tokens: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            start_time: now,
            end_time: now,
            model: String::new(),
            model_id: String::new(),
            model_group: String::new(),
            api_base: String::new(),
            custom_llm_provider: String::new(),
            user: None,
            team_id: None,
            end_user: None,
            request_tags: Vec::new(),
            metadata: Map::new(),
            cache_hit: false,
            status: "success".to_owned(),
            latency_ms: 0,
            messages: None,
            response: None,
        }
    }
}

/// Filters for [`crate::Store::list_keys`]; `page` counts from 1.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    pub page: u32,
    pub size: u32,
}

/// Filters for [`crate::Store::spend_logs`]; times in ms, `end` exclusive.
#[derive(Debug, Clone, Default)]
pub struct SpendLogFilter {
    pub request_id: Option<String>,
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// At most this many rows, newest first (0 = the default of 1000).
    pub limit: u32,
    /// Also read `messages` and `response` (large when prompts are
    /// stored); otherwise they come back `None`. With them, at most 10,000
    /// rows are read.
    pub content: bool,
}

/// What [`crate::Store::spend_per_day`] groups by besides the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendDimension {
    Key,
    Team,
    Model,
    User,
}

/// Total spend of one key (from the keys table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpend {
    pub token: String,
    pub key_name: String,
    pub key_alias: Option<String>,
    pub spend: f64,
}

/// Total spend of one model group (from the spend logs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpend {
    pub model: String,
    pub spend: f64,
    pub requests: i64,
    pub total_tokens: i64,
}

/// Spend of one day × one group (key hash, team id, model group or user id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailySpend {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The key hash, team id, model group or user id; empty when unset.
    pub group: String,
    pub spend: f64,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

/// What [`crate::Store::reset_budgets`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetResets {
    pub keys: u64,
    pub users: u64,
    pub teams: u64,
}
