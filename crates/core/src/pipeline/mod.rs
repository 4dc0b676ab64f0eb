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

use crate::spend::content::{self, Dialect};
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
    /// Set when the answer came from the response cache (`x-litellm-cache-key`).
    pub cache_key: Option<String>,
}

pub struct Outcome<T> {
    pub answer: Answer<T>,
    pub meta: AnswerMeta,
}

pub async fn chat(
    gw: &Gateway,
    ctx: &RequestContext,
    req: ChatRequest,
) -> Result<Outcome<ChatResponse>, GatewayError> {
    let prompt = content::prompt(gw, &req.messages);
    let out = chat_call(gw, ctx, req).await;
    content::keep(gw, ctx, prompt, out, Dialect::Chat, content::json_or_raw)
}

/// A chat call whose content the caller keeps (if at all) in its own
/// dialect (Gemini runs through chat).
pub(crate) async fn chat_call(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: ChatRequest,
) -> Result<Outcome<ChatResponse>, GatewayError> {
    let cache = crate::cache::Lookup::read(gw, ctx, crate::meter::CallType::Chat, &req.extra);
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let cache = cache.and_then(|c| c.keyed(gw, &requested, &req));
    let op = ops::ChatOp { req };
    let run = fallback::run(gw, ctx, &op, &controls, &requested);
    let mut outcome = crate::cache::serve(gw, ctx, cache, &requested, run).await?;
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
    crate::spend::usage_cost::add_to_chat(gw, &mut outcome);
    Ok(outcome)
}

pub async fn completion(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: CompletionRequest,
) -> Result<Outcome<CompletionResponse>, GatewayError> {
    let prompt = content::prompt(gw, &req.prompt);
    let cache = crate::cache::Lookup::read(gw, ctx, crate::meter::CallType::Completion, &req.extra);
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let cache = cache.and_then(|c| c.keyed(gw, &requested, &req));
    let op = ops::CompletionOp { req };
    let run = fallback::run(gw, ctx, &op, &controls, &requested);
    let out = crate::cache::serve(gw, ctx, cache, &requested, run).await;
    content::keep(
        gw,
        ctx,
        prompt,
        out,
        Dialect::Completion,
        content::json_or_raw,
    )
}

pub async fn embedding(
    gw: &Gateway,
    ctx: &RequestContext,
    mut req: EmbeddingRequest,
) -> Result<Outcome<EmbeddingResponse>, GatewayError> {
    let prompt = content::prompt(gw, &req.input);
    let cache = crate::cache::Lookup::read(gw, ctx, crate::meter::CallType::Embedding, &req.extra);
    let controls = Controls::take(&mut req.extra)?;
    let requested = std::mem::take(&mut req.model);
    let cache = cache.and_then(|c| c.keyed(gw, &requested, &req));
    let op = ops::EmbeddingOp { req };
    let run = fallback::run(gw, ctx, &op, &controls, &requested);
    let out = crate::cache::serve(gw, ctx, cache, &requested, run).await;
    content::keep(gw, ctx, prompt, out, Dialect::Embedding, |_| None)
}

/// Every byte of a request's future is copied each time it is moved into a
/// box (the router boxes handler futures and each middleware's): keep the
/// pipeline futures small, with rarely used paths (the cache) boxed.
#[cfg(test)]
mod future_size {
    use ferrolite_types::openai::{ChatRequest, CompletionRequest, EmbeddingRequest};
    use serde_json::json;

    const MAX: usize = 8 * 1024;

    #[test]
    fn pipeline_futures_stay_small() {
        let cfg = crate::config::load_str(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: x\n",
            std::path::Path::new("."),
            &crate::config::Env::isolated(Vec::<(String, String)>::new()),
        )
        .unwrap();
        let gw = crate::Gateway::new(cfg).unwrap();
        let ctx = crate::RequestContext::new();
        let chat: ChatRequest = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        let completion: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "x"})).unwrap();
        let embedding: EmbeddingRequest =
            serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
        let sizes = [
            ("chat", std::mem::size_of_val(&super::chat(&gw, &ctx, chat))),
            (
                "completion",
                std::mem::size_of_val(&super::completion(&gw, &ctx, completion)),
            ),
            (
                "embedding",
                std::mem::size_of_val(&super::embedding(&gw, &ctx, embedding)),
            ),
        ];
        for (name, size) in sizes {
            assert!(
                size <= MAX,
                "the {name} pipeline future is {size} bytes (at most {MAX})"
            );
        }
    }
}
