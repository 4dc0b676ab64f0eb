//! Anthropic error bodies: `{"type":"error","error":{"type":…,"message":…}}`,
//! both as HTTP answers and as `error` events inside a stream.

use serde_json::Value;

use super::PROVIDER_LABEL;
use crate::UpstreamError;

/// Raw (non-JSON) error bodies are kept up to this many characters.
const MAX_RAW_MESSAGE: usize = 2048;

pub(crate) fn parse_error(status: u16, body: &[u8]) -> UpstreamError {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(err) = v.get("error").filter(|e| e.is_object()) {
            return from_error_object(status, err);
        }
    }
    let text = String::from_utf8_lossy(body);
    let mut message: String = text.chars().take(MAX_RAW_MESSAGE).collect();
    if message.trim().is_empty() {
        message = format!("upstream returned HTTP {status} with an empty body");
    }
    UpstreamError {
        status,
        message,
        kind: None,
        param: None,
        code: None,
        provider_label: PROVIDER_LABEL.to_owned(),
    }
}

/// The `error` object of an Anthropic error body.
pub(super) fn from_error_object(status: u16, err: &Value) -> UpstreamError {
    let kind = err.get("type").and_then(Value::as_str).map(str::to_owned);
    let message = match err.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => err.to_string(),
        Some(other) => other.to_string(),
    };
    UpstreamError {
        status,
        message,
        kind,
        param: None,
        code: None,
        provider_label: PROVIDER_LABEL.to_owned(),
    }
}

/// The HTTP status Anthropic pairs with each error type, for errors that
/// arrive inside a 200 stream. LiteLLM reports every in-stream error as 500;
/// the type tells us better (notably 529 for `overloaded_error`, which the
/// router should treat as retryable).
pub(super) fn status_for_kind(kind: Option<&str>) -> u16 {
    match kind {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("billing_error") => 402,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") => 429,
        Some("timeout_error") => 504,
        Some("overloaded_error") => 529,
        _ => 500,
    }
}

/// An in-stream `error` event's payload (`{"type":"error","error":{…}}`).
pub(super) fn stream_error(payload: &Value) -> UpstreamError {
    match payload.get("error").filter(|e| e.is_object()) {
        Some(err) => {
            let status = status_for_kind(err.get("type").and_then(Value::as_str));
            from_error_object(status, err)
        }
        None => UpstreamError {
            status: 500,
            message: payload.to_string(),
            kind: None,
            param: None,
            code: None,
            provider_label: PROVIDER_LABEL.to_owned(),
        },
    }
}
