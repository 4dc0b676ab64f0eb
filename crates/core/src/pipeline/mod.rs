//! The request pipeline. One request reads top to bottom:
//!
//! 1. controls  — LiteLLM-only body fields (`metadata`, `num_retries`,
//!    `timeout`, …) are taken out of the body before it goes upstream;
//! 2. route     — the requested name resolves to a model group;
//! 3. attempt   — a deployment is picked and called; on a retryable failure
//!    (connection error, timeout, 408/429/5xx) another attempt follows, up to
//!    `num_retries`, preferring deployments not yet tried;
//! 4. answer    — JSON with `model` set to the name the client sent, or an SSE
//!    relay that translates frames as they arrive.
//!
//! Auth happens in the server before the pipeline runs.

mod attempt;
mod continuation;
mod controls;
mod fallback;
mod messages;
mod ops;
mod raw;
pub mod responses;
mod stream;

use std::convert::Infallible;

use bytes::Bytes;
use ferrolite_types::openai::completions::CompletionResponse;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest};
use futures_util::stream::BoxStream;

use crate::{Gateway, GatewayError, RequestContext};

pub use controls::Controls;
pub use messages::{count_tokens, messages, MessagesAnswer, MessagesRequest};
pub use raw::RawJson;

/// A streamed answer: SSE frames, ready to write.
pub type FrameStream = BoxStream<'static, Result<Bytes, Infallible>>;

pub enum Answer<T> {
    Json(T),
    /// The upstream's own JSON, already canonical, with `model` rewritten.
    Raw(RawJson),
    Stream(FrameStream),
}

/// Facts about the attempt that answered, for response headers.
#[derive(Debug, Clone, Default)]
pub struct AnswerMeta {
    pub model_id: String,
    pub model_group: String,
    pub api_base: Option<String>,
    /// `provider/model` as sent upstream.
    pub upstream_model: String,
    pub retries: u32,
    /// Fallback groups tried before the one that answered.
    pub fallbacks: u32,
    /// Time spent waiting on upstreams, for the overhead header.
    pub upstream_ms: f64,
    /// The retry budget (`x-litellm-max-retries`).
    pub max_retries: u32,
    /// The timeout the answering attempt ran under (`x-litellm-timeout`).
    pub timeout_secs: f64,
    /// What is left of the deployment's `rpm` / `tpm` this minute.
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

pub struct Outcome<T> {
    pub answer: Answer<T>,
    pub meta: AnswerMeta,
}

pub async fn chat(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: ChatRequest,
) -> Result<Outcome<ChatResponse>, GatewayError> {
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let op = ops::ChatOp { req };
    let mut outcome = fallback::run(gw, ctx, &op, &controls, &requested).await?;
    if gw.config.router.mid_stream_continuation && !ctx.no_fallbacks {
        if let Some(shared) = gw.arc() {
            let origin = continuation::Origin {
                requested,
                group: outcome.meta.model_group.clone(),
                deployment: outcome.meta.model_id.clone(),
            };
            outcome.answer = match outcome.answer {
                Answer::Stream(stream) => Answer::Stream(continuation::wrap(
                    shared, ctx, op, controls, origin, stream,
                )),
                other => other,
            };
        }
    }
    Ok(outcome)
}

pub async fn completion(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: CompletionRequest,
) -> Result<Outcome<CompletionResponse>, GatewayError> {
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let op = ops::CompletionOp { req };
    fallback::run(gw, ctx, &op, &controls, &requested).await
}

pub async fn embedding(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: EmbeddingRequest,
) -> Result<Outcome<EmbeddingResponse>, GatewayError> {
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let op = ops::EmbeddingOp { req };
    fallback::run(gw, ctx, &op, &controls, &requested).await
}
