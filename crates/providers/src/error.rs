//! What can go wrong in translation, and an upstream's error answer.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The upstream answered with a body we cannot read.
    #[error("invalid response from upstream: {0}")]
    InvalidResponse(String),
    /// The request asks for something this provider cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The upstream reported an error inside a stream.
    #[error("{}", .0.message)]
    Upstream(Box<UpstreamError>),
    /// The request cannot be expressed for this provider.
    #[error("{0}")]
    BadRequest(String),
}

/// What kind of failure an upstream error is, whatever the provider's
/// vocabulary: picks the LiteLLM exception class, the retry decision and, in
/// the router, the fallback list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// The provider refused the content.
    ContentPolicy,
    /// Rate limited or overloaded (429, Anthropic's 529, throttling).
    RateLimit,
    /// The provider rejected the gateway's credentials (401/403).
    Credentials,
    /// Anything else: decided by the status.
    Other,
}

/// An upstream's error answer, parsed.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub status: u16,
    pub message: String,
    /// The upstream's own `type`, if it sent one.
    pub kind: Option<String>,
    pub param: Option<String>,
    pub code: Option<Value>,
    /// The provider's display name for LiteLLM-style messages ("OpenAIException").
    pub provider_label: String,
}

impl UpstreamError {
    /// Classify by the provider's error code or type where one exists, and
    /// by the documented message of the providers that have none (Anthropic,
    /// Gemini and Bedrock report an over-long prompt only in words).
    pub fn class(&self) -> ErrorClass {
        let code = self.code.as_ref().and_then(|c| c.as_str()).unwrap_or("");
        let kind = self.kind.as_deref().unwrap_or("");
        let msg = self.message.to_ascii_lowercase();
        if code == "context_length_exceeded"
            || msg.contains("context length")
            || msg.contains("context window")
            || msg.contains("prompt is too long")
            || msg.contains("input is too long")
            || msg.contains("exceeds the maximum number of tokens")
            || msg.contains("maximum context length")
        {
            return ErrorClass::ContextWindow;
        }
        if code == "content_filter"
            || code == "content_policy_violation"
            || msg.contains("content management policy")
        {
            return ErrorClass::ContentPolicy;
        }
        if self.status == 429
            || self.status == 529
            || kind == "overloaded_error"
            || kind == "rate_limit_error"
            || kind == "RESOURCE_EXHAUSTED"
            || kind.eq_ignore_ascii_case("ThrottlingException")
        {
            return ErrorClass::RateLimit;
        }
        // Google AI Studio answers a bad key with 400 INVALID_ARGUMENT.
        if self.status == 401 || self.status == 403 || msg.contains("api key not valid") {
            return ErrorClass::Credentials;
        }
        ErrorClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, kind: Option<&str>, code: Option<&str>, message: &str) -> UpstreamError {
        UpstreamError {
            status,
            message: message.into(),
            kind: kind.map(Into::into),
            param: None,
            code: code.map(|c| serde_json::Value::String(c.into())),
            provider_label: "X".into(),
        }
    }

    #[test]
    fn classes_across_providers() {
        use ErrorClass::*;
        let cases = [
            (
                err(
                    400,
                    Some("invalid_request_error"),
                    Some("context_length_exceeded"),
                    "too many",
                ),
                ContextWindow,
            ),
            (
                err(
                    400,
                    Some("invalid_request_error"),
                    None,
                    "prompt is too long: 201000 tokens > 200000 maximum",
                ),
                ContextWindow,
            ),
            (
                err(
                    400,
                    Some("INVALID_ARGUMENT"),
                    None,
                    "The input token count exceeds the maximum number of tokens allowed",
                ),
                ContextWindow,
            ),
            (
                err(
                    400,
                    Some("ValidationException"),
                    None,
                    "Input is too long for requested model.",
                ),
                ContextWindow,
            ),
            (
                err(400, None, Some("content_policy_violation"), "nope"),
                ContentPolicy,
            ),
            (
                err(529, Some("overloaded_error"), None, "Overloaded"),
                RateLimit,
            ),
            (
                err(429, Some("RESOURCE_EXHAUSTED"), None, "quota"),
                RateLimit,
            ),
            (
                err(400, Some("ThrottlingException"), None, "slow down"),
                RateLimit,
            ),
            (err(401, None, None, "bad key"), Credentials),
            (
                err(
                    400,
                    Some("INVALID_ARGUMENT"),
                    None,
                    "API key not valid. Please pass a valid API key.",
                ),
                Credentials,
            ),
            (
                err(403, Some("PERMISSION_DENIED"), None, "denied"),
                Credentials,
            ),
            (err(400, None, None, "bad temperature"), Other),
            (err(500, None, None, "boom"), Other),
        ];
        for (e, want) in cases {
            assert_eq!(e.class(), want, "{e:?}");
        }
    }
}
