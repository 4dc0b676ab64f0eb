//! Anthropic's Messages API (`POST /v1/messages`) through the shared retry
//! loop. Whether the body passes through or is translated is decided per
//! attempt, from the deployment that attempt calls, so a model group mixing
//! Claude and other upstreams, and fallbacks from one kind to another, work:
//!
//! - **Claude upstreams** (Anthropic, Claude on Vertex AI): the client's
//!   body goes upstream as it came, with only `model` replaced (and, for
//!   Vertex, `anthropic_version` / `anthropic_beta` moved into the body), so
//!   `cache_control`, thinking signatures, `metadata` and fields the gateway
//!   does not know survive; `anthropic-version` / `anthropic-beta` headers
//!   are forwarded. Answers and stream events are relayed as they are, with
//!   `model` set to the requested name; usage is read on the way.
//! - **Every other upstream**: the request is translated to chat
//!   ([`crate::dialect::anthropic::request`]), fitted to the upstream, sent
//!   through the provider's chat adapter, and the answer or the chat stream
//!   is translated back into Anthropic's message / events.

use std::sync::Arc;

use bytes::Bytes;
use ferrolite_providers::{
    BuildOptions, Provider, ProviderKind, StreamTranslator, Target, TranslateError, UpstreamRequest,
};
use ferrolite_types::openai::{ChatMessage, ChatRequest, ChatResponse};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use futures_util::stream;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Value};

use super::controls::Controls;
use super::ops::EndpointOp;
use super::stream::{FrameSource, StreamFailure};
use super::{fallback, raw, Answer, Outcome, RawJson};
use crate::dialect::anthropic::{request, response, stream as events};
use crate::{mock, Gateway, GatewayError, RequestContext};

/// An Anthropic Messages answer, ready to send.
#[derive(Debug, Clone)]
pub enum MessagesAnswer {
    /// The upstream's own JSON (a Claude upstream), `model` renamed.
    Raw { body: Bytes, usage: Option<Usage> },
    /// Translated from a chat answer.
    Message { body: Value, usage: Option<Usage> },
}

impl MessagesAnswer {
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            MessagesAnswer::Raw { usage, .. } | MessagesAnswer::Message { usage, .. } => {
                usage.as_ref()
            }
        }
    }

    /// The JSON body.
    pub fn into_bytes(self) -> Bytes {
        match self {
            MessagesAnswer::Raw { body, .. } => body,
            MessagesAnswer::Message { body, .. } => {
                Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
            }
        }
    }
}

/// Whether the upstream takes Anthropic's Messages body as it is.
fn speaks_messages(kind: ProviderKind) -> bool {
    matches!(
        kind,
        ProviderKind::Anthropic | ProviderKind::VertexAnthropic
    )
}

/// Deployment defaults (`litellm_params`) applied to a passed-through body
/// where the client did not set them.
const PASSTHROUGH_DEFAULTS: &[&str] = &["max_tokens", "temperature", "top_p", "top_k"];

pub(super) struct MessagesOp {
    /// The client's body without `model` and LiteLLM's control fields.
    body: JsonMap,
    /// `anthropic-version` / `anthropic-beta` from the client.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The same request as chat, for upstreams that do not speak Messages.
    chat: ChatRequest,
    stream: bool,
}

/// A tiny chat request whose upstream request gives the URL, headers and
/// auth of a Claude upstream (the body is replaced by the client's).
fn probe(stream: bool) -> ChatRequest {
    let mut m = ChatMessage::assistant_text("x");
    m.role = "user".into();
    ChatRequest {
        model: String::new(),
        messages: vec![m],
        stream: stream.then_some(true),
        stream_options: None,
        extra: JsonMap::new(),
    }
}

