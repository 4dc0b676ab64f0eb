//! `POST /v1/responses` through the shared retry loop.
//!
//! Per attempt, the deployment decides the wire format: an upstream with a
//! Responses API of its own (OpenAI, Azure OpenAI) gets the client's body
//! with only `model` replaced, and its answer or event stream is forwarded
//! with `model` renamed; any other upstream gets the request bridged to chat
//! (`dialect::responses::request`), and its chat answer or chunks are turned
//! into a response object or Responses events. So retries, fallbacks and
//! cooldowns work across a group that mixes both kinds.

use std::sync::Arc;

use ferrolite_providers::{
    BuildOptions, Provider, ProviderKind, Target, TranslateError, UpstreamError, UpstreamRequest,
};
use ferrolite_types::openai::{ChatChunk, ChatRequest};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::controls::Controls;
use super::ops::EndpointOp;
use super::stream::{FrameSource, StreamFailure};
use super::{Answer, FrameStream, Outcome};
use crate::dialect::responses::request::BridgeError;
use crate::dialect::responses::response::{from_chat, usage_from, Envelope};
use crate::dialect::responses::stream::{write_event, ChatToResponses};
use crate::{mock, Gateway, GatewayError, RequestContext};

/// Called with the final response object of a stream, and whether an
/// upstream's own Responses API produced it.
pub type OnComplete = Arc<dyn Fn(Value, bool) + Send + Sync>;

/// A Responses request, prepared by the dialect for both kinds of upstream.
pub struct ResponsesCall {
    /// The body for upstreams with a Responses API (`model` is set per
    /// attempt).
    pub native_body: JsonMap,
    /// The bridged chat request, or why the request cannot be bridged.
    pub chat: Result<ChatRequest, BridgeError>,
    /// Id, creation time, model name and echoed settings of bridged answers.
    pub env: Envelope,
    pub on_complete: Option<OnComplete>,
}

/// Whether the target has a Responses API of its own.
pub fn has_responses_api(t: &Target) -> bool {
    match t.kind {
        ProviderKind::OpenAiCompat => t.provider == "openai",
        ProviderKind::Azure => true,
        _ => false,
    }
}

fn responses_url(t: &Target) -> String {
    match (t.kind, &t.api_version) {
        (ProviderKind::Azure, Some(v)) => {
            format!("{}/openai/responses?api-version={v}", t.api_base)
        }
        (ProviderKind::Azure, None) => format!("{}/openai/v1/responses", t.api_base),
        _ => format!("{}/responses", t.api_base),
    }
}

pub async fn responses(
    gw: &Gateway,
    ctx: &RequestContext,
    call: ResponsesCall,
    controls: &Controls,
    requested: &str,
) -> Result<Outcome<Value>, GatewayError> {
    let op = ResponsesOp { call };
    super::fallback::run(gw, ctx, &op, controls, requested).await
}

struct ResponsesOp {
    call: ResponsesCall,
}

fn bridge_error(e: &BridgeError) -> TranslateError {
    TranslateError::BadRequest(e.message.clone())
}

impl EndpointOp for ResponsesOp {
    type Response = Value;

