//! One error type for the whole pipeline, with an exhaustive status table.
//! The server renders it once, in the OpenAI error shape.

use std::time::Duration;

use ferrolite_providers::{ErrorClass, UpstreamError};
use ferrolite_types::openai::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The client's request is malformed or asks for something impossible.
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<String>,
    },
    /// No usable credential was presented.
    #[error("{0}")]
    Unauthorized(String),
    /// The credential may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The requested model is not served by any configured group.
    #[error("{0}")]
    UnknownModel(String),
    /// The route does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request body exceeds the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The upstream answered with an error, after retries.
    #[error("{}", .error.message)]
    Upstream {
        error: Box<UpstreamError>,
        group: String,
        retries: u32,
    },
    /// No answer within the timeout, after retries.
    #[error("upstream timed out after {after:?}")]
    Timeout {
        group: String,
        after: Duration,
        retries: u32,
    },
    /// The upstream could not be reached or broke the connection.
    #[error("{message}")]
    Connect {
        message: String,
        group: String,
        retries: u32,
    },
    /// The request uses OpenAI parameters the provider cannot take, and
    /// `drop_params` is off.
    #[error("{provider} does not support parameters: {params:?}")]
    UnsupportedParams {
        provider: String,
        model: String,
        params: Vec<String>,
    },
    /// The prompt does not fit any deployment's context window (pre-call check).
    #[error("{message}")]
    ContextWindow { message: String, group: String },
    /// The gateway already serves `global_max_parallel_requests` requests.
    #[error("{0}")]
    TooManyRequests(String),
    /// Every deployment of the group is cooling down.
    #[error("No deployments available for selected model, Try again in {} seconds. Passed model={group}.", retry_after.as_secs().max(1))]
    NoDeployments {
        group: String,
        retry_after: Duration,
    },
    /// The upstream answered 2xx with a body we cannot read.
    #[error("{0}")]
    BadUpstreamResponse(String),
    /// A bug or an unexpected state on our side.
    #[error("{0}")]
    Internal(String),
    /// A policy on the caller's virtual key refused the request, with
    /// LiteLLM's status and error type (`budget_exceeded`,
    /// `key_model_access_denied`, `expired_key`, …).
    #[error("{message}")]
    Denied {
        status: u16,
        kind: &'static str,
        message: String,
        param: Option<String>,
    },
}

impl GatewayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        GatewayError::BadRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadRequest { .. } => 400,
            GatewayError::Unauthorized(_) => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::UnknownModel(_) => 400,
            GatewayError::NotFound(_) => 404,
            GatewayError::PayloadTooLarge(_) => 413,
            GatewayError::Upstream { error, .. } => {
                if (400..=599).contains(&error.status) {
                    error.status
                } else {
                    502
                }
            }
            GatewayError::Timeout { .. } => 408,
            GatewayError::Connect { .. } => 502,
            GatewayError::UnsupportedParams { .. } => 400,
            GatewayError::NoDeployments { .. } => 429,
            GatewayError::TooManyRequests(_) => 429,
            GatewayError::ContextWindow { .. } => 400,
            GatewayError::BadUpstreamResponse(_) => 502,
            GatewayError::Internal(_) => 500,
            GatewayError::Denied { status, .. } => *status,
        }
    }

    /// The OpenAI `error.type`.
    pub fn error_type(&self) -> String {
        match self {
            GatewayError::Unauthorized(_) => "auth_error".to_owned(),
            GatewayError::Upstream { error, .. } => error
                .kind
                .clone()
                .unwrap_or_else(|| type_for_status(self.status()).to_owned()),
            GatewayError::Timeout { .. } => "timeout".to_owned(),
            GatewayError::Denied { kind, .. } => (*kind).to_owned(),
            other => type_for_status(other.status()).to_owned(),
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            GatewayError::BadRequest { param, .. } => param.as_deref(),
            GatewayError::Upstream { error, .. } => error.param.as_deref(),
            GatewayError::Denied { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// The message clients see, in LiteLLM's wording where clients match on it.
    pub fn client_message(&self) -> String {
        match self {
            GatewayError::UnsupportedParams { provider, model, params } => {
                let list = params.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
                format!(
                    "litellm.UnsupportedParamsError: {provider} does not support parameters: [{list}], for model={model}. To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these params dynamically send allowed_openai_params=[{list}] in your request."
                )
            }
            GatewayError::Upstream { error, group, retries } => {
                let class = match error.class() {
                    ErrorClass::ContextWindow => "ContextWindowExceededError",
                    ErrorClass::ContentPolicy => "ContentPolicyViolationError",
                    _ => exception_class(error.status),
                };
                let hint = if error.class() == ErrorClass::Credentials {
                    " (the provider rejected the gateway's credentials for this deployment: check its api_key or cloud credentials in the config; the key the client sent to the gateway was accepted)"
                } else {
                    ""
                };
                format!(
                    "litellm.{class}: {class}: {label} - {msg}{hint}\nReceived Model Group={group}\nAvailable Model Group Fallbacks=None{retried}",
                    label = error.provider_label,
                    msg = error.message,
                    retried = retried(*retries),
                )
            }
            GatewayError::Timeout { group, after, retries } => format!(
                "litellm.Timeout: Request timed out after {:.1} seconds\nReceived Model Group={group}\nAvailable Model Group Fallbacks=None{}",
                after.as_secs_f64(),
                retried(*retries),
            ),
            GatewayError::Connect { message, group, retries } => format!(
                "litellm.APIConnectionError: {message}\nReceived Model Group={group}\nAvailable Model Group Fallbacks=None{}",
                retried(*retries),
            ),
            other => other.to_string(),
        }
    }

    /// How long the client should wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::NoDeployments { retry_after, .. } => Some(*retry_after),
            GatewayError::TooManyRequests(_) => Some(Duration::from_secs(1)),
            GatewayError::Denied { status: 429, .. } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// Number of retries made before this error, for `x-litellm-attempted-retries`.
    pub fn retries(&self) -> u32 {
        match self {
            GatewayError::Upstream { retries, .. }
            | GatewayError::Timeout { retries, .. }
            | GatewayError::Connect { retries, .. } => *retries,
            _ => 0,
        }
    }

    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { .. } => "bad_request",
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::UnknownModel(_) => "unknown_model",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::PayloadTooLarge(_) => "payload_too_large",
            GatewayError::Upstream { .. } => "upstream_error",
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::Connect { .. } => "connect_error",
            GatewayError::BadUpstreamResponse(_) => "bad_upstream_response",
            GatewayError::UnsupportedParams { .. } => "unsupported_params",
            GatewayError::NoDeployments { .. } => "no_deployments",
            GatewayError::TooManyRequests(_) => "too_many_requests",
            GatewayError::ContextWindow { .. } => "context_window",
            GatewayError::Internal(_) => "internal",
            GatewayError::Denied { .. } => "denied",
        }
    }
}

