//! What differs between endpoints (chat, completions, embeddings): how the
//! upstream request is built, how the answer is read and renamed, how a
//! stream is relayed and what the mock model answers. The retry loop in
//! `attempt.rs` is shared.

use std::sync::Arc;

use ferrolite_providers::{BuildOptions, Provider, Target, TranslateError, UpstreamRequest};
use ferrolite_types::openai::completions::CompletionResponse;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest};
use ferrolite_types::JsonMap;
use futures_util::stream;

use super::stream::{ChatFrames, FrameSource, RawFrames};
use super::Answer;
use crate::{mock, GatewayError};

pub(super) trait EndpointOp: Sync + Sized {
    type Response: Send;

    fn is_stream(&self) -> bool;

    /// The request's parameters other than the typed ones (model, messages…).
    fn params(&self) -> &JsonMap;

    /// A copy of the request without the parameters `drop`.
    fn without(&self, drop: &[String]) -> Self;

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError>;

    fn parse(
        &self,
        p: &dyn Provider,
        body: &[u8],
        t: &Target,
    ) -> Result<Self::Response, TranslateError>;

    /// A rough count of the prompt's tokens, for context-window pre-call checks.
    fn prompt_tokens_estimate(&self) -> u64 {
        0
    }

    /// Tokens the answer reports using, for `tpm` accounting.
    fn total_tokens(&self, r: &Self::Response) -> u64 {
        let _ = r;
        0
    }

    /// The usage the answer reports, for spend.
    fn usage(&self, r: &Self::Response) -> Option<ferrolite_types::Usage> {
        let _ = r;
        None
    }

    /// What kind of call this is, for spend logs and metrics.
    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Chat
    }

    /// Whether a JSON answer from `p` may be forwarded as it came (only
    /// `model` spliced, `pipeline/raw.rs`) instead of being parsed.
    fn forward_raw(&self, p: &dyn Provider) -> bool {
        p.passthrough()
    }

    /// Report `model` as the name the client asked for.
    fn rename(&self, r: &mut Self::Response, model: &str);

    /// The frame source relaying this endpoint's stream.
    fn frames(&self, p: &dyn Provider, t: &Target, model: Arc<str>) -> Box<dyn FrameSource>;

    fn mock(&self, content: &str, model: &str) -> Result<Answer<Self::Response>, GatewayError>;
}

fn frames_stream(frames: Vec<bytes::Bytes>) -> super::FrameStream {
    Box::pin(stream::iter(frames.into_iter().map(Ok)))
}

pub(super) struct ChatOp {
    pub req: ChatRequest,
}

impl EndpointOp for ChatOp {
    type Response = ChatResponse;

    fn params(&self) -> &JsonMap {
        &self.req.extra
    }

    fn without(&self, drop: &[String]) -> Self {
        let mut req = self.req.clone();
        req.extra.retain(|k, _| !drop.contains(k));
        Self { req }
    }

    fn is_stream(&self) -> bool {
        self.req.is_stream()
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        p.chat_request(&self.req, t, o)
    }

    fn parse(
        &self,
        p: &dyn Provider,
        body: &[u8],
        t: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        p.parse_chat_response(body, t)
    }

    fn prompt_tokens_estimate(&self) -> u64 {
        let text: usize = self
            .req
            .messages
            .iter()
            .filter_map(|m| m.content.as_ref())
            .map(|c| c.text().len())
            .sum();
        mock::estimate_tokens_of_len(text)
    }

    fn total_tokens(&self, r: &ChatResponse) -> u64 {
        r.usage.as_ref().map_or(0, |u| u.total_tokens)
    }

    fn usage(&self, r: &ChatResponse) -> Option<ferrolite_types::Usage> {
        r.usage.clone()
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Chat
    }

    fn rename(&self, r: &mut ChatResponse, model: &str) {
        model.clone_into(&mut r.model);
    }