    fn is_stream(&self) -> bool {
        self.call
            .native_body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn params(&self) -> &JsonMap {
        match &self.call.chat {
            Ok(chat) => &chat.extra,
            Err(_) => &self.call.native_body,
        }
    }

    fn without(&self, drop: &[String]) -> Self {
        let mut chat = self.call.chat.clone();
        if let Ok(c) = &mut chat {
            c.extra.retain(|k, _| !drop.contains(k));
        }
        Self {
            call: ResponsesCall {
                native_body: self.call.native_body.clone(),
                chat,
                env: self.call.env.clone(),
                on_complete: self.call.on_complete.clone(),
            },
        }
    }

    fn build(
        &self,
        p: &dyn Provider,
        t: &Target,
        o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        if !has_responses_api(t) {
            let chat = self.call.chat.as_ref().map_err(bridge_error)?;
            return p.chat_request(chat, t, o);
        }
        let mut body = JsonMap::with_capacity(self.call.native_body.len() + 1);
        body.insert("model".into(), Value::String(t.model.clone()));
        for (k, v) in &self.call.native_body {
            body.insert(k.clone(), v.clone());
        }
        let body = serde_json::to_vec(&body)
            .map_err(|e| TranslateError::BadRequest(format!("cannot encode the request: {e}")))?;
        let mut headers = Vec::with_capacity(t.headers.len() + 1);
        headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        ));
        headers.extend(t.headers.iter().cloned());
        Ok(UpstreamRequest {
            url: responses_url(t),
            headers,
            body: body.into(),
            auth: t.auth.clone(),
        })
    }

    fn parse(&self, p: &dyn Provider, body: &[u8], t: &Target) -> Result<Value, TranslateError> {
        if has_responses_api(t) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| TranslateError::InvalidResponse(e.to_string()))?;
            if !v.is_object() {
                return Err(TranslateError::InvalidResponse(
                    "the answer is not a JSON object".into(),
                ));
            }
            return Ok(v);
        }
        let chat = p.parse_chat_response(body, t)?;
        Ok(from_chat(&self.call.env, &chat))
    }

    fn forward_raw(&self, _p: &dyn Provider) -> bool {
        false
    }

    fn prompt_tokens_estimate(&self) -> u64 {
        let Ok(chat) = &self.call.chat else {
            return 0;
        };
        let text: usize = chat
            .messages
            .iter()
            .filter_map(|m| m.content.as_ref())
            .map(|c| c.text().len())
            .sum();
        mock::estimate_tokens_of_len(text)
    }

    fn total_tokens(&self, r: &Value) -> u64 {
        self.usage(r).map_or(0, |u| u.total_tokens)
    }

    fn usage(&self, r: &Value) -> Option<Usage> {
        r.get("usage").and_then(usage_from)
    }

    fn call_type(&self) -> crate::meter::CallType {
        crate::meter::CallType::Responses
    }

    fn rename(&self, r: &mut Value, model: &str) {
        if let Some(o) = r.as_object_mut() {
            o.insert("model".into(), Value::String(model.to_owned()));
        }
    }

    fn frames(&self, p: &dyn Provider, t: &Target, model: Arc<str>) -> Box<dyn FrameSource> {
        if has_responses_api(t) {
            return Box::new(NativeFrames::new(model, self.call.on_complete.clone()));
        }
        let mut env = self.call.env.clone();
        model.as_ref().clone_into(&mut env.model);
        Box::new(BridgedFrames {
            translator: p.chat_stream(t),
            conv: ChatToResponses::new(env),
            on_complete: self.call.on_complete.clone(),
        })
    }

    fn mock(&self, content: &str, model: &str) -> Result<Answer<Value>, GatewayError> {
        let chat = self
            .call
            .chat
            .as_ref()
            .map_err(|e| GatewayError::BadRequest {
                message: e.message.clone(),
                param: e.param.clone(),
            })?;
        let mut env = self.call.env.clone();
        model.clone_into(&mut env.model);
        if !self.is_stream() {
            return Ok(Answer::Json(from_chat(
                &env,
                &mock::chat(content, chat, model),
            )));
        }
        let mut conv = ChatToResponses::new(env);
        let mut out = Vec::new();
        for frame in mock::chat_stream(content, chat, model) {
            let text = String::from_utf8_lossy(&frame);
            let Some(data) = text.trim().strip_prefix("data: ") else {
                continue;
            };
            if let Ok(chunk) = serde_json::from_str::<ChatChunk>(data) {
                conv.on_chunk(&chunk, &mut out);
            }
        }
        let resp = conv.finish(&mut out);
        if let Some(hook) = &self.call.on_complete {
            hook(resp, false);
        }
        let stream: FrameStream = Box::pin(futures_util::stream::iter([Ok(out.into())]));
        Ok(Answer::Stream(stream))
    }
}

