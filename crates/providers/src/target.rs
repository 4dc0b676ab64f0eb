//! A resolved deployment target: where and how to reach one upstream model.

use std::fmt;

/// Which adapter speaks to the upstream. The registry is the only place that
/// matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Any OpenAI-compatible API (OpenAI itself, OpenRouter, Groq, vLLM, …).
    OpenAiCompat,
    /// Azure OpenAI: deployment URLs, `api-version`, `api-key` header.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google AI Studio's Gemini API (`generateContent`).
    Gemini,
    /// Gemini models on Vertex AI: the same bodies, Vertex URLs, OAuth.
    VertexGemini,
    /// Claude models on Vertex AI: Anthropic bodies on `rawPredict` /
    /// `streamRawPredict`, OAuth.
    VertexAnthropic,
    /// Amazon Bedrock's Converse / ConverseStream APIs, SigV4-signed.
    Bedrock,
}

/// How the sender attaches the deployment's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key in a named header (`api-key` for Azure).
    Header(http::HeaderName),
    /// No credential.
    None,
    /// A Google OAuth access token (from a service account or the
    /// environment), as `Authorization: Bearer`.
    GcpOAuth,
    /// AWS Signature Version 4 over the whole request.
    AwsSigV4 {
        region: String,
        service: &'static str,
    },
}

/// Everything a provider needs to build requests for one deployment.
/// Credentials are deliberately absent.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `litellm_params.model` prefix ("openai", "openrouter", "azure", …).
    pub provider: String,
    pub kind: ProviderKind,
    /// The model id sent upstream, prefix removed.
    pub model: String,
    /// The completed API base, without a trailing slash.
    pub api_base: String,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    pub auth: AuthScheme,
    /// Whether the upstream accepts `stream_options.include_usage`.
    pub stream_usage: bool,
    /// Fixed headers for every request (`extra_headers`, catalog headers).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}
