//! One INFO line per finished request: who, which model and deployment, the
//! outcome, tokens, cost and latency. Never the prompt or the answer: the
//! record carries neither (message logging is not implemented, so
//! `turn_off_message_logging` has nothing to turn off).
//!
//! The line goes through `tracing`, so it is human-readable by default and
//! one JSON object with `json_logs: true`.

use std::borrow::Cow;

use crate::meter::{CallRecord, CallSink};

/// Client-supplied text with control characters escaped, so it cannot
/// forge a log line.
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(s.escape_default().to_string())
    } else {
        Cow::Borrowed(s)
    }
}

/// The `tracing` target of the request lines (filter it with
/// `RUST_LOG=ferrolite::request=off`).
pub const TARGET: &str = "ferrolite::request";

/// The request-line sink.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestLog;

impl CallSink for RequestLog {
    fn record(&self, rec: &CallRecord) {
        let p = rec.principal.as_deref();
        let key_alias = p.and_then(|p| p.key_alias.as_deref()).unwrap_or("");
        let team = p.and_then(|p| p.team_id.as_deref()).unwrap_or("");
        let (status, error) = match &rec.error {
            None => (200, ""),
            Some(e) => (e.status, e.class),
        };
        let (prompt, completion) = rec
            .usage
            .as_ref()
            .map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        let ttft_ms = rec
            .time_to_first_token
            .map_or(-1.0, |t| t.as_secs_f64() * 1000.0);
        tracing::info!(
            target: TARGET,
            request_id = rec.call_id.as_str(),
            call_type = rec.call_type.as_str(),
            key_alias,
            team,
            model = &*clean(&rec.requested_model),
            model_group = rec.meta.model_group.as_str(),
            deployment = rec.meta.model_id.as_str(),
            upstream_model = rec.meta.upstream_model.as_str(),
            status,
            error,
            stream = rec.stream,
            cache_hit = rec.cache_hit,
            prompt_tokens = prompt,
            completion_tokens = completion,
            usage_estimated = rec.usage_estimated,
            cost = rec.cost,
            latency_ms = rec.latency.as_secs_f64() * 1000.0,
            ttft_ms,
            retries = rec.meta.retries,
            "request"
        );
    }
}
