//! Errors in Google's shape: `{"error":{"code","message","status"}}`, with
//! the canonical status name for the HTTP code.

use serde_json::{json, Value};

use crate::GatewayError;

/// Google's canonical status name for an HTTP code.
pub fn status_name(code: u16) -> &'static str {
    match code {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        400..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// `{"error":{"code","message","status"}}`.
pub fn google_error(code: u16, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message, "status": status_name(code) } })
}

/// The HTTP status and Google-shaped body for a gateway error. An unknown
/// model is Google's 404 `NOT_FOUND`, not OpenAI's 400.
pub fn error_body(e: &GatewayError) -> (u16, Value) {
    let code = match e {
        GatewayError::UnknownModel(_) => 404,
        other => other.status(),
    };
    (code, google_error(code, &e.client_message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        assert_eq!(status_name(429), "RESOURCE_EXHAUSTED");
        assert_eq!(status_name(408), "DEADLINE_EXCEEDED");
        assert_eq!(status_name(503), "UNAVAILABLE");
        assert_eq!(status_name(500), "INTERNAL");
        let (code, body) = error_body(&GatewayError::UnknownModel("no such model".into()));
        assert_eq!(code, 404);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        let (code, body) = error_body(&GatewayError::Unauthorized("bad key".into()));
        assert_eq!(
            (code, body["error"]["status"].as_str()),
            (401, Some("UNAUTHENTICATED"))
        );
    }
}
