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