fn header_values<'a>(
    headers: &'a [(HeaderName, HeaderValue)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(k, _)| k.as_str() == name)
        .filter_map(|(_, v)| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl MessagesOp {
    /// The upstream request for a Claude upstream: the provider's URL,
    /// headers and auth, with the client's body.
    fn passthrough(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        let mut up = p.chat_request(&probe(self.stream), t, BuildOptions::default())?;
        let mut body = self.body.clone();
        if let Some(defaults) = o.defaults {
            for k in PASSTHROUGH_DEFAULTS {
                if let (false, Some(v)) = (body.contains_key(*k), defaults.get(*k)) {
                    body.insert((*k).to_owned(), v.clone());
                }
            }
        }
        // Betas: the deployment's, then the client's, once each.
        let mut betas: Vec<String> = Vec::new();
        for b in header_values(&up.headers, "anthropic-beta")
            .chain(header_values(&self.headers, "anthropic-beta"))
        {
            if !betas.iter().any(|x| x == b) {
                betas.push(b.to_owned());
            }
        }
        match t.kind {
            ProviderKind::VertexAnthropic => {
                // Vertex names the model in the URL and takes the version and
                // the betas in the body (the provider put them in the probe's).
                let probe_body: JsonMap = serde_json::from_slice(&up.body).unwrap_or_default();
                body.remove("model");
                if let Some(v) = probe_body.get("anthropic_version") {
                    body.entry("anthropic_version").or_insert_with(|| v.clone());
                }
                if !betas.is_empty() {
                    body.insert("anthropic_beta".into(), json!(betas));
                }
            }
            _ => {
                body.insert("model".into(), Value::String(t.model.clone()));
                up.headers.retain(|(k, _)| k.as_str() != "anthropic-beta");
                if let Some((_, v)) = self
                    .headers
                    .iter()
                    .find(|(k, _)| k.as_str() == "anthropic-version")
                {
                    up.headers
                        .retain(|(k, _)| k.as_str() != "anthropic-version");
                    up.headers
                        .push((HeaderName::from_static("anthropic-version"), v.clone()));
                }
                if let Ok(v) = HeaderValue::try_from(betas.join(",")) {
                    if !betas.is_empty() {
                        up.headers
                            .push((HeaderName::from_static("anthropic-beta"), v));
                    }
                }
            }
        }
        up.body = Bytes::from(
            serde_json::to_vec(&body).map_err(|e| TranslateError::BadRequest(e.to_string()))?,
        );
        Ok(up)
    }
}

/// The usage of an Anthropic message body, as canonical usage.
fn message_usage(body: &[u8]) -> Result<Option<Usage>, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        usage: Option<Value>,
        #[serde(default)]
        error: Option<Value>,
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    if head.kind.as_deref() == Some("error") {
        return Err(format!(
            "error answer with status 200: {}",
            head.error.unwrap_or(Value::Null)
        ));
    }
    Ok(head.usage.as_ref().map(response::canonical_usage))
}

impl EndpointOp for MessagesOp {
    type Response = MessagesAnswer;

    fn is_stream(&self) -> bool {
        self.stream
    }

    fn params(&self) -> &JsonMap {
        &self.chat.extra
    }

    fn without(&self, drop: &[String]) -> Self {
        let mut chat = self.chat.clone();
        chat.extra.retain(|k, _| !drop.contains(k));
        let mut body = self.body.clone();
        body.retain(|k, _| !drop.contains(k));
        Self {
            body,
            headers: self.headers.clone(),
            chat,
            stream: self.stream,
        }
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        if speaks_messages(t.kind) {
            return self.passthrough(p, t, o);
        }
        let mut req = self.chat.clone();
        request::fit(&mut req, t);
        p.chat_request(&req, t, o)
    }

    fn parse(
        &self,
        p: &dyn Provider,
        body: &[u8],
        t: &Target,
    ) -> Result<MessagesAnswer, TranslateError> {
        if speaks_messages(t.kind) {
            let usage = message_usage(body).map_err(TranslateError::InvalidResponse)?;
            return Ok(MessagesAnswer::Raw {
                body: Bytes::copy_from_slice(body),
                usage,
            });
        }
        let resp = p.parse_chat_response(body, t)?;
        Ok(translated(&resp, &t.model))
    }

