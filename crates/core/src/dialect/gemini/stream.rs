//! The pipeline's chat SSE frames → a Gemini stream, chunk by chunk.
//!
//! Text and thoughts go out as they arrive, one `GenerateContentResponse`
//! per chat chunk. Tool-call arguments arrive in fragments while Gemini sends
//! whole `functionCall` parts, so calls are held until the chat stream ends;
//! the last Gemini chunk carries them with the finish reasons and
//! `usageMetadata`. A failure after the first byte (the pipeline's error
//! frame) becomes a Google error object, the stream's last element.
//!
//! Two framings, as Google offers: `?alt=sse` (`data: {…}` events, no end
//! marker) and, without it, one JSON array written element by element.

use std::convert::Infallible;

use bytes::Bytes;
use ferrolite_types::openai::ChatChunk;
use ferrolite_types::sse::{SseEvent, SseParser};
use ferrolite_types::Usage;
use futures_util::{stream, StreamExt};
use serde_json::{json, Map, Value};

use super::error::google_error;
use super::response::{finish_reason, function_call_part, signature_field, usage_metadata};
use crate::pipeline::FrameStream;

/// How the client asked to receive the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `?alt=sse`.
    Sse,
    /// A JSON array (Google's default for `streamGenerateContent`).
    JsonArray,
}

#[derive(Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

#[derive(Default)]
struct CandidateState {
    index: u32,
    /// Tool calls by their stream index.
    calls: Vec<(u32, PendingCall)>,
    finish: Option<String>,
}

/// Chat chunks in, Gemini chunk objects out.
pub(crate) struct GeminiFrames {
    model: String,
    response_id: Option<String>,
    candidates: Vec<CandidateState>,
    usage: Option<Usage>,
}

impl GeminiFrames {
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            response_id: None,
            candidates: Vec::new(),
            usage: None,
        }
    }

    fn candidate(&mut self, index: u32) -> &mut CandidateState {
        let pos = match self.candidates.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.candidates.push(CandidateState {
                    index,
                    ..CandidateState::default()
                });
                self.candidates.len() - 1
            }
        };
        &mut self.candidates[pos]
    }

    fn wrap(&self, candidates: Vec<Value>, usage: Option<Value>) -> Value {
        let mut out = Map::new();
        out.insert("candidates".into(), Value::Array(candidates));
        if let Some(u) = usage {
            out.insert("usageMetadata".into(), u);
        }
        out.insert("modelVersion".into(), Value::from(self.model.clone()));
        if let Some(id) = &self.response_id {
            out.insert("responseId".into(), Value::from(id.clone()));
        }
        Value::Object(out)
    }

    /// One chat chunk: the Gemini chunk to send now, if it has content.
    pub fn on_chunk(&mut self, chunk: ChatChunk) -> Option<Value> {
        if self.response_id.is_none() && !chunk.id.is_empty() {
            self.response_id = Some(chunk.id.clone());
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let mut out = Vec::new();
        for c in chunk.choices {
            let mut parts = Vec::new();
            if let Some(r) = c
                .delta
                .extra
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                parts.push(json!({ "text": r, "thought": true }));
            }
            if let Some(t) = c.delta.content.as_deref().filter(|t| !t.is_empty()) {
                parts.push(json!({ "text": t }));
            }
            let state = self.candidate(c.index);
            for d in c.delta.tool_calls.into_iter().flatten() {
                let pos = match state.calls.iter().position(|(i, _)| *i == d.index) {
                    Some(p) => p,
                    None => {
                        state.calls.push((d.index, PendingCall::default()));
                        state.calls.len() - 1
                    }
                };
                let call = &mut state.calls[pos].1;
                if let Some(id) = d.call.id.as_deref() {
                    call.id.push_str(id);
                }
                if let Some(sig) = signature_field(&d.call.extra) {
                    call.signature = Some(sig.to_owned());
                }
                if let Some(f) = &d.call.function {
                    if let Some(n) = &f.name {
                        call.name.push_str(n);
                    }
                    if let Some(a) = &f.arguments {
                        call.arguments.push_str(a);
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                state.finish = Some(f);
            }
            if !parts.is_empty() {
                out.push(json!({
                    "content": { "role": "model", "parts": parts },
                    "index": c.index,
                }));
            }
        }
        (!out.is_empty()).then(|| self.wrap(out, None))
    }

    /// The chat stream ended: the closing chunk with held tool calls, finish
    /// reasons and usage.
    pub fn finish(&mut self) -> Value {
        if self.candidates.is_empty() {
            self.candidate(0);
        }
        let mut candidates: Vec<&CandidateState> = self.candidates.iter().collect();
        candidates.sort_by_key(|c| c.index);
        let list = candidates
            .into_iter()
            .map(|c| {
                let parts: Vec<Value> = c
                    .calls
                    .iter()
                    .map(|(_, p)| {
                        function_call_part(&p.id, &p.name, &p.arguments, p.signature.as_deref())
                    })
                    .collect();
                json!({
                    "content": { "role": "model", "parts": parts },
                    "finishReason": finish_reason(c.finish.as_deref()),
                    "index": c.index,
                })
            })
            .collect();
        let usage = self.usage.as_ref().map(usage_metadata);
        self.wrap(list, usage)
    }
}

/// What one chat SSE event means.
enum Event {
    Chunk(Box<ChatChunk>),
    Done,
    /// The pipeline's error frame: `{"error":{…}}` (OpenAI shape).
    Error(Value),
    Skip,
}

fn classify(ev: &SseEvent) -> Event {
    let data = ev.data.trim();
    if data == "[DONE]" {
        return Event::Done;
    }
    if data.is_empty() {
        return Event::Skip;
    }
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            return Event::Error(
                json!({"message": format!("bad stream chunk: {e}"), "code": "502"}),
            )
        }
    };
    if v.get("choices").is_none() {
        if let Some(err) = v.get("error") {
            return Event::Error(err.clone());
        }
    }
    match serde_json::from_value::<ChatChunk>(v) {
        Ok(c) => Event::Chunk(Box::new(c)),
        Err(e) => Event::Error(json!({"message": format!("bad stream chunk: {e}"), "code": "502"})),
    }
}

