//! One finished call as a webhook event, shaped like LiteLLM's
//! `StandardLoggingPayload` (the fields the gateway knows, under LiteLLM's
//! names). No message content: the call record carries none (LiteLLM sends
//! `messages` and `response` unless `turn_off_message_logging`), and never
//! the caller's key, only its SHA-256 hash.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::meter::CallRecord;

/// Longest `error_str` sent (an upstream's error text can be long).
const MAX_ERROR_BYTES: usize = 4096;

/// `StandardLoggingPayload`, as far as the gateway fills it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The call id (`x-litellm-call-id`).
    pub id: String,
    pub litellm_call_id: String,
    pub trace_id: String,
    /// `acompletion`, `aembedding`, … (LiteLLM's names).
    pub call_type: &'static str,
    pub stream: bool,
    /// `success` or `failure`.
    pub status: &'static str,
    /// The answering deployment's provider (`openai`), when one answered.
    pub custom_llm_provider: Option<String>,
    /// The upstream model without its provider (`gpt-4o-mini`); the name
    /// the client sent when no deployment answered.
    pub model: String,
    pub model_group: String,
    /// The deployment's id (`x-litellm-model-id`).
    pub model_id: String,
    pub api_base: String,
    /// USD.
    pub response_cost: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Seconds since the Unix epoch.
    #[serde(rename = "startTime")]
    pub start_time: f64,
    #[serde(rename = "endTime")]
    pub end_time: f64,
    /// The first token of a stream; the end time otherwise (as LiteLLM).
    #[serde(rename = "completionStartTime")]
    pub completion_start_time: f64,
    /// Seconds: to the first token for a stream, to the end otherwise.
    pub response_time: f64,
    pub cache_hit: bool,
    pub cache_key: Option<String>,
    /// `metadata.tags` of the request.
    pub request_tags: Vec<String>,
    /// The request's `user` field; empty when absent.
    pub end_user: String,
    pub metadata: Metadata,
    pub hidden_params: HiddenParams,
    pub error_str: Option<String>,
    pub error_information: Option<ErrorInformation>,
}

/// `StandardLoggingMetadata`: who made the call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    /// SHA-256 (hex) of the virtual key; never the key.
    pub user_api_key_hash: Option<String>,
    pub user_api_key_alias: Option<String>,
    pub user_api_key_team_id: Option<String>,
    pub user_api_key_team_alias: Option<String>,
    pub user_api_key_user_id: Option<String>,
    pub user_api_key_end_user_id: Option<String>,
}

/// `StandardLoggingHiddenParams`, plus whether the usage was estimated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HiddenParams {
    pub model_id: Option<String>,
    pub cache_key: Option<String>,
    pub api_base: Option<String>,
    pub response_cost: f64,
    /// `provider/model` as sent upstream.
    pub litellm_model_name: Option<String>,
    /// ferrolite: the usage is the gateway's estimate (a stream the client
    /// left before the upstream reported usage).
    pub usage_estimated: bool,
}

/// `StandardLoggingPayloadErrorInformation`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInformation {
    /// The HTTP status the client got, as text (`"429"`).
    pub error_code: String,
    /// LiteLLM's exception class (`RateLimitError`, `Timeout`, …).
    pub error_class: String,
    /// The provider that returned the error, when an upstream did.
    pub llm_provider: String,
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// At most `max` bytes, cut at a character boundary.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// What the configuration says about a model name a client may send: its
/// group (after aliases) and the provider, when every deployment of the
/// group has the same. Names a failed call, which no deployment answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub group: String,
    pub provider: Option<String>,
}

impl Event {
    /// The event of `rec`; `group`: what the config says about the name
    /// the client sent (used when no deployment answered).
    pub fn from_record(rec: &CallRecord, group: Option<&GroupInfo>) -> Self {
        let (provider, upstream) = match rec.meta.upstream_model.split_once('/') {
            Some((p, m)) => (Some(p.to_owned()), m),
            None => (
                group.and_then(|g| g.provider.clone()),
                rec.meta.upstream_model.as_str(),
            ),
        };
        let model_group = if rec.meta.model_group.is_empty() {
            group.map(|g| g.group.clone()).unwrap_or_default()
        } else {
            rec.meta.model_group.clone()
        };
        let model = if upstream.is_empty() {
            rec.requested_model.clone()
        } else {
            upstream.to_owned()
        };
        let start = rec
            .start_time
            .unwrap_or_else(|| SystemTime::now() - rec.latency);
        let start_time = epoch_secs(start);
        let end_time = start_time + rec.latency.as_secs_f64();
        let first = rec
            .time_to_first_token
            .filter(|_| rec.stream)
            .map(|t| start_time + t.as_secs_f64());
        let completion_start_time = first.unwrap_or(end_time);
        let (prompt, completion, total) = rec.tokens();
        let api_base = rec
            .meta
            .api_base
            .as_deref()
            .map(|b| b.trim_end_matches('/').to_owned());
        let p = rec.principal.as_deref();
        let metadata = Metadata {
            user_api_key_hash: p.and_then(|p| p.key_hash.clone()),
            user_api_key_alias: p.and_then(|p| p.key_alias.clone()),
            user_api_key_team_id: p.and_then(|p| p.team_id.clone()),
            user_api_key_team_alias: p.and_then(|p| p.team_alias.clone()),
            user_api_key_user_id: p.and_then(|p| p.user_id.clone()),
            user_api_key_end_user_id: rec.end_user.clone(),
        };
        let (error_str, error_information) = match &rec.error {
            None => (None, None),
            Some(e) => (
                Some(bounded(&e.message, MAX_ERROR_BYTES)),
                Some(ErrorInformation {
                    error_code: e.status.to_string(),
                    error_class: crate::observe::metrics::exception_class_name(e.status, e.class)
                        .to_owned(),
                    llm_provider: if crate::observe::metrics::is_upstream_error(e.class) {
                        provider.clone().unwrap_or_default()
                    } else {
                        String::new()
                    },
                }),
            ),
        };
        Event {
            id: rec.call_id.clone(),
            litellm_call_id: rec.call_id.clone(),
            trace_id: rec.call_id.clone(),
            call_type: rec.call_type.as_str(),
            stream: rec.stream,
            status: if rec.error.is_none() {
                "success"
            } else {
                "failure"
            },
            custom_llm_provider: provider,
            model,
            model_group,
            model_id: rec.meta.model_id.clone(),
            api_base: api_base.clone().unwrap_or_default(),
            response_cost: rec.cost,
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
            start_time,
            end_time,
            completion_start_time,
            response_time: completion_start_time.min(end_time) - start_time,
            cache_hit: rec.cache_hit,
            cache_key: rec.meta.cache_key.clone(),
            request_tags: rec.tags.clone(),
            end_user: rec.end_user.clone().unwrap_or_default(),
            metadata,
            hidden_params: HiddenParams {
                model_id: non_empty(&rec.meta.model_id),
                cache_key: rec.meta.cache_key.clone(),
                api_base,
                response_cost: rec.cost,
                litellm_model_name: non_empty(&rec.meta.upstream_model),
                usage_estimated: rec.usage_estimated,
            },
            error_str,
            error_information,
        }
    }
}