    fn prompt_tokens_estimate(&self) -> u64 {
        request::estimate_input_tokens(&self.body)
    }

    fn total_tokens(&self, r: &MessagesAnswer) -> u64 {
        r.usage().map_or(0, |u| u.total_tokens)
    }

    fn usage(&self, r: &MessagesAnswer) -> Option<Usage> {
        r.usage().cloned()
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Messages
    }

    fn rename(&self, r: &mut MessagesAnswer, model: &str) {
        match r {
            MessagesAnswer::Raw { body, .. } => {
                if let Ok(relabeled) = raw::relabel(body.clone(), model) {
                    *body = relabeled.body;
                }
            }
            MessagesAnswer::Message { body, .. } => {
                body["model"] = Value::String(model.to_owned());
            }
        }
    }

    fn frames(&self, p: &dyn Provider, t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        if speaks_messages(t.kind) {
            Box::new(PassthroughFrames::new(p.chat_stream(t), &model))
        } else {
            Box::new(TranslatedFrames {
                translator: p.chat_stream(t),
                writer: events::EventWriter::new(&model),
            })
        }
    }

    fn mock(&self, content: &str, model: &str) -> Result<Answer<MessagesAnswer>, GatewayError> {
        let resp = mock::chat(content, &self.chat, model);
        let answer = translated(&resp, model);
        Ok(if self.stream {
            let body = match &answer {
                MessagesAnswer::Message { body, .. } => events::events_for_message(body),
                MessagesAnswer::Raw { .. } => Vec::new(),
            };
            Answer::Stream(Box::pin(stream::iter([Ok(Bytes::from(body))])))
        } else {
            Answer::Json(answer)
        })
    }
}

fn translated(resp: &ChatResponse, model: &str) -> MessagesAnswer {
    MessagesAnswer::Message {
        body: response::from_chat(resp, model),
        usage: resp.usage.clone(),
    }
}

fn failure(e: TranslateError) -> StreamFailure {
    match e {
        TranslateError::Upstream(u) => StreamFailure::Upstream(u),
        other => StreamFailure::Invalid(other.to_string()),
    }
}

fn error_frame(err: &GatewayError, out: &mut Vec<u8>) {
    let (_, body) = response::error(err);
    events::error_event(out, &body);
}

/// A Claude upstream's events, relayed as they came (only `model` in
/// `message_start` changes). The provider's translator reads each event on
/// the way, for the usage and for `error` events.
struct PassthroughFrames {
    reader: Box<dyn StreamTranslator>,
    model: String,
    relayed: u64,
}

impl PassthroughFrames {
    fn new(reader: Box<dyn StreamTranslator>, model: &str) -> Self {
        Self {
            reader,
            model: model.to_owned(),
            relayed: 0,
        }
    }
}

impl FrameSource for PassthroughFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(true);
        }
        let more = self.reader.on_event(ev).map_err(failure)?.is_some();
        let name = match ev.event.as_deref() {
            Some(n) => n.to_owned(),
            None => serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "message".to_owned()),
        };
        if name == "message_start" {
            let mut v: Value = serde_json::from_str(data)
                .map_err(|e| StreamFailure::Invalid(format!("bad stream event: {e}")))?;
            if let Some(m) = v.get_mut("message").and_then(Value::as_object_mut) {
                m.insert("model".into(), Value::String(self.model.clone()));
            }
            events::write_event(out, &name, &v);
        } else {
            if name == "content_block_delta" {
                self.relayed += data.len().saturating_sub(60) as u64;
            }
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(data.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        Ok(more)
    }

    fn clean_eof(&self) -> bool {
        // The stream ends with `message_stop`; a close before it is a cut.
        false
    }

    fn write_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        error_frame(err, out);
    }

    fn usage(&self) -> Option<Usage> {
        self.reader.usage().cloned()
    }

    fn relayed_bytes(&self) -> u64 {
        self.relayed
    }
}

