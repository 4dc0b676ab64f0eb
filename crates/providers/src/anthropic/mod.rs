//! Anthropic's Messages API (`POST /v1/messages`): OpenAI chat requests are
//! rewritten into Anthropic's shape, and Anthropic messages and SSE events are
//! turned back into OpenAI responses and chunks.
//!
//! Behaviour follows LiteLLM's Anthropic adapter where clients can observe it
//! (parameter mapping, `reasoning_content` / `thinking_blocks`, the
//! `json_tool_call` tool behind `response_format`, usage accounting), with the
//! differences noted where they are made.

pub(crate) mod error;
pub(crate) mod request;
pub(crate) mod response;
mod stream;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use ferrolite_types::openai::{ChatRequest, ChatResponse};

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub use stream::AnthropicStream;

/// The API version every request pins unless the deployment sets its own.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The display name LiteLLM uses in error messages.
pub const PROVIDER_LABEL: &str = "AnthropicException";

/// The tool that carries `response_format` (LiteLLM's name, so clients that
/// look for it keep working).
pub const RESPONSE_FORMAT_TOOL_NAME: &str = "json_tool_call";

/// Anthropic's Messages API.
pub struct Anthropic;

/// `{api_base}/v1/messages`, without doubling a `/v1` (or the whole path) the
/// configured base already carries.
fn messages_url(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_owned()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

fn upstream(target: &Target, body: Bytes) -> UpstreamRequest {
    let version = http::HeaderName::from_static("anthropic-version");
    let mut headers = Vec::with_capacity(target.headers.len() + 2);
    headers.push((
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    ));
    if !target.headers.iter().any(|(k, _)| *k == version) {
        headers.push((version, http::HeaderValue::from_static(ANTHROPIC_VERSION)));
    }
    headers.extend(target.headers.iter().cloned());
    UpstreamRequest {
        url: messages_url(&target.api_base),
        headers,
        body,
        auth: target.auth.clone(),
    }
}

impl Provider for Anthropic {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = request::chat_body(req, target, opts)?;
        Ok(upstream(target, body))
    }

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        response::parse(body, target)
    }

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator> {
        Box::new(AnthropicStream::new(target))
    }

    fn parse_error(&self, status: u16, body: &[u8], _target: &Target) -> UpstreamError {
        error::parse_error(status, body)
    }
}
