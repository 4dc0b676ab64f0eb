//! One spend row, as the writer queues it and the spill file keeps it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::meter::CallRecord;

/// A finished call, ready to store (the store's spend-log row, independent
/// of any database crate). Serialized one per line in the spill file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendEntry {
    /// The call id (`x-litellm-call-id`): writes are idempotent on it.
    pub request_id: String,
    pub call_type: String,
    /// SHA-256 hex of the virtual key; empty for the master key.
    pub api_key: String,
    pub key_alias: Option<String>,
    pub user: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    /// USD.
    pub spend: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Milliseconds since the Unix epoch.
    pub start_time: i64,
    pub end_time: i64,
    /// `provider/model` as sent upstream.
    pub model: String,
    pub model_id: String,
    pub model_group: String,
    pub api_base: String,
    pub provider: String,
    pub tags: Vec<String>,
    pub cache_hit: bool,
    /// `success` or `failure`.
    pub status: String,
    pub latency_ms: i64,
    /// The usage was estimated (a stream abandoned before the upstream
    /// reported it).
    pub usage_estimated: bool,
    /// The error class, for failed calls.
    pub error: Option<String>,
    /// The request's messages and the answer, as bounded JSON text
    /// (`store_prompts_in_spend_logs` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl SpendEntry {
    pub fn from_record(rec: &CallRecord) -> Self {
        let start = rec.start_time.unwrap_or_else(SystemTime::now);
        let end = start.checked_add(rec.latency).unwrap_or(start);
        let p = rec.principal.as_deref();
        let (prompt, completion, total) = rec.tokens();
        let group = if rec.meta.model_group.is_empty() {
            rec.requested_model.clone()
        } else {
            rec.meta.model_group.clone()
        };
        Self {
            request_id: rec.call_id.clone(),
            call_type: rec.call_type.as_str().to_owned(),
            api_key: p.and_then(|p| p.key_hash.clone()).unwrap_or_default(),
            key_alias: p.and_then(|p| p.key_alias.clone()),
            user: p.and_then(|p| p.user_id.clone()),
            team_id: p.and_then(|p| p.team_id.clone()),
            end_user: rec.end_user.clone(),
            spend: if rec.cost.is_finite() { rec.cost } else { 0.0 },
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
            start_time: ms(start),
            end_time: ms(end),
            model: rec.meta.upstream_model.clone(),
            model_id: rec.meta.model_id.clone(),
            model_group: group,
            api_base: rec.meta.api_base.clone().unwrap_or_default(),
            provider: rec
                .meta
                .upstream_model
                .split_once('/')
                .map(|(p, _)| p.to_owned())
                .unwrap_or_default(),
            tags: rec.tags.clone(),
            cache_hit: rec.cache_hit,
            status: if rec.succeeded() {
                "success"
            } else {
                "failure"
            }
            .to_owned(),
            latency_ms: i64::try_from(rec.latency.as_millis()).unwrap_or(i64::MAX),
            usage_estimated: rec.usage_estimated,
            error: rec.error.as_ref().map(|e| e.class.to_owned()),
            messages: rec.messages.clone(),
            response: rec.response.clone(),
        }
    }
}