/// A chat stream (any other upstream) written as Anthropic events.
struct TranslatedFrames {
    translator: Box<dyn StreamTranslator>,
    writer: events::EventWriter,
}

impl FrameSource for TranslatedFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        match self.translator.on_event(ev).map_err(failure)? {
            None => {
                self.writer.end(out);
                Ok(false)
            }
            Some(chunks) => {
                for c in &chunks {
                    self.writer.on_chunk(c, out);
                }
                Ok(true)
            }
        }
    }

    fn clean_eof(&self) -> bool {
        self.writer.finished()
    }

    fn write_end(&mut self, out: &mut Vec<u8>) {
        self.writer.end(out);
    }

    fn write_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        error_frame(err, out);
    }

    fn usage(&self) -> Option<Usage> {
        self.translator
            .usage()
            .or_else(|| self.writer.usage())
            .cloned()
    }

    fn relayed_bytes(&self) -> u64 {
        self.writer.relayed_bytes()
    }
}

/// A Messages request as the server received it.
pub struct MessagesRequest {
    /// The JSON body.
    pub body: JsonMap,
    /// The client's `anthropic-version` / `anthropic-beta` headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Take `model` and LiteLLM's control fields out of a Messages body.
/// Anthropic's own `metadata` is kept, reduced to `user_id` (the only key
/// Anthropic accepts; LiteLLM keys such as `metadata.tags` are read as
/// controls).
fn split_body(body: &mut JsonMap) -> Result<(String, Controls), GatewayError> {
    let model = match body.remove("model") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => {
            return Err(GatewayError::BadRequest {
                message: "model: Field required".into(),
                param: Some("model".into()),
            })
        }
    };
    let user_id = body.get("metadata").and_then(|m| m.get("user_id")).cloned();
    let controls = Controls::take(body)?;
    if let Some(id) = user_id {
        body.insert("metadata".into(), json!({ "user_id": id }));
    }
    Ok((model, controls))
}

/// `POST /v1/messages`.
pub async fn messages(
    gw: &Gateway,
    ctx: &RequestContext,
    req: MessagesRequest,
) -> Result<Outcome<MessagesAnswer>, GatewayError> {
    use crate::spend::content::{self, Dialect};
    let prompt = content::prompt_with(gw, || content::pick(&req.body, &["system", "messages"]));
    let out = messages_call(gw, ctx, req).await;
    content::keep(gw, ctx, prompt, out, Dialect::Messages, |a| match a {
        Answer::Json(MessagesAnswer::Raw { body, .. }) | Answer::Raw(RawJson { body, .. }) => {
            Some(body.to_vec())
        }
        Answer::Json(MessagesAnswer::Message { body, .. }) => serde_json::to_vec(body).ok(),
        Answer::Stream(_) => None,
    })
}

async fn messages_call(
    gw: &Gateway,
    ctx: &RequestContext,
    req: MessagesRequest,
) -> Result<Outcome<MessagesAnswer>, GatewayError> {
    let MessagesRequest { mut body, headers } = req;
    let (requested, controls) = split_body(&mut body)?;
    let chat = request::to_chat(&body, &requested)?;
    let op = MessagesOp {
        stream: chat.is_stream(),
        body,
        headers,
        chat,
    };
    let mut outcome = fallback::run(gw, ctx, &op, &controls, &requested).await?;
    // OpenAI-format upstreams' answers come back as chat JSON forwarded
    // raw: translate them here.
    if let Answer::Raw(raw) = outcome.answer {
        let resp: ChatResponse = serde_json::from_slice(&raw.body)
            .map_err(|e| GatewayError::BadUpstreamResponse(format!("invalid chat answer: {e}")))?;
        outcome.answer = Answer::Json(translated(&resp, &requested));
    }
    Ok(outcome)
}

/// Counting a request's input tokens at a Claude upstream.
struct CountTokensOp {
    body: JsonMap,
    empty: JsonMap,
}

impl EndpointOp for CountTokensOp {
    type Response = MessagesAnswer;

