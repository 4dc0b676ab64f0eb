//! Google AI Studio's Gemini API (`generateContent`): OpenAI chat in, Gemini
//! out, and back. Request bodies, responses and streams are the same on
//! Vertex AI; only [`studio_url`] and the auth scheme are AI Studio's own.

pub(crate) mod embed;
pub(crate) mod error;
pub(crate) mod request;
pub(crate) mod response;
mod stream;
#[cfg(test)]
mod tests;
mod thought;

use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{ChatRequest, ChatResponse, EmbeddingRequest};

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub use stream::GeminiStream;

/// Google AI Studio.
pub struct Gemini;

/// `{api_base}/v1beta/models/{model}:generateContent`, or the SSE stream
/// variant.
fn studio_url(target: &Target, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!(
        "{}/v1beta/models/{}:{method}",
        target.api_base, target.model
    )
}

pub(crate) fn upstream(target: &Target, url: String, body: bytes::Bytes) -> UpstreamRequest {
    let mut headers = Vec::with_capacity(target.headers.len() + 1);
    headers.push((
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    ));
    headers.extend(target.headers.iter().cloned());
    UpstreamRequest {
        url,
        headers,
        body,
        auth: target.auth.clone(),
    }
}

impl Provider for Gemini {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = request::chat_body(req, &target.model, opts)?;
        Ok(upstream(target, studio_url(target, req.is_stream()), body))
    }

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        response::chat_response(body, &target.model)
    }

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator> {
        Box::new(GeminiStream::new(&target.model, error::STUDIO_LABEL))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let body = embed::batch_body(req, &target.model, opts)?;
        let model = target
            .model
            .strip_prefix("models/")
            .unwrap_or(&target.model);
        let url = format!(
            "{}/v1beta/models/{model}:batchEmbedContents",
            target.api_base
        );
        Ok(upstream(target, url, body))
    }

    fn parse_embedding_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<EmbeddingResponse, TranslateError> {
        embed::batch_response(body, &target.model)
    }

    fn parse_error(&self, status: u16, body: &[u8], _target: &Target) -> UpstreamError {
        error::parse_error(status, body, error::STUDIO_LABEL)
    }
}
