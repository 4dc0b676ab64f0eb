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

/// The API root to put `/models/...` under: a configured base that already
/// names an API version (`…/v1beta`, `…/v1`) is used as it is, any other
/// base gets `/v1beta`, so both spellings of a LiteLLM `api_base` work.
pub(crate) fn versioned_base(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base.ends_with("/v1beta") || base.ends_with("/v1") || base.ends_with("/v1alpha") {
        base.to_owned()
    } else {
        format!("{base}/v1beta")
    }
}

/// `{api_base}/v1beta/models/{model}:generateContent`, or the SSE stream
/// variant.
fn studio_url(target: &Target, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!(
        "{}/models/{}:{method}",
        versioned_base(&target.api_base),
        target.model
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
            "{}/models/{model}:batchEmbedContents",
            versioned_base(&target.api_base)
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

#[cfg(test)]
#[test]
fn bases_with_or_without_a_version_reach_the_same_url() {
    for base in [
        "https://g.example",
        "https://g.example/",
        "https://g.example/v1beta",
        "https://g.example/v1beta/",
    ] {
        assert_eq!(versioned_base(base), "https://g.example/v1beta", "{base}");
    }
    assert_eq!(
        versioned_base("https://g.example/v1"),
        "https://g.example/v1"
    );
}