    fn is_stream(&self) -> bool {
        false
    }

    fn params(&self) -> &JsonMap {
        &self.empty
    }

    fn without(&self, _drop: &[String]) -> Self {
        Self {
            body: self.body.clone(),
            empty: JsonMap::new(),
        }
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        _o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        if t.kind != ProviderKind::Anthropic {
            return Err(TranslateError::Unsupported(format!(
                "{} has no count_tokens endpoint",
                t.provider
            )));
        }
        let mut up = p.chat_request(&probe(false), t, BuildOptions::default())?;
        up.url.push_str("/count_tokens");
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(t.model.clone()));
        up.body = Bytes::from(
            serde_json::to_vec(&body).map_err(|e| TranslateError::BadRequest(e.to_string()))?,
        );
        Ok(up)
    }

    fn parse(
        &self,
        _p: &dyn Provider,
        body: &[u8],
        _t: &Target,
    ) -> Result<MessagesAnswer, TranslateError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| TranslateError::InvalidResponse(e.to_string()))?;
        if v.get("input_tokens").and_then(Value::as_u64).is_none() {
            return Err(TranslateError::InvalidResponse(
                "count_tokens answer without input_tokens".into(),
            ));
        }
        Ok(MessagesAnswer::Message {
            body: v,
            usage: None,
        })
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Messages
    }

    fn rename(&self, _r: &mut MessagesAnswer, _model: &str) {}

    fn frames(&self, p: &dyn Provider, t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        Box::new(PassthroughFrames::new(p.chat_stream(t), &model))
    }

    fn mock(&self, _content: &str, _model: &str) -> Result<Answer<MessagesAnswer>, GatewayError> {
        Ok(Answer::Json(estimated(&self.body)))
    }
}

fn estimated(body: &JsonMap) -> MessagesAnswer {
    MessagesAnswer::Message {
        body: json!({ "input_tokens": request::estimate_input_tokens(body) }),
        usage: None,
    }
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`. A model group
/// with an Anthropic deployment asks Anthropic's own count_tokens endpoint
/// (through the retry loop); otherwise, or when that fails, the gateway's
/// estimate ([`request::estimate_input_tokens`]) answers.
pub async fn count_tokens(
    gw: &Gateway,
    ctx: &RequestContext,
    mut body: JsonMap,
) -> Result<Outcome<MessagesAnswer>, GatewayError> {
    let (requested, _controls) = split_body(&mut body)?;
    let Some(resolved) = gw.router.resolve(&requested) else {
        return Err(GatewayError::UnknownModel(format!(
            "model: {requested} is not served by this gateway"
        )));
    };
    // An Anthropic deployment not cooling down; asked without touching its
    // health (a count_tokens failure says nothing about /v1/messages).
    let now = tokio::time::Instant::now();
    let anthropic = resolved
        .deployments
        .iter()
        .filter(|d| d.mock_response.is_none())
        .filter(|d| {
            d.target
                .as_ref()
                .is_some_and(|t| t.kind == ProviderKind::Anthropic)
        })
        .find(|d| gw.health.cooling_until(d.index, now).is_none())
        .map(|d| d.id.clone());
    let group = resolved.group.to_owned();
    if let Some(id) = anthropic {
        let op = CountTokensOp {
            body: body.clone(),
            empty: JsonMap::new(),
        };
        let mut quiet = ctx.clone();
        quiet.no_fallbacks = true;
        quiet.pin_deployment = Some(id);
        quiet.num_retries = Some(0);
        match super::attempt::run_group(gw, &quiet, &op, &Controls::default(), &group, &requested)
            .await
        {
            Ok(o) => return Ok(o),
            Err(e) => {
                tracing::debug!(group = %group, error = e.label(), "count_tokens upstream failed; estimating");
            }
        }
    }
    Ok(Outcome {
        answer: Answer::Json(estimated(&body)),
        meta: super::AnswerMeta {
            model_group: group,
            ..Default::default()
        },
    })
}
