//! Bedrock errors: HTTP answers (`{"message": …}`, the type in the
//! `x-amzn-ErrorType` header) and exceptions inside a ConverseStream.

use serde_json::Value;

use super::PROVIDER_LABEL;
use crate::UpstreamError;

/// Raw (non-JSON) error bodies are kept up to this many characters.
const MAX_RAW_MESSAGE: usize = 2048;

/// The exception AWS documents for each status of the Converse APIs. The
/// adapter sees only the status and the body (not the `x-amzn-ErrorType`
/// header), so the type is taken from the body's `__type` when present and
/// from the status otherwise.
fn kind_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        500 => "InternalServerException",
        503 => "ServiceUnavailableException",
        _ => return None,
    })
}

/// `com.amazon.coral.service#ThrottlingException` or
/// `ThrottlingException:http://…` → `ThrottlingException`.
fn short_type(t: &str) -> &str {
    let t = t.rsplit('#').next().unwrap_or(t);
    t.split(':').next().unwrap_or(t)
}

pub(super) fn parse_error(status: u16, body: &[u8]) -> UpstreamError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let m: String = text.chars().take(MAX_RAW_MESSAGE).collect();
            if m.trim().is_empty() {
                format!("upstream returned HTTP {status} with an empty body")
            } else {
                m
            }
        });
    let kind = field("__type")
        .map(|t| short_type(&t).to_owned())
        .or_else(|| kind_for_status(status).map(str::to_owned));
    UpstreamError {
        status,
        message,
        kind,
        param: None,
        code: None,
        provider_label: PROVIDER_LABEL.to_owned(),
    }
}

/// The HTTP status of an exception raised inside a stream (the types are
/// camel-cased there: `throttlingException`).
pub(super) fn status_for_exception(kind: &str) -> u16 {
    let k = kind.to_ascii_lowercase();
    match k.as_str() {
        "throttlingexception" => 429,
        "validationexception" => 400,
        "accessdeniedexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "serviceunavailableexception" => 503,
        _ => 500,
    }
}

/// An in-stream exception event's data (`{"type": …, "message": …}`, as
/// the event-stream decoder builds it).
pub(super) fn stream_exception(data: &str) -> UpstreamError {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("InternalServerException");
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Bedrock stream raised {kind}"));
    // Clients and the router know the exception by its documented name.
    let mut name = kind.to_owned();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    UpstreamError {
        status: status_for_exception(kind),
        message,
        kind: Some(name),
        param: None,
        code: None,
        provider_label: PROVIDER_LABEL.to_owned(),
    }
}