    fn frames(&self, p: &dyn Provider, t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        if p.passthrough() {
            return Box::new(RawFrames::new(&model, self.req.wants_stream_usage()));
        }
        Box::new(ChatFrames::new(
            p.chat_stream(t),
            model,
            self.req.wants_stream_usage(),
        ))
    }

    fn mock(&self, content: &str, model: &str) -> Result<Answer<ChatResponse>, GatewayError> {
        Ok(if self.is_stream() {
            Answer::Stream(frames_stream(mock::chat_stream(content, &self.req, model)))
        } else {
            Answer::Json(mock::chat(content, &self.req, model))
        })
    }
}

pub(super) struct CompletionOp {
    pub req: CompletionRequest,
}

impl EndpointOp for CompletionOp {
    type Response = CompletionResponse;

    fn params(&self) -> &JsonMap {
        &self.req.extra
    }

    fn without(&self, drop: &[String]) -> Self {
        let mut req = self.req.clone();
        req.extra.retain(|k, _| !drop.contains(k));
        Self { req }
    }

    fn is_stream(&self) -> bool {
        self.req.is_stream()
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        p.completion_request(&self.req, t, o)
    }

    fn parse(
        &self,
        p: &dyn Provider,
        body: &[u8],
        t: &Target,
    ) -> Result<CompletionResponse, TranslateError> {
        p.parse_completion_response(body, t)
    }

    fn total_tokens(&self, r: &CompletionResponse) -> u64 {
        r.usage.as_ref().map_or(0, |u| u.total_tokens)
    }

    fn usage(&self, r: &CompletionResponse) -> Option<ferrolite_types::Usage> {
        r.usage.clone()
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Completion
    }

    fn rename(&self, r: &mut CompletionResponse, model: &str) {
        model.clone_into(&mut r.model);
    }

    fn frames(&self, _p: &dyn Provider, _t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        Box::new(RawFrames::new(&model, self.req.wants_stream_usage()))
    }

    fn mock(&self, content: &str, model: &str) -> Result<Answer<CompletionResponse>, GatewayError> {
        Ok(if self.is_stream() {
            Answer::Stream(frames_stream(mock::completion_stream(
                content, &self.req, model,
            )))
        } else {
            Answer::Json(mock::completion(content, &self.req, model))
        })
    }
}

pub(super) struct EmbeddingOp {
    pub req: EmbeddingRequest,
}

impl EndpointOp for EmbeddingOp {
    type Response = EmbeddingResponse;

    fn params(&self) -> &JsonMap {
        &self.req.extra
    }

    fn without(&self, drop: &[String]) -> Self {
        let mut req = self.req.clone();
        req.extra.retain(|k, _| !drop.contains(k));
        Self { req }
    }

    fn is_stream(&self) -> bool {
        false
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        p.embedding_request(&self.req, t, o)
    }

    fn parse(
        &self,
        p: &dyn Provider,
        body: &[u8],
        t: &Target,
    ) -> Result<EmbeddingResponse, TranslateError> {
        p.parse_embedding_response(body, t)
    }

    fn total_tokens(&self, r: &EmbeddingResponse) -> u64 {
        r.usage.as_ref().map_or(0, |u| u.total_tokens)
    }

    fn usage(&self, r: &EmbeddingResponse) -> Option<ferrolite_types::Usage> {
        r.usage.clone()
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Embedding
    }

    fn rename(&self, r: &mut EmbeddingResponse, model: &str) {
        model.clone_into(&mut r.model);
    }

    fn frames(&self, _p: &dyn Provider, _t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        // Embeddings never stream; a relay is never built for them.
        Box::new(RawFrames::new(&model, false))
    }

    fn mock(&self, _content: &str, model: &str) -> Result<Answer<EmbeddingResponse>, GatewayError> {
        mock::embedding(&self.req, model)
            .map(Answer::Json)
            .map_err(GatewayError::Internal)
    }
}
