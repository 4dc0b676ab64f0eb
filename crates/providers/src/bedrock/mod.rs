//! Amazon Bedrock: the Converse (`POST {api_base}/model/{modelId}/converse`)
//! and ConverseStream (`/converse-stream`, AWS event-stream framing) APIs.
//! The target's `api_base` is `https://bedrock-runtime.{region}.amazonaws.com`
//! (or the configured endpoint); the sender signs every request with SigV4
//! (`AuthScheme::AwsSigV4`), over exactly the URL built here.
//!
//! Behaviour follows LiteLLM's `AmazonConverseConfig` where clients can
//! observe it: parameter mapping, `reasoning_content` / `thinking_blocks`,
//! the `json_tool_call` tool behind `response_format`, usage accounting and
//! the `BedrockException` label.

mod error;
pub mod eventstream;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use ferrolite_types::openai::{ChatRequest, ChatResponse};

use crate::{
    BuildOptions, EventDecoder, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub use eventstream::EventStreamDecoder;
pub use stream::BedrockStream;

/// The display name LiteLLM uses in error messages.
pub const PROVIDER_LABEL: &str = "BedrockException";

/// The tool that carries `response_format` (LiteLLM's name).
pub const RESPONSE_FORMAT_TOOL_NAME: &str = "json_tool_call";

/// Amazon Bedrock's Converse API.
pub struct Bedrock;

/// The model id sent upstream: LiteLLM's `bedrock/converse/<id>` route
/// prefix removed.
pub(crate) fn model_id(model: &str) -> &str {
    model.strip_prefix("converse/").unwrap_or(model)
}

/// The model id without a cross-region inference prefix (`us.`, `eu.`, …).
fn base_model(model: &str) -> &str {
    const REGIONS: &[&str] = &["us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"];
    match model.split_once('.') {
        Some((prefix, rest)) if REGIONS.contains(&prefix) => rest,
        _ => model,
    }
}

pub(crate) fn is_anthropic(model: &str) -> bool {
    base_model(model).starts_with("anthropic") || model.contains("anthropic.claude")
}

pub(crate) fn is_nova(model: &str) -> bool {
    base_model(model).starts_with("amazon.nova")
}

pub(crate) fn is_nova_2_lite(model: &str) -> bool {
    base_model(model).contains("nova-2-lite")
}

pub(crate) fn is_gpt_oss(model: &str) -> bool {
    model.contains("gpt-oss")
}

/// Percent-encode a path segment: everything but RFC 3986's unreserved
/// characters, as botocore's `quote(model_id, safe="")` does (`:` → `%3A`,
/// and the `/` of ARNs → `%2F`). The SigV4 canonical URI encodes this path
/// once more, which the signer does.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{api_base}/model/{modelId}/converse` or `…/converse-stream`.
pub fn converse_url(api_base: &str, model: &str, stream: bool) -> String {
    let base = api_base.trim_end_matches('/');
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("{base}/model/{}/{op}", encode_segment(model_id(model)))
}

fn upstream(target: &Target, body: Bytes, stream: bool) -> UpstreamRequest {
    let mut headers = Vec::with_capacity(target.headers.len() + 1);
    headers.push((
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    ));
    headers.extend(target.headers.iter().cloned());
    UpstreamRequest {
        url: converse_url(&target.api_base, &target.model, stream),
        headers,
        body,
        auth: target.auth.clone(),
    }
}

impl Provider for Bedrock {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = request::chat_body(req, target, opts)?;
        Ok(upstream(target, body, req.is_stream()))
    }

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        response::parse(body, target)
    }

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator> {
        Box::new(BedrockStream::new(target))
    }

    fn stream_decoder(&self) -> Box<dyn EventDecoder> {
        Box::new(EventStreamDecoder::new())
    }

    fn parse_error(&self, status: u16, body: &[u8], _target: &Target) -> UpstreamError {
        error::parse_error(status, body)
    }
}
