//! Vertex AI: Gemini models (`generateContent` on Vertex URLs) and Claude
//! models (Anthropic bodies on `rawPredict` / `streamRawPredict`). The
//! target's `api_base` is `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}`
//! (or the `global` endpoint); authentication is a Google OAuth token added by
//! the sender (`AuthScheme::GcpOAuth`).
//!
//! Bodies, responses and streams are the Gemini and Anthropic adapters' own;
//! this module adds the Vertex URLs, Claude's two body differences (no
//! `model`, `anthropic_version: vertex-2023-10-16`) and LiteLLM's
//! `VertexAIException` label on every error.

mod embed;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;
use serde_json::Value;

use crate::anthropic::AnthropicStream;
use crate::gemini::GeminiStream;
use crate::{
    anthropic, gemini, BuildOptions, Provider, StreamTranslator, Target, TranslateError,
    UpstreamError, UpstreamRequest,
};

/// LiteLLM's name for every Vertex AI error, Claude's included.
pub const PROVIDER_LABEL: &str = "VertexAIException";

/// The `anthropic_version` Claude on Vertex requires in the body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Gemini on Vertex AI.
pub struct VertexGemini;

/// Claude on Vertex AI.
pub struct VertexAnthropic;

/// `{api_base}/publishers/{publisher}/models/{model}:{method}`. A numeric
/// model is a deployed endpoint id (a tuned model), reached under
/// `{api_base}/endpoints/{id}` as LiteLLM does.
fn model_url(target: &Target, publisher: &str, method: &str) -> String {
    let base = target.api_base.trim_end_matches('/');
    let model = &target.model;
    if !model.is_empty() && model.bytes().all(|b| b.is_ascii_digit()) {
        format!("{base}/endpoints/{model}:{method}")
    } else {
        format!("{base}/publishers/{publisher}/models/{model}:{method}")
    }
}

fn relabel(mut e: UpstreamError) -> UpstreamError {
    PROVIDER_LABEL.clone_into(&mut e.provider_label);
    e
}

impl Provider for VertexGemini {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = gemini::request::chat_body(req, &target.model, opts)?;
        let method = if req.is_stream() {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        Ok(gemini::upstream(
            target,
            model_url(target, "google", method),
            body,
        ))
    }

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        gemini::response::chat_response(body, &target.model)
    }

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator> {
        Box::new(GeminiStream::new(&target.model, PROVIDER_LABEL))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = embed::predict_body(req, opts)?;
        Ok(gemini::upstream(
            target,
            model_url(target, "google", "predict"),
            body,
        ))
    }

    fn parse_embedding_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<EmbeddingResponse, TranslateError> {
        embed::predict_response(body, &target.model)
    }

    fn parse_error(&self, status: u16, body: &[u8], _target: &Target) -> UpstreamError {
        gemini::error::parse_error(status, body, PROVIDER_LABEL)
    }
}

/// The Anthropic body for Vertex: without `model` (the URL names it), with
/// `anthropic_version`, and with the `anthropic-beta` header's values also
/// in the body's `anthropic_beta`, as LiteLLM sends them.
fn claude_body(
    req: &ChatRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    let mut body = anthropic::request::build_body(req, target, opts)?;
    body.remove("model");
    if !body.contains_key("anthropic_version") {
        body.insert(
            "anthropic_version".into(),
            Value::String(VERTEX_ANTHROPIC_VERSION.to_owned()),
        );
    }
    if !body.contains_key("anthropic_beta") {
        let betas: Vec<Value> = target
            .headers
            .iter()
            .filter(|(k, _)| k.as_str() == "anthropic-beta")
            .filter_map(|(_, v)| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| Value::String(b.to_owned()))
            .collect();
        if !betas.is_empty() {
            body.insert("anthropic_beta".into(), Value::Array(betas));
        }
    }
    crate::params::encode(&Value::Object(body))
}

/// Anthropic's stream translation, with Vertex's label on in-stream errors.
struct VertexClaudeStream(AnthropicStream);

impl StreamTranslator for VertexClaudeStream {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        self.0.on_event(ev).map_err(|e| match e {
            TranslateError::Upstream(u) => TranslateError::Upstream(Box::new(relabel(*u))),
            other => other,
        })
    }

    fn usage(&self) -> Option<&Usage> {
        self.0.usage()
    }
}

impl Provider for VertexAnthropic {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = claude_body(req, target, opts)?;
        let method = if req.is_stream() {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        // Vertex takes the version in the body; `anthropic-version` headers
        // are not sent. Other fixed headers (`anthropic-beta`, extras) are.
        let mut up = gemini::upstream(target, model_url(target, "anthropic", method), body);
        up.headers
            .retain(|(k, _)| k.as_str() != "anthropic-version");
        Ok(up)
    }

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        anthropic::response::parse(body, target).map_err(|e| match e {
            TranslateError::Upstream(u) => TranslateError::Upstream(Box::new(relabel(*u))),
            other => other,
        })
    }

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator> {
        Box::new(VertexClaudeStream(AnthropicStream::new(target)))
    }

    /// Claude's own errors come in Anthropic's shape; errors from Vertex
    /// itself (authentication, quota, unknown model) in Google's.
    fn parse_error(&self, status: u16, body: &[u8], _target: &Target) -> UpstreamError {
        let anthropic_shaped = serde_json::from_slice::<Value>(body)
            .ok()
            .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("error"));
        if anthropic_shaped {
            relabel(anthropic::error::parse_error(status, body))
        } else {
            gemini::error::parse_error(status, body, PROVIDER_LABEL)
        }
    }
}