/// An OpenAI-shaped error object as Google's: the HTTP status from `code`
/// (LiteLLM sends it as a string), 500 when absent.
fn error_from_openai(err: &Value) -> Value {
    let code = match err.get("code") {
        Some(Value::String(s)) => s.parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
    .filter(|c| (400..600).contains(c))
    .unwrap_or(500);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the upstream stream failed");
    google_error(code, message)
}

struct Writer {
    format: StreamFormat,
    first: bool,
}

impl Writer {
    fn push(&mut self, v: &Value, out: &mut Vec<u8>) {
        let json = serde_json::to_vec(v).unwrap_or_default();
        match self.format {
            StreamFormat::Sse => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&json);
                out.extend_from_slice(b"\r\n\r\n");
            }
            StreamFormat::JsonArray => {
                out.extend_from_slice(if self.first { b"[" } else { b",\r\n" });
                out.extend_from_slice(&json);
            }
        }
        self.first = false;
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.format == StreamFormat::JsonArray {
            if self.first {
                out.push(b'[');
            }
            out.push(b']');
        }
    }
}

struct State {
    inner: FrameStream,
    parser: SseParser,
    frames: GeminiFrames,
    writer: Writer,
    ended: bool,
}

impl State {
    /// Handle the events of one network read; `true` when the stream is over.
    fn handle(&mut self, events: Vec<SseEvent>, out: &mut Vec<u8>) -> bool {
        for ev in events {
            match classify(&ev) {
                Event::Skip => {}
                Event::Chunk(c) => {
                    if let Some(v) = self.frames.on_chunk(*c) {
                        self.writer.push(&v, out);
                    }
                }
                Event::Done => {
                    let last = self.frames.finish();
                    self.writer.push(&last, out);
                    self.writer.close(out);
                    return true;
                }
                Event::Error(err) => {
                    self.writer.push(&error_from_openai(&err), out);
                    self.writer.close(out);
                    return true;
                }
            }
        }
        false
    }
}