fn translate_failure(e: TranslateError) -> StreamFailure {
    match e {
        TranslateError::Upstream(u) => StreamFailure::Upstream(u),
        other => StreamFailure::Invalid(other.to_string()),
    }
}

/// The Responses error code for a failure.
fn error_code(err: &GatewayError) -> &'static str {
    if err.status() == 429 {
        "rate_limit_exceeded"
    } else {
        "server_error"
    }
}

/// A chat stream (any provider's, through its translator) as Responses events.
struct BridgedFrames {
    translator: Box<dyn ferrolite_providers::StreamTranslator>,
    conv: ChatToResponses,
    on_complete: Option<OnComplete>,
}

impl BridgedFrames {
    fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(u) = self.translator.usage() {
            self.conv.set_usage_if_missing(u);
        }
        let resp = self.conv.finish(out);
        if let Some(hook) = &self.on_complete {
            hook(resp, false);
        }
    }
}

impl FrameSource for BridgedFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        match self.translator.on_event(ev).map_err(translate_failure)? {
            None => {
                self.finish(out);
                Ok(false)
            }
            Some(chunks) => {
                for c in &chunks {
                    self.conv.on_chunk(c, out);
                }
                Ok(true)
            }
        }
    }

    fn clean_eof(&self) -> bool {
        self.conv.saw_finish()
    }

    fn write_end(&mut self, out: &mut Vec<u8>) {
        self.finish(out);
    }

    fn write_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        self.conv.fail(error_code(err), &err.client_message(), out);
    }

    fn usage(&self) -> Option<Usage> {
        self.translator
            .usage()
            .cloned()
            .or_else(|| self.conv.usage().cloned())
    }
}

/// An upstream's own Responses events, forwarded with `model` renamed.
struct NativeFrames {
    model: Arc<str>,
    on_complete: Option<OnComplete>,
    /// The last response object seen (for a `response.failed` of our own).
    last: Option<Value>,
    next_seq: u64,
    forwarded: bool,
    ended: bool,
    usage: Option<Usage>,
}

impl NativeFrames {
    fn new(model: Arc<str>, on_complete: Option<OnComplete>) -> Self {
        Self {
            model,
            on_complete,
            last: None,
            next_seq: 0,
            forwarded: false,
            ended: false,
            usage: None,
        }
    }
}