fn retried(retries: u32) -> String {
    if retries > 0 {
        format!(" LiteLLM Retried: {retries} times")
    } else {
        String::new()
    }
}

/// OpenAI's error type for a status when the source gave none.
pub fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "internal_server_error",
    }
}

/// LiteLLM's exception class name for an upstream status.
pub fn exception_class(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        502 => "BadGatewayError",
        503 => "ServiceUnavailableError",
        // Anthropic's 529 "overloaded" and other server errors: LiteLLM
        // reports them as InternalServerError.
        500..=599 => "InternalServerError",
        _ => "APIError",
    }
}

/// The OpenAI error body for an error: `{"error":{"message","type","param","code"}}`,
/// `code` being the HTTP status as a string, as LiteLLM sends it.
pub fn error_body(e: &GatewayError) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail {
            message: e.client_message(),
            kind: Some(e.error_type()),
            param: e.param().map(str::to_owned),
            code: Some(serde_json::Value::String(e.status().to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16, kind: Option<&str>) -> GatewayError {
        GatewayError::Upstream {
            error: Box::new(UpstreamError {
                status,
                message: "Rate limit reached".into(),
                kind: kind.map(Into::into),
                param: None,
                code: None,
                provider_label: "OpenAIException".into(),
            }),
            group: "bad429".into(),
            retries: 2,
        }
    }

    #[test]
    fn upstream_errors_keep_status_and_use_litellm_wording() {
        let e = upstream(429, None);
        assert_eq!(e.status(), 429);
        assert_eq!(e.error_type(), "rate_limit_error");
        let m = e.client_message();
        assert!(
            m.starts_with(
                "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached"
            ),
            "{m}"
        );
        assert!(m.contains("Received Model Group=bad429"));
        assert!(m.ends_with("LiteLLM Retried: 2 times"));
        assert_eq!(
            upstream(400, Some("invalid_request_error")).error_type(),
            "invalid_request_error"
        );
        assert_eq!(upstream(200, None).status(), 502);
    }

    #[test]
    fn status_table() {
        assert_eq!(GatewayError::bad_request("x").status(), 400);
        assert_eq!(
            GatewayError::Unauthorized("x".into()).error_type(),
            "auth_error"
        );
        assert_eq!(GatewayError::UnknownModel("x".into()).status(), 400);
        assert_eq!(GatewayError::PayloadTooLarge("x".into()).status(), 413);
        let t = GatewayError::Timeout {
            group: "g".into(),
            after: Duration::from_millis(1500),
            retries: 0,
        };
        assert_eq!(t.status(), 408);
        assert!(t
            .client_message()
            .starts_with("litellm.Timeout: Request timed out after 1.5 seconds"));
        assert_eq!(
            GatewayError::Connect {
                message: "x".into(),
                group: "g".into(),
                retries: 0
            }
            .status(),
            502
        );
    }
}