/// Re-frame the pipeline's chat stream as a Gemini stream.
pub fn to_gemini_stream(inner: FrameStream, model: &str, format: StreamFormat) -> FrameStream {
    let state = State {
        inner,
        parser: SseParser::new(),
        frames: GeminiFrames::new(model),
        writer: Writer {
            format,
            first: true,
        },
        ended: false,
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if s.ended {
                return None;
            }
            let mut events = Vec::new();
            let mut out = Vec::new();
            match s.inner.next().await {
                Some(Ok(bytes)) => {
                    if s.parser.feed(&bytes, &mut events).is_err() {
                        s.writer
                            .push(&google_error(502, "stream frame too long"), &mut out);
                        s.writer.close(&mut out);
                        s.ended = true;
                    } else {
                        s.ended = s.handle(events, &mut out);
                    }
                }
                Some(Err(never)) => match never {},
                None => {
                    s.parser.finish(&mut events);
                    if !s.handle(events, &mut out) {
                        // The chat relay always ends with `[DONE]`; close anyway.
                        let last = s.frames.finish();
                        s.writer.push(&last, &mut out);
                        s.writer.close(&mut out);
                    }
                    s.ended = true;
                }
            }
            if !out.is_empty() {
                return Some((Ok::<Bytes, Infallible>(Bytes::from(out)), s));
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[Value]) -> FrameStream {
        let mut text = String::new();
        for c in chunks {
            text.push_str(&format!("data: {c}\n\n"));
        }
        text.push_str("data: [DONE]\n\n");
        // Split at an awkward place to exercise the parser.
        let (a, b) = text.split_at(text.len() / 3);
        let parts = vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
        stream::iter(parts).boxed()
    }

    async fn collect(s: FrameStream) -> String {
        let parts: Vec<_> = s.collect().await;
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&p.unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    fn chunk(delta: Value, finish: Value) -> Value {
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "x",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    fn tool_stream() -> Vec<Value> {
        vec![
            chunk(
                json!({"role": "assistant", "content": "Let me "}),
                Value::Null,
            ),
            chunk(
                json!({"content": "check.", "reasoning_content": "hmm"}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1__thought__SIG", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"ci"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}),
        ]
    }

    #[tokio::test]
    async fn sse_golden_stream_with_a_tool_call() {
        let text = collect(to_gemini_stream(
            frames(&tool_stream()),
            "gem",
            StreamFormat::Sse,
        ))
        .await;
        let events: Vec<Value> = text
            .split("\r\n\r\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events.len(), 3, "{text}");
        assert_eq!(
            events[0]["candidates"][0]["content"]["parts"],
            json!([{"text": "Let me "}])
        );
        assert_eq!(
            events[1]["candidates"][0]["content"]["parts"],
            json!([{"text": "hmm", "thought": true}, {"text": "check."}])
        );
        assert_eq!(
            events[2],
            json!({"candidates": [{"content": {"role": "model", "parts": [
                    {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"}]},
                    "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11},
                   "modelVersion": "gem", "responseId": "chatcmpl-9"})
        );
    }

    #[tokio::test]
    async fn json_array_framing_and_mid_stream_error() {
        let chunks = vec![
            chunk(json!({"content": "partial"}), Value::Null),
            json!({"error": {"message": "upstream broke", "type": "x", "code": "503"}}),
        ];
        let text = collect(to_gemini_stream(
            frames(&chunks),
            "gem",
            StreamFormat::JsonArray,
        ))
        .await;
        let v: Value = serde_json::from_str(&text).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        assert_eq!(
            arr[0]["candidates"][0]["content"]["parts"][0]["text"],
            "partial"
        );
        assert_eq!(
            arr[1],
            json!({"error": {"code": 503, "message": "upstream broke", "status": "UNAVAILABLE"}})
        );
        let whole = collect(to_gemini_stream(
            frames(&tool_stream()),
            "gem",
            StreamFormat::JsonArray,
        ))
        .await;
        let v: Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
    }
}
