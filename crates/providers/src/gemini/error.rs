//! Google API error bodies: `{"error": {"code", "message", "status"}}`,
//! sometimes wrapped in a one-element array.

use serde_json::Value;

use crate::UpstreamError;

/// LiteLLM's name for AI Studio errors (`litellm ... GeminiException - ...`).
pub(crate) const STUDIO_LABEL: &str = "GeminiException";

const MAX_RAW_MESSAGE: usize = 2048;

/// The `error` object of a Google error body, if the body is one.
pub(crate) fn error_object(v: &Value) -> Option<&Value> {
    let v = match v {
        Value::Array(items) => items.first()?,
        other => other,
    };
    v.get("error").filter(|e| e.is_object())
}

/// An `error` object turned into the gateway's view; `status` is used when
/// the object carries no numeric code.
pub(crate) fn from_error_object(err: &Value, status: u16, label: &str) -> UpstreamError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| err.to_string());
    UpstreamError {
        status,
        message,
        kind: err.get("status").and_then(Value::as_str).map(str::to_owned),
        param: None,
        code: err.get("code").filter(|c| !c.is_null()).cloned(),
        provider_label: label.to_owned(),
    }
}

pub(crate) fn parse_error(status: u16, body: &[u8], label: &str) -> UpstreamError {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(err) = error_object(&v) {
            return from_error_object(err, status, label);
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
        provider_label: label.to_owned(),
    }
}

/// An error delivered inside a stream: its HTTP status is the error's own
/// code when it has a plausible one.
pub(crate) fn in_stream(err: &Value, label: &str) -> UpstreamError {
    let status = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500);
    from_error_object(err, status, label)
}