/// An upstream `error` event before anything was sent: an ordinary failed
/// attempt, retryable like an HTTP error with the same meaning.
fn upstream_error(data: &Value) -> StreamFailure {
    let field = |k: &str| {
        data.get(k)
            .or_else(|| data.pointer(&format!("/error/{k}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code");
    let status = match code.as_deref() {
        Some("rate_limit_exceeded") => 429,
        Some("invalid_prompt") => 400,
        _ => 500,
    };
    StreamFailure::Upstream(Box::new(UpstreamError {
        status,
        message: field("message").unwrap_or_else(|| "upstream stream error".into()),
        kind: field("type"),
        param: field("param"),
        code: code.map(Value::String),
        provider_label: "OpenAIException".into(),
    }))
}

impl FrameSource for NativeFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.ended = true;
            return Ok(false);
        }
        if data.is_empty() {
            return Ok(true);
        }
        let mut v: Value = serde_json::from_str(data)
            .map_err(|e| StreamFailure::Invalid(format!("bad stream event: {e}")))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("message")
            .to_owned();
        if kind == "error" && !self.forwarded {
            return Err(upstream_error(&v));
        }
        if let Some(n) = v.get("sequence_number").and_then(Value::as_u64) {
            self.next_seq = n + 1;
        }
        if let Some(r) = v.get_mut("response").and_then(Value::as_object_mut) {
            r.insert("model".into(), Value::String(self.model.to_string()));
        }
        if let Some(r) = v.get("response") {
            self.last = Some(r.clone());
        }
        match kind.as_str() {
            "response.completed" | "response.incomplete" => {
                self.ended = true;
                let resp = v.get("response").cloned().unwrap_or_default();
                self.usage = resp.get("usage").and_then(usage_from);
                if let Some(hook) = &self.on_complete {
                    hook(resp, true);
                }
            }
            "response.failed" | "error" => self.ended = true,
            _ => {}
        }
        write_event(out, &kind, &v);
        self.forwarded = true;
        Ok(true)
    }

    fn clean_eof(&self) -> bool {
        self.ended
    }

    fn write_end(&mut self, _out: &mut Vec<u8>) {}

    fn write_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let code = error_code(err);
        let message = err.client_message();
        let seq = self.next_seq;
        write_event(
            out,
            "error",
            &json!({"type": "error", "code": code, "message": message, "param": null, "sequence_number": seq}),
        );
        let mut resp = self.last.take().unwrap_or_else(
            || json!({"object": "response", "model": self.model.as_ref(), "output": []}),
        );
        resp["status"] = json!("failed");
        resp["error"] = json!({"code": code, "message": message});
        write_event(
            out,
            "response.failed",
            &json!({"type": "response.failed", "response": resp, "sequence_number": seq + 1}),
        );
        self.ended = true;
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(provider: &str, kind: ProviderKind, version: Option<&str>) -> Target {
        Target {
            provider: provider.into(),
            kind,
            model: "m".into(),
            api_base: "https://h/v1".into(),
            api_version: version.map(Into::into),
            auth: ferrolite_providers::AuthScheme::Bearer,
            stream_usage: true,
            headers: Vec::new(),
        }
    }

    #[test]
    fn which_upstreams_take_responses() {
        let openai = target("openai", ProviderKind::OpenAiCompat, None);
        assert!(has_responses_api(&openai));
        assert_eq!(responses_url(&openai), "https://h/v1/responses");
        assert!(!has_responses_api(&target(
            "groq",
            ProviderKind::OpenAiCompat,
            None
        )));
        assert!(!has_responses_api(&target(
            "anthropic",
            ProviderKind::Anthropic,
            None
        )));
        let azure = target("azure", ProviderKind::Azure, Some("2025-03-01-preview"));
        assert_eq!(
            responses_url(&azure),
            "https://h/v1/openai/responses?api-version=2025-03-01-preview"
        );
    }

    #[test]
    fn native_events_are_renamed_and_completion_reported() {
        let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
        let s2 = Arc::clone(&seen);
        let hook: OnComplete = Arc::new(move |v, native| {
            assert!(native);
            s2.lock().unwrap().push(v);
        });
        let mut f = NativeFrames::new(Arc::from("group"), Some(hook));
        let mut out = Vec::new();
        let ev = |kind: &str, data: Value| SseEvent {
            event: Some(kind.into()),
            data: data.to_string(),
        };
        assert!(f
            .on_event(
                &ev(
                    "response.created",
                    json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_u", "model": "gpt-x", "output": []}})
                ),
                &mut out
            )
            .unwrap());
        f.on_event(
            &ev(
                "response.completed",
                json!({"type": "response.completed", "sequence_number": 1, "response": {"id": "resp_u", "model": "gpt-x", "output": [],
                    "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}}}),
            ),
            &mut out,
        )
        .unwrap();
        assert!(f.clean_eof());
        assert_eq!(f.usage().unwrap().total_tokens, 5);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: response.created\ndata: {"));
        assert!(!text.contains("gpt-x"));
        assert_eq!(seen.lock().unwrap()[0]["model"], "group");
    }

    #[test]
    fn an_error_before_anything_is_a_failed_attempt() {
        let mut f = NativeFrames::new(Arc::from("g"), None);
        let ev = SseEvent {
            event: Some("error".into()),
            data: json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})
                .to_string(),
        };
        match f.on_event(&ev, &mut Vec::new()) {
            Err(StreamFailure::Upstream(u)) => assert_eq!(u.status, 429),
            _ => panic!("expected an upstream failure"),
        }
    }
}
