//! Provider adapters: pure translation between the gateway's canonical
//! (OpenAI) format and each upstream's wire format. No I/O happens here —
//! `ferrolite-core` sends what these functions build — and no credentials
//! are seen here: an [`UpstreamRequest`] names its [`AuthScheme`] and the
//! sender applies the key.

pub mod anthropic;
pub mod bedrock;
pub mod capabilities;
pub mod catalog;
mod chunks;
pub mod error;
pub mod gemini;
pub mod openai_compat;
mod params;
pub mod registry;
pub mod target;
mod tool_calls;
mod turns;
pub mod vertex;

use bytes::Bytes;
use ferrolite_types::openai::completions::CompletionResponse;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{
    ChatChunk, ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest,
};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;

pub use error::{ErrorClass, TranslateError, UpstreamError};
pub use registry::adapter;
pub use target::{AuthScheme, ProviderKind, Target};

/// An HTTP request for the upstream, minus credentials.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Bytes,
    pub auth: AuthScheme,
}

/// Per-call adjustments the pipeline asks a provider to apply while building
/// the upstream body.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions<'a> {
    /// Deployment default parameters (`litellm_params` extras such as
    /// `temperature`), used only where the client did not set the key.
    pub defaults: Option<&'a ferrolite_types::JsonMap>,
    /// Ask the upstream for a final usage chunk on streams.
    pub stream_usage: bool,
}

/// One upstream's translation, for every endpoint it serves.
pub trait Provider: Send + Sync {
    fn chat_request(
        &self,
        req: &ChatRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError>;

    fn parse_chat_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<ChatResponse, TranslateError>;

    fn chat_stream(&self, target: &Target) -> Box<dyn StreamTranslator>;

    /// How this upstream frames its streams. SSE unless overridden.
    fn stream_decoder(&self) -> Box<dyn EventDecoder> {
        Box::new(ferrolite_types::sse::SseParser::new())
    }

    fn completion_request(
        &self,
        req: &CompletionRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let _ = (req, opts);
        Err(TranslateError::Unsupported(format!(
            "{} does not support /v1/completions",
            target.provider
        )))
    }

    fn parse_completion_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<CompletionResponse, TranslateError> {
        let _ = body;
        Err(TranslateError::Unsupported(format!(
            "{} does not support /v1/completions",
            target.provider
        )))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        target: &Target,
        opts: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let _ = (req, opts);
        Err(TranslateError::Unsupported(format!(
            "{} does not support /v1/embeddings",
            target.provider
        )))
    }

    fn parse_embedding_response(
        &self,
        body: &[u8],
        target: &Target,
    ) -> Result<EmbeddingResponse, TranslateError> {
        let _ = body;
        Err(TranslateError::Unsupported(format!(
            "{} does not support /v1/embeddings",
            target.provider
        )))
    }

    /// Whether this upstream's JSON answers are already in the canonical
    /// (OpenAI) shape, so the pipeline may forward them as they are, rewriting
    /// only `model`, instead of parsing and re-encoding them.
    fn passthrough(&self) -> bool {
        false
    }

    /// Turn an upstream error answer into the gateway's view of it.
    fn parse_error(&self, status: u16, body: &[u8], target: &Target) -> UpstreamError;
}

/// Splits an upstream stream's bytes into events: SSE for most providers,
/// AWS event-stream frames for Bedrock.
pub trait EventDecoder: Send {
    /// Parse `chunk`, appending every event it completes to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), TranslateError>;

    /// The stream ended: flush what is left.
    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), TranslateError>;
}

impl EventDecoder for ferrolite_types::sse::SseParser {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), TranslateError> {
        ferrolite_types::sse::SseParser::feed(self, chunk, out).map_err(|_| {
            TranslateError::InvalidResponse("upstream sent an over-long SSE line".into())
        })
    }

    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), TranslateError> {
        ferrolite_types::sse::SseParser::finish(self, out);
        Ok(())
    }
}

/// Turns one upstream stream into OpenAI chunks. Stateful: it may carry ids,
/// tool-call indexes and usage from event to event.
pub trait StreamTranslator: Send {
    /// One upstream event in; zero or more chunks out. `Ok(None)` means the
    /// upstream signalled the end of the stream.
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError>;

    /// The usage the stream reported so far.
    fn usage(&self) -> Option<&Usage>;
}
